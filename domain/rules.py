"""The rules a crypto's prices follow, each named once, here.

Written as named rules (in the manner of pgorecki/python-ddd's ``BusinessRule``) so a
reader finds each by name wherever it is carried out: the in-memory read model and
the unit-test fake call these; PostgreSQL carries them out in SQL for speed
(``infrastructure/db/repositories.py``), with a comment naming the rule. The
statistics' rule is ``domain.model.PriceStats.of``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
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
