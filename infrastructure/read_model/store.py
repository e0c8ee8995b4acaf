"""The tracked set in memory: every crypto, its current price and its newest history.

Pure data, no I/O: ``live.LiveReadModel`` feeds it what the database says changed,
and every change it applies comes back as the price events it makes (for the live
stream). It keeps the history rules of the database: a crypto keeps its newest
``keep`` rows by (time, row id), so applying the same rows as the database leaves the
same rows here, whatever order concurrent commits arrive in.

Memory: the history is kept in flat arrays (8 bytes each for row id, time and price),
about 2.6 KB a crypto at 100 rows; what a read hands out (``PricePoint`` lists) is
built on the first read after a change and kept for the most recently read cryptos
only. See bench/RESULTS.md for the figure at 10,000 cryptos.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from cachetools import LRUCache

from domain.events import CryptoAdded, CryptoRemoved, PriceChanged, PriceEvent
from domain.model import Crypto, PricePoint, PriceStats, Ticker

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Materialised histories of this many cryptos at most (about 13 KB each at 100 rows).
DEFAULT_MATERIALISED = 1_000


def micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (what PostgreSQL's timestamptz holds)."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def moment(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True, slots=True)
class HistoryRow:
    row_id: int
    at_us: int  # micros()
    price: float


@dataclass(frozen=True, slots=True)
class CryptoState:
    """A crypto as stored, with its newest history rows in (time, row id) order, in the
    flat arrays the set keeps (it takes them over: a load of 10,000 cryptos then never
    holds a million row objects)."""

    crypto: Crypto  # with its id
    row_ids: array[int]
    times: array[int]  # micros()
    prices: array[float]

    @classmethod
    def of(cls, crypto: Crypto, rows: Iterable[HistoryRow]) -> CryptoState:
        ordered = sorted(rows, key=lambda r: (r.at_us, r.row_id))
        return cls(
            crypto,
            array("q", [r.row_id for r in ordered]),
            array("q", [r.at_us for r in ordered]),
            array("d", [r.price for r in ordered]),
        )


@dataclass(frozen=True, slots=True)
class PriceState:
    """A crypto's current price after a price batch, and the history rows it got."""

    crypto_id: int
    current_price: float
    last_updated: datetime
    rows: Sequence[HistoryRow]


@dataclass(slots=True, eq=False)
class _Entry:
    crypto: Crypto
    row_ids: array[int] = field(default_factory=lambda: array("q"))
    times: array[int] = field(default_factory=lambda: array("q"))
    prices: array[float] = field(default_factory=lambda: array("d"))
    stats: PriceStats | None = None

    def insert(self, row: HistoryRow, keep: int) -> bool:
        """Put a row in (time, row id) order and drop the oldest beyond ``keep``, as
        the database's trim does. False when the row was here already."""
        if row.row_id in self.row_ids:
            return False
        at = bisect.bisect_right(self.times, row.at_us)
        while at > 0 and self.times[at - 1] == row.at_us and self.row_ids[at - 1] > row.row_id:
            at -= 1
        self.row_ids.insert(at, row.row_id)
        self.times.insert(at, row.at_us)
        self.prices.insert(at, row.price)
        self.trim(keep)
        return True

    def trim(self, keep: int) -> bool:
        """Keep the newest ``keep`` rows; whether any went."""
        extra = len(self.row_ids) - keep
        if extra > 0:
            del self.row_ids[:extra], self.times[:extra], self.prices[:extra]
        return extra > 0


class TrackedSet:
    """The tracked cryptos by symbol and by id, with their histories."""

    def __init__(self, keep: int, *, materialised: int = DEFAULT_MATERIALISED) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.keep = keep
        self._by_symbol: dict[str, _Entry] = {}
        self._by_id: dict[int, _Entry] = {}
        self._listed: list[Crypto] | None = None
        self._points: LRUCache[int, list[PricePoint]] = LRUCache(materialised)

    # Reads. The same objects come back until the crypto changes, so a caller may
    # keep what it made of them (the HTTP layer keeps the JSON it rendered).

    def __len__(self) -> int:
        return len(self._by_id)

    def ids(self) -> list[int]:
        return list(self._by_id)

    def holds(self, crypto_id: int) -> bool:
        return crypto_id in self._by_id

    def list(self) -> list[Crypto]:
        if self._listed is None:
            self._listed = [self._by_symbol[s].crypto for s in sorted(self._by_symbol)]
        return self._listed

    def get(self, symbol: Ticker) -> Crypto | None:
        entry = self._by_symbol.get(symbol.value)
        return None if entry is None else entry.crypto

    def history(self, symbol: Ticker, limit: int) -> list[PricePoint] | None:
        entry = self._by_symbol.get(symbol.value)
        if entry is None:
            return None
        crypto_id = self._id(entry)
        points = self._points.get(crypto_id)
        if points is None:
            points = [
                PricePoint(p, moment(t)) for p, t in zip(entry.prices, entry.times, strict=True)
            ]
            self._points[crypto_id] = points
        return points if limit >= len(points) else points[-limit:]

    def stats(self, symbol: Ticker) -> PriceStats | None:
        entry = self._by_symbol.get(symbol.value)
        if entry is None:
            return None
        if entry.stats is None:
            entry.stats = PriceStats.of(entry.crypto.current_price, entry.prices)
        return entry.stats

    # Changes, each answering the events it makes.

    def replace_all(self, states: Iterable[CryptoState]) -> list[PriceEvent]:
        """Everything the database holds now (after the listener was down): what
        differs from before comes back as events."""
        states = list(states)
        before = self._by_id
        kept = {self._id_of(state.crypto) for state in states}
        # Removals first: a symbol deleted and added again meanwhile has a new id.
        events: list[PriceEvent] = [
            CryptoRemoved(entry.crypto.symbol) for i, entry in before.items() if i not in kept
        ]
        self._by_symbol, self._by_id = {}, {}
        self._points.clear()
        self._listed = None
        for state in states:
            self._put(state)
            events += self._difference(before.get(self._id_of(state.crypto)), state.crypto)
        return events

    def upsert(self, states: Iterable[CryptoState]) -> list[PriceEvent]:
        """Cryptos added (or loaded again): stored whole."""
        events: list[PriceEvent] = []
        for state in states:
            crypto_id = self._id_of(state.crypto)
            old = self._by_id.get(crypto_id)
            if old is not None:
                self._drop(crypto_id)
            namesake = self._by_symbol.get(state.crypto.symbol.value)
            if namesake is not None:  # deleted and added again: the old id is gone
                events += self.remove([self._id(namesake)])
            self._put(state)
            events += self._difference(old, state.crypto)
        return events

    def apply_prices(
        self, states: Iterable[PriceState], keep: int | None = None
    ) -> list[PriceEvent]:
        """A price batch's new rows and current prices, for cryptos held here. The
        batch trimmed each crypto's history to ``keep`` rows (this set's own when None;
        never more than that are held)."""
        keep = self.keep if keep is None else min(keep, self.keep)
        events: list[PriceEvent] = []
        for state in states:
            entry = self._by_id.get(state.crypto_id)
            if entry is None:
                continue
            changed = False
            for row in state.rows:
                changed |= entry.insert(row, keep)
            changed |= entry.trim(keep)
            crypto = entry.crypto
            if (crypto.current_price, crypto.last_updated) != (
                state.current_price,
                state.last_updated,
            ):
                entry.crypto = replace(
                    crypto, current_price=state.current_price, last_updated=state.last_updated
                )
                self._listed = None
                changed = True
                events.append(PriceChanged(crypto.symbol, state.current_price, state.last_updated))
            if changed:
                entry.stats = None
                self._points.pop(state.crypto_id, None)
        return events

    def remove(self, crypto_ids: Iterable[int]) -> list[PriceEvent]:
        events: list[PriceEvent] = []
        for crypto_id in crypto_ids:
            entry = self._by_id.get(crypto_id)
            if entry is not None:
                self._drop(crypto_id)
                events.append(CryptoRemoved(entry.crypto.symbol))
        return events

    # Internals.

    @staticmethod
    def _id_of(crypto: Crypto) -> int:
        if crypto.id is None:
            raise ValueError(f"{crypto.symbol} has no id: only stored cryptos are held")
        return crypto.id

    def _id(self, entry: _Entry) -> int:
        return self._id_of(entry.crypto)

    def _put(self, state: CryptoState) -> None:
        entry = _Entry(state.crypto, state.row_ids, state.times, state.prices)
        entry.trim(self.keep)
        self._by_symbol[state.crypto.symbol.value] = entry
        self._by_id[self._id_of(state.crypto)] = entry
        self._listed = None

    def _drop(self, crypto_id: int) -> None:
        entry = self._by_id.pop(crypto_id)
        if self._by_symbol.get(entry.crypto.symbol.value) is entry:
            del self._by_symbol[entry.crypto.symbol.value]
        self._points.pop(crypto_id, None)
        self._listed = None

    @staticmethod
    def _difference(old: _Entry | None, new: Crypto) -> list[PriceEvent]:
        if old is None or old.crypto.symbol != new.symbol:
            return [CryptoAdded(new)]
        if (old.crypto.current_price, old.crypto.last_updated) != (
            new.current_price,
            new.last_updated,
        ):
            return [PriceChanged(new.symbol, new.current_price, new.last_updated)]
        return []
