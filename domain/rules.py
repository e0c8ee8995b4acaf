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
from datetime import UTC, datetime
from typing import TypeVar

from domain.model import PriceUpdate

Moment = TypeVar("Moment", datetime, int)


@dataclass(frozen=True, slots=True)
class CurrentPriceNeverMovesBack:
    """A crypto's current price is replaced only by a price of the same moment or a
    later one: a batch that was slower to commit than a newer one still adds its
    history row, but leaves the newer current price alone."""

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
