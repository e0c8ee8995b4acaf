"""The tracked set in memory: every crypto, its current price and its newest history.

Pure data, no I/O: ``live.LiveReadModel`` feeds it what the database says changed,
and every change it applies comes back as the price events it makes (for the live
stream). It follows the rules the database carries out in SQL, called from
``domain.rules``: a crypto keeps its newest ``keep`` rows by (time, row id)
(``HistoryKeepsTheNewest``), so applying the same rows as the database leaves the
same rows here, whatever order concurrent commits arrive in; its current price never
moves back in time (``CurrentPriceNeverMovesBack``).

Versions: every change the set applies to a crypto (its price, its rows, a trim, its
arrival) gives it a new version, and every change to the list gives the list one; a
version is never reused in the process, so whatever was made of a value at one
version (the HTTP layer's rendered JSON) stays right for as long as the version does.

Memory: the history is kept in flat arrays (8 bytes each for row id, time and price),
about 2.6 KB a crypto at 100 rows; what a read hands out (``PricePoint`` lists) is
built on the first read after a change and kept for the most recently read cryptos
only. See bench/RESULTS.md for the figure at 10,000 cryptos.
"""

from __future__ import annotations

import bisect
import itertools
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from cachetools import LRUCache

from domain.events import CryptoAdded, CryptoRemoved, PriceChanged, PriceEvent
from domain.model import Crypto, PricePoint, PriceStats, Ticker
from domain.rules import CurrentPriceNeverMovesBack, HistoryKeepsTheNewest

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Materialised histories of this many cryptos at most (about 13 KB each at 100 rows).
DEFAULT_MATERIALISED = 1_000
# One counter for every set in the process: a version is never handed out twice, so
# two sets (a test's, a reload's) cannot share one.
_versions = itertools.count(1)


def moment(us: int) -> datetime:
    """The moment ``us`` microseconds after the Unix epoch (how the listener's queries
    give times: exactly what PostgreSQL's timestamptz holds)."""
    return EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True, slots=True)
class HistoryRow:
    row_id: int
    at_us: int  # microseconds since the Unix epoch
    price: float


@dataclass(frozen=True, slots=True)
class CryptoState:
    """A crypto as stored, with its newest history rows in (time, row id) order, in the
    flat arrays the set keeps (it takes them over: a load of 10,000 cryptos then never
    holds a million row objects)."""

    crypto: Crypto  # with its id
    row_ids: array[int]
    times: array[int]  # microseconds since the Unix epoch
    prices: array[float]

    @classmethod
    def of(cls, crypto: Crypto, rows: Iterable[HistoryRow]) -> CryptoState:
        ordered = sorted(rows, key=lambda r: HistoryKeepsTheNewest.order(r.at_us, r.row_id))
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
    version: int = field(default_factory=lambda: next(_versions))

    def insert(self, row: HistoryRow, rule: HistoryKeepsTheNewest) -> bool:
        """Put a row in its place in the history and drop what the rule lets go.
        False when the row was here already."""
        if row.row_id in self.row_ids:
            return False
        order = rule.order
        at = bisect.bisect_left(
            range(len(self.row_ids)),
            order(row.at_us, row.row_id),
            key=lambda i: order(self.times[i], self.row_ids[i]),
        )
        self.row_ids.insert(at, row.row_id)
        self.times.insert(at, row.at_us)
        self.prices.insert(at, row.price)
        self.trim(rule)
        return True

    def trim(self, rule: HistoryKeepsTheNewest) -> bool:
        """Drop the oldest rows the rule lets go; whether any went."""
        extra = rule.surplus(len(self.row_ids))
        if extra:
            del self.row_ids[:extra], self.times[:extra], self.prices[:extra]
        return extra > 0


class TrackedSet:
    """The tracked cryptos by symbol and by id, with their histories."""

    def __init__(self, keep: int, *, materialised: int = DEFAULT_MATERIALISED) -> None:
        self._history = HistoryKeepsTheNewest(keep)  # refuses keep < 1
        self.keep = keep
        self._by_symbol: dict[str, _Entry] = {}
        self._by_id: dict[int, _Entry] = {}
        self._listed: list[Crypto] | None = None
        self._list_version = next(_versions)
        self._points: LRUCache[int, list[PricePoint]] = LRUCache(materialised)

    # Reads. The same objects come back until the crypto changes; ``version_of`` says
    # at which version, so a caller may keep what it made of them by that version
    # (the HTTP layer keeps the JSON it rendered).

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

    def oldest_update(self) -> datetime | None:
        """The oldest current price's ``last_updated`` (None: nothing tracked). A walk
        over the set, for a scrape now and then (about 1 ms at 10,000 cryptos)."""
        return min((e.crypto.last_updated for e in self._by_id.values()), default=None)

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

    def stats(self, symbol: Ticker, limit: int | None = None) -> PriceStats | None:
        """Of the newest ``limit`` rows (all held when None)."""
        entry = self._by_symbol.get(symbol.value)
        if entry is None:
            return None
        if limit is not None and limit < len(entry.prices):
            return PriceStats.of(entry.crypto.current_price, entry.prices[-limit:])
        if entry.stats is None:
            entry.stats = PriceStats.of(entry.crypto.current_price, entry.prices)
        return entry.stats

    def version_of(self, value: object, symbol: Ticker | None = None) -> int | None:
        """The version of ``value`` while this set still hands it out: of the list
        (``symbol`` None), or of ``symbol``'s crypto, history or stats. None for any
        other value (one read through to the database, or one since replaced): it has
        no version, and nothing made of it may be kept."""
        if symbol is None:
            return self._list_version if value is self._listed else None
        entry = self._by_symbol.get(symbol.value)
        if entry is None:
            return None
        if (
            value is entry.crypto
            or value is entry.stats
            or value is self._points.get(self._id(entry))
        ):
            return entry.version
        return None

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
        self._list_changed()
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
        rule = self._history if keep is None else HistoryKeepsTheNewest(min(keep, self.keep))
        events: list[PriceEvent] = []
        for state in states:
            entry = self._by_id.get(state.crypto_id)
            if entry is None:
                continue
            changed = False
            for row in state.rows:
                changed |= entry.insert(row, rule)
            changed |= entry.trim(rule)
            crypto = entry.crypto
            moved = (crypto.current_price, crypto.last_updated) != (
                state.current_price,
                state.last_updated,
            )
            backwards = CurrentPriceNeverMovesBack(crypto.last_updated, state.last_updated)
            if moved and not backwards.is_broken():
                entry.crypto = replace(
                    crypto, current_price=state.current_price, last_updated=state.last_updated
                )
                self._list_changed()
                changed = True
                events.append(PriceChanged(crypto.symbol, state.current_price, state.last_updated))
            if changed:
                entry.stats = None
                entry.version = next(_versions)
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
        entry.trim(self._history)
        self._by_symbol[state.crypto.symbol.value] = entry
        self._by_id[self._id_of(state.crypto)] = entry
        self._list_changed()

    def _drop(self, crypto_id: int) -> None:
        entry = self._by_id.pop(crypto_id)
        if self._by_symbol.get(entry.crypto.symbol.value) is entry:
            del self._by_symbol[entry.crypto.symbol.value]
        self._points.pop(crypto_id, None)
        self._list_changed()

    def _list_changed(self) -> None:
        self._listed = None
        self._list_version = next(_versions)

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
