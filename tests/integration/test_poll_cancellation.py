"""A poll cycle cancelled mid-transaction (what SIGTERM does to the poller) leaves
nothing half-written: the price update it had made is rolled back with the rest."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import asyncpg
import pytest
from tortoise.connection import get_connection

from domain.model import Crypto, PriceUpdate, Ticker
from infrastructure.db.config import connect_kwargs
from infrastructure.db.repositories import TortoiseCryptoRepository

pytestmark = pytest.mark.integration

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2024, 1, 1, 12, 0, 30, tzinfo=UTC)


async def one(sql: str) -> object:
    _, found = await get_connection("default").execute_query(sql)
    return found[0][0]


async def test_cancelling_record_prices_mid_transaction_rolls_it_all_back(db: str) -> None:
    repo = TortoiseCryptoRepository()
    stored = await repo.add(Crypto(Ticker("BTC"), "bitcoin", "Bitcoin", {"usd": 100.0}, T0))
    assert stored.id is not None
    blocker = await asyncpg.connect(**connect_kwargs(db))
    try:
        # Let the cycle lock and update `cryptos`, then stall on its history insert.
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE price_history IN EXCLUSIVE MODE")
        cycle = asyncio.create_task(
            repo.record_prices([PriceUpdate(stored.id, {"usd": 200.0}, LATER)], keep=100)
        )
        deadline = time.monotonic() + 30
        while not await blocker.fetchval(
            "SELECT count(*) FROM pg_locks WHERE relation = 'price_history'::regclass "
            "AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ):
            assert time.monotonic() < deadline, "the cycle never reached its history insert"
            assert not cycle.done(), cycle
            await asyncio.sleep(0.02)
        cycle.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cycle
        await transaction.rollback()
    finally:
        await blocker.close()

    assert await one("SELECT (current_prices->>'usd')::float8 FROM cryptos") == 100.0
    assert await one("SELECT count(*) FROM price_history") == 1
    # ...and the connection went back to the pool in a usable state.
    await repo.record_prices([PriceUpdate(stored.id, {"usd": 300.0}, LATER)], keep=100)
    assert await one("SELECT (current_prices->>'usd')::float8 FROM cryptos") == 300.0
