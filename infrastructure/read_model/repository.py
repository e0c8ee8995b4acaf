"""The crypto repository every request uses: reads from this process's read model
while it is live, from PostgreSQL otherwise; writes go to PostgreSQL and return once
the read model has them (``LiveReadModel.sync``)."""

from __future__ import annotations

from collections.abc import Sequence

from domain.model import Crypto, PricePoint, PriceStats, PriceUpdate, Ticker, TrackedCoin
from domain.ports import CryptoRepository
from infrastructure.read_model.live import LiveReadModel


class ReadModelCryptoRepository:
    """Implements ``domain.ports.CryptoRepository`` in front of the database's."""

    def __init__(self, database: CryptoRepository, model: LiveReadModel) -> None:
        self._db = database
        self._model = model

    async def list(self) -> list[Crypto]:
        if self._model.live:
            return self._model.store.list()
        return await self._db.list()

    async def get(self, symbol: Ticker) -> Crypto | None:
        if self._model.live:
            return self._model.store.get(symbol)
        return await self._db.get(symbol)

    async def history(self, symbol: Ticker, limit: int) -> list[PricePoint] | None:
        if self._model.live and 1 <= limit <= self._model.store.keep:
            return self._model.store.history(symbol, limit)
        return await self._db.history(symbol, limit)

    async def stats(self, symbol: Ticker, limit: int) -> PriceStats | None:
        if self._model.live and 1 <= limit <= self._model.store.keep:
            return self._model.store.stats(symbol, limit)
        return await self._db.stats(symbol, limit)

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
