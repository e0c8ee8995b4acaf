"""The crypto repository every request uses: reads from this process's read model
while it is live, from PostgreSQL otherwise, and from the set last loaded when
PostgreSQL is unavailable too (stale-if-error, as RFC 5861 names it: during an outage
no write can commit, so the last known set is what a reader would get, and it keeps
each price's ``last_updated``); writes go to PostgreSQL and return once the read model
has them (``LiveReadModel.sync``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from domain.errors import StorageUnavailable
from domain.model import Crypto, PricePoint, PriceStats, PriceUpdate, Ticker, TrackedCoin
from domain.ports import CryptoRepository
from infrastructure.read_model.live import LiveReadModel

T = TypeVar("T")


class ReadModelCryptoRepository:
    """Implements ``domain.ports.CryptoRepository`` in front of the database's."""

    def __init__(self, database: CryptoRepository, model: LiveReadModel) -> None:
        self._db = database
        self._model = model

    async def _read_through(self, from_database: Awaitable[T], from_memory: Callable[[], T]) -> T:
        """The database's answer; the set last loaded's when the database is down."""
        try:
            return await from_database
        except StorageUnavailable:
            if self._model.last_known:
                return from_memory()
            raise

    async def list(self) -> list[Crypto]:
        store = self._model.store
        if self._model.live:
            return store.list()
        return await self._read_through(self._db.list(), store.list)

    async def get(self, symbol: Ticker) -> Crypto | None:
        store = self._model.store
        if self._model.live:
            return store.get(symbol)
        return await self._read_through(self._db.get(symbol), lambda: store.get(symbol))

    async def history(self, symbol: Ticker, limit: int, currency: str) -> list[PricePoint] | None:
        store = self._model.store
        if not 1 <= limit <= store.keep:
            return await self._db.history(symbol, limit, currency)
        if self._model.live:
            return store.history(symbol, limit, currency)
        return await self._read_through(
            self._db.history(symbol, limit, currency),
            lambda: store.history(symbol, limit, currency),
        )

    async def stats(self, symbol: Ticker, limit: int, currency: str) -> PriceStats | None:
        store = self._model.store
        if not 1 <= limit <= store.keep:
            return await self._db.stats(symbol, limit, currency)
        if self._model.live:
            return store.stats(symbol, limit, currency)
        return await self._read_through(
            self._db.stats(symbol, limit, currency),
            lambda: store.stats(symbol, limit, currency),
        )

    async def tracked_coins(self) -> list[TrackedCoin]:
        return await self._db.tracked_coins()  # the poller's: the database decides

    async def add(self, crypto: Crypto) -> Crypto:
        added = await self._db.add(crypto)
        await self._model.sync()
        return added

    async def record_prices(self, updates: Sequence[PriceUpdate], keep: int) -> set[int]:
        updated = await self._db.record_prices(updates, keep)
        if updated:
            await self._model.sync()
        return updated

    async def delete(self, symbol: Ticker) -> bool:
        deleted = await self._db.delete(symbol)
        if deleted:
            await self._model.sync()
        return deleted
