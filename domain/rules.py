"""The rules a crypto's prices follow, each named once, here.

Written as named rules (in the manner of pgorecki/python-ddd's ``BusinessRule``) so a
reader finds each by name wherever it is carried out: the in-memory read model and
the unit-test fake call these; PostgreSQL carries them out in SQL for speed
(``infrastructure/db/repositories.py``), with a comment naming the rule. The
statistics' rule is ``domain.model.PriceStats.of``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from domain.model import PriceUpdate

Moment = TypeVar("Moment", datetime, int)

# Bitcoin's first block: no crypto had a price before it (CoinGecko's 0 is before it).
EARLIEST_PRICE_TIME = datetime(2009, 1, 3, tzinfo=UTC)
# How far CoinGecko's clock may run ahead of ours and still be believed: clocks drift.
MAX_CLOCK_LEAD = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class PriceMoment:
    """A price is stored under CoinGecko's time of it (``last_updated_at``), to the
    second: the same observation fetched twice is then one moment, and a price is
    never said to be newer than it is. A missing or absurd time (before
    EARLIEST_PRICE_TIME, or more than MAX_CLOCK_LEAD after our clock) gives way to the
    time the price was fetched.

    Fall back rather than refuse the price: the price is real (CoinGecko answered it
    just now) and the fetch time is true of it (it was the price then), where refusing
    would freeze the crypto for as long as CoinGecko's time stays wrong. A time far
    ahead is not kept either: since only newer prices are recorded, it would shut out
    every true price until our clock caught up. The cost, for such a coin only: one
    point per fetch, as before CoinGecko's times were used."""

    quoted_at: datetime | None
    fetched_at: datetime

    def is_believable(self) -> bool:
        """Whether CoinGecko's time can stand."""
        return (
            self.quoted_at is not None
            and EARLIEST_PRICE_TIME <= self.quoted_at <= self.fetched_at + MAX_CLOCK_LEAD
        )

    def moment(self) -> datetime:
        """The moment to store the price under, to the second."""
        chosen = self.quoted_at if self.is_believable() and self.quoted_at else self.fetched_at
        return chosen.replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class OnlyNewerPricesAreRecorded:
    """A price is recorded (made current, with a history row) only when its moment is
    later than the crypto's current price's. A poll or a refresh that brings what is
    stored already (CoinGecko serves prices from a cache of about 60 s: the same price
    with the same time) or something older stores nothing and announces nothing. As
    the current price is always the newest row, no two history rows of a crypto share
    a moment (rows stored before this rule may, and stay)."""

    current_at: datetime
    new_at: datetime

    def is_broken(self) -> bool:
        """Whether recording the new price would repeat or predate the current one."""
        return self.new_at <= self.current_at


@dataclass(frozen=True, slots=True)
class CurrentPriceNeverMovesBack:
    """A crypto's current price is replaced only by a price of the same moment or a
    later one. The database records only newer prices (OnlyNewerPricesAreRecorded);
    a copy of it (the read model) still holds to this when changes reach it late."""

    current_at: datetime
    new_at: datetime

    def is_broken(self) -> bool:
        """Whether making the new price current would move the price back in time."""
        return self.new_at < self.current_at


@dataclass(frozen=True, slots=True)
class HistoryKeepsTheNewest:
    """A crypto's price history keeps its newest ``keep`` rows, in order of time and
    then of row id (of two rows of one moment, the one stored later is the newer);
    everything older goes. Row ids settle ties, so every copy that applies the same
    rows keeps the same ones, whatever order they arrive in."""

    keep: int

    def __post_init__(self) -> None:
        if self.keep < 1:
            raise ValueError(f"keep must be at least 1, got {self.keep}")

    @staticmethod
    def order(at: Moment, row_id: int) -> tuple[Moment, int]:
        """A row's place in the history: sort by this, oldest first."""
        return at, row_id

    def surplus(self, held: int) -> int:
        """How many of the oldest of ``held`` rows go."""
        return max(held - self.keep, 0)


def latest_update_per_crypto(updates: Iterable[PriceUpdate]) -> list[PriceUpdate]:
    """One price batch's updates, one per crypto: its latest (of two of one moment,
    the later in the batch), in crypto id order (the order rows are locked in)."""
    latest: dict[int, PriceUpdate] = {}
    for update in updates:
        seen = latest.get(update.crypto_id)
        if seen is None or update.at >= seen.at:
            latest[update.crypto_id] = update
    return [latest[crypto_id] for crypto_id in sorted(latest)]


def month_start(at: datetime) -> datetime:
    """The start of ``at``'s calendar month in UTC: the month a CoinGecko call counts in."""
    at = at.astimezone(UTC)
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def next_month_start(at: datetime) -> datetime:
    """When the calendar month (UTC) after ``at``'s starts: when its budget renews."""
    start = month_start(at)
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


@dataclass(frozen=True, slots=True)
class MonthlyBudgetLastsTheMonth:
    """The poller spaces its polls so that the month's calls last until the month
    ends: the interval in effect is the longer of the configured one (``floor``) and
    the time left divided by the polls the month can still afford. A share of the
    budget (``reserve``, 10%) is kept for adds and refreshes, which nobody can
    schedule: polls never spend it. When not one more poll fits, the poller waits for
    the new month."""

    budget: int  # calls a calendar month, for the whole deployment
    used: int  # calls made so far this month, by anyone
    calls_per_poll: int  # one a batch of tracked coins
    seconds_left: float  # until the month ends
    floor: float  # PRICE_POLL_INTERVAL_SECONDS
    reserve: float = 0.1

    def __post_init__(self) -> None:
        if self.budget < 1:
            raise ValueError(f"budget must be at least 1, got {self.budget}")
        if not 0 <= self.reserve < 1:
            raise ValueError(f"reserve must be in [0, 1), got {self.reserve}")

    @staticmethod
    def poll_share(budget: int, reserve: float = 0.1) -> int:
        """The calls of ``budget`` that polls may spend: all but the reserve."""
        return budget - math.ceil(budget * reserve)

    def polls_left(self) -> int:
        """How many more polls the month's poll share affords."""
        if self.calls_per_poll < 1:
            return 0
        left = self.poll_share(self.budget, self.reserve) - self.used
        return max(left // self.calls_per_poll, 0)

    def interval(self) -> float:
        """Seconds from one poll's start to the next's."""
        if self.calls_per_poll < 1:  # nothing tracked: a poll makes no call
            return self.floor
        polls = self.polls_left()
        if polls == 0:
            return max(self.seconds_left, self.floor)
        return max(self.seconds_left / polls, self.floor)
