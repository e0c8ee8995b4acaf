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

Currencies: the set keeps the configured ones (``QuoteCurrencies``) and drops any
other it is given (one no longer configured stays in the database, unread). Each
history row is one observation, with a price in each currency it has one in; a
currency configured after an observation was made has none there.

Memory: the history is kept in flat arrays, 8 bytes each for row id and time, and per
currency one more array of prices (NaN where an observation has none in it): about
2.6 KB a crypto at 100 rows in one currency, about 0.9 KB more per further currency;
what a read hands out (``PricePoint`` lists) is built on the first read after a
change and kept for the most recently read (crypto, currency) pairs only. See
bench/RESULTS.md for the figures at 10,000 cryptos.
"""

from __future__ import annotations

import bisect
import itertools
import math
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from cachetools import LRUCache

from domain.events import CryptoAdded, CryptoRemoved, PriceChanged, PriceEvent
from domain.model import Crypto, PricePoint, Prices, PriceStats, QuoteCurrencies, Ticker
from domain.rules import CurrentPriceNeverMovesBack, HistoryKeepsTheNewest

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Materialised histories of this many (crypto, currency) pairs at most (about 13 KB
# each at 100 rows).
DEFAULT_MATERIALISED = 1_000
# One counter for every set in the process: a version is never handed out twice, so
# two sets (a test's, a reload's) cannot share one.
_versions = itertools.count(1)


def moment(us: int) -> datetime:
    """The moment ``us`` microseconds after the Unix epoch (how the listener's queries
    give times: exactly what PostgreSQL's timestamptz holds)."""
    return EPOCH + timedelta(microseconds=us)


NO_PRICE = math.nan  # in a currency's array: the observation has no price in it


def has_price(price: float) -> bool:
    return not math.isnan(price)


def priced(prices: Prices, codes: Iterable[str]) -> dict[str, float]:
    """The prices in ``codes`` (the configured currencies) that ``prices`` has."""
    kept = {}
    for code in codes:
        price = prices.get(code)
        if price is not None and has_price(price):
            kept[code] = price
    return kept


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One observation: its price in each currency it has one in."""

    row_id: int
    at_us: int  # microseconds since the Unix epoch
    prices: Prices


@dataclass(frozen=True, slots=True)
class CryptoState:
    """A crypto as stored, with its newest history rows in (time, row id) order, in the
    flat arrays the set keeps (it takes them over: a load of 10,000 cryptos then never
    holds a million row objects): one array of prices per currency, aligned with the
    row ids and times, NO_PRICE where an observation has none in it. A currency the
    set is not configured with is dropped; one it has and ``prices`` lacks has no price
    in any row."""

    crypto: Crypto  # with its id
    row_ids: array[int]
    times: array[int]  # microseconds since the Unix epoch
    prices: Mapping[str, array[float]]

    @classmethod
    def of(cls, crypto: Crypto, rows: Iterable[HistoryRow]) -> CryptoState:
        ordered = sorted(rows, key=lambda r: HistoryKeepsTheNewest.order(r.at_us, r.row_id))
        codes = dict.fromkeys(itertools.chain(crypto.prices, *(r.prices for r in ordered)))
        return cls(
            crypto,
            array("q", [r.row_id for r in ordered]),
            array("q", [r.at_us for r in ordered]),
            {c: array("d", [r.prices.get(c, NO_PRICE) for r in ordered]) for c in codes},
        )


@dataclass(frozen=True, slots=True)
class PriceState:
    """A crypto's current prices after a price batch, and the history rows it got."""

    crypto_id: int
    prices: Prices
    last_updated: datetime
    rows: Sequence[HistoryRow]


@dataclass(slots=True, eq=False)
class _Entry:
    crypto: Crypto  # its prices: the configured currencies' only
    prices: dict[str, array[float]]  # a currency's prices, aligned with row_ids and times
    row_ids: array[int] = field(default_factory=lambda: array("q"))
    times: array[int] = field(default_factory=lambda: array("q"))
    stats: dict[str, PriceStats] = field(default_factory=dict)  # by currency
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
        for code, prices in self.prices.items():
            prices.insert(at, row.prices.get(code, NO_PRICE))
        self.trim(rule)
        return True

    def trim(self, rule: HistoryKeepsTheNewest) -> bool:
        """Drop the oldest rows the rule lets go; whether any went."""
        extra = rule.surplus(len(self.row_ids))
        if extra:
            del self.row_ids[:extra], self.times[:extra]
            for prices in self.prices.values():
                del prices[:extra]
        return extra > 0


class TrackedSet:
    """The tracked cryptos by symbol and by id, with their histories in each of the
    configured currencies."""

    def __init__(
        self, keep: int, currencies: QuoteCurrencies, *, materialised: int = DEFAULT_MATERIALISED
    ) -> None:
        self._history = HistoryKeepsTheNewest(keep)  # refuses keep < 1
        self.keep = keep
        self._codes = currencies.codes
        self._by_symbol: dict[str, _Entry] = {}
        self._by_id: dict[int, _Entry] = {}
        self._listed: list[Crypto] | None = None
        self._list_version = next(_versions)
        # By (crypto id, currency): the prices in it that the held observations have.
        self._points: LRUCache[tuple[int, str], list[PricePoint]] = LRUCache(materialised)

    # Reads. The same objects come back until the crypto changes; ``version_of`` says
    # at which version, so a caller may keep what it made of them by that version
    # (the HTTP layer keeps the JSON it rendered, by currency too).

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

    def history(self, symbol: Ticker, limit: int, currency: str) -> list[PricePoint] | None:
        """The prices in ``currency`` of the newest ``limit`` observations that have
        one, oldest first (none at all in a currency not configured)."""
        entry = self._by_symbol.get(symbol.value)
        if entry is None:
            return None
        prices = entry.prices.get(currency)
        if prices is None:
            return []
        key = (self._id(entry), currency)
        points = self._points.get(key)
        if points is None:
            points = [
                PricePoint(p, moment(t))
                for p, t in zip(prices, entry.times, strict=True)
                if has_price(p)
            ]
            self._points[key] = points
        if limit >= len(prices):
            return points
        if len(points) == len(prices):  # every observation has a price in it
            return points[-limit:]
        # As many of the newest points as the newest ``limit`` observations have prices.
        return points[len(points) - sum(map(has_price, prices[-limit:])) :]

    def stats(self, symbol: Ticker, limit: int | None, currency: str) -> PriceStats | None:
        """Of the prices in ``currency`` of the newest ``limit`` observations (all held
        when None)."""
        entry = self._by_symbol.get(symbol.value)
        if entry is None:
            return None
        current = entry.crypto.price_in(currency)
        prices = entry.prices.get(currency, ())  # none held in a currency not configured
        # A NO_PRICE is no valid price: PriceStats.of leaves it out.
        if limit is not None and limit < len(prices):
            return PriceStats.of(current, prices[-limit:])
        stats = entry.stats.get(currency)
        if stats is None:
            stats = entry.stats[currency] = PriceStats.of(current, prices)
        return stats

    def version_of(self, value: object, symbol: Ticker | None = None) -> int | None:
        """The version of ``value`` while this set still hands it out: of the list
        (``symbol`` None), or of ``symbol``'s crypto, or its history or stats in any
        currency. None for any other value (one read through to the database, or one
        since replaced): it has no version, and nothing made of it may be kept."""
        if symbol is None:
            return self._list_version if value is self._listed else None
        entry = self._by_symbol.get(symbol.value)
        if entry is None:
            return None
        if value is entry.crypto or any(value is s for s in entry.stats.values()):
            return entry.version
        crypto_id = self._id(entry)
        if any(value is self._points.get((crypto_id, code)) for code in self._codes):
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
            entry = self._put(state)
            events += self._difference(before.get(self._id(entry)), entry.crypto)
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
            entry = self._put(state)
            events += self._difference(old, entry.crypto)
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
            prices = priced(state.prices, self._codes)
            moved = (crypto.prices, crypto.last_updated) != (prices, state.last_updated)
            backwards = CurrentPriceNeverMovesBack(crypto.last_updated, state.last_updated)
            if moved and not backwards.is_broken():
                entry.crypto = replace(crypto, prices=prices, last_updated=state.last_updated)
                self._list_changed()
                changed = True
                events.append(PriceChanged(crypto.symbol, prices, state.last_updated))
            if changed:
                entry.stats.clear()
                entry.version = next(_versions)
                self._forget_points(state.crypto_id)
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

    def _put(self, state: CryptoState) -> _Entry:
        """Hold ``state`` in the configured currencies only."""
        held = len(state.row_ids)
        prices = {
            code: state.prices.get(code) or array("d", [NO_PRICE]) * held for code in self._codes
        }
        crypto = replace(state.crypto, prices=priced(state.crypto.prices, self._codes))
        entry = _Entry(crypto, prices, state.row_ids, state.times)
        entry.trim(self._history)
        self._by_symbol[crypto.symbol.value] = entry
        self._by_id[self._id_of(crypto)] = entry
        self._list_changed()
        return entry

    def _drop(self, crypto_id: int) -> None:
        entry = self._by_id.pop(crypto_id)
        if self._by_symbol.get(entry.crypto.symbol.value) is entry:
            del self._by_symbol[entry.crypto.symbol.value]
        self._forget_points(crypto_id)
        self._list_changed()

    def _forget_points(self, crypto_id: int) -> None:
        for code in self._codes:
            self._points.pop((crypto_id, code), None)

    def _list_changed(self) -> None:
        self._listed = None
        self._list_version = next(_versions)

    @staticmethod
    def _difference(old: _Entry | None, new: Crypto) -> list[PriceEvent]:
        if old is None or old.crypto.symbol != new.symbol:
            return [CryptoAdded(new)]
        if (old.crypto.prices, old.crypto.last_updated) != (new.prices, new.last_updated):
            return [PriceChanged(new.symbol, new.prices, new.last_updated)]
        return []
