"""A serving process opens at most ``connections_per_process(DATABASE_URL)`` PostgreSQL
connections: measured on a live app whose pool is full, whose read model listens and
whose poller leads. The Kubernetes manifests size ``max_connections`` from that figure
(tests/integration/test_k8s_manifests.py), so it must be the real one."""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg
import pytest
from tortoise.connection import get_connection

from infrastructure.db.config import CONNECTION, connect_kwargs, connections_per_process
from infrastructure.db.leader_lock import POLLER_LOCK_KEY
from infrastructure.settings import Settings
from interfaces.http.app import create_app
from tests.e2e import conftest
from tests.fakes.coingecko_server import FakeCoinGecko
from tests.support.database import database_name, fresh_database
from tests.support.live_server import serve

pytestmark = pytest.mark.integration

POOL = 3  # small, so that filling it is quick
WITHIN = 30.0

OTHER_CONNECTIONS = """
SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()
"""
# Advisory locks are per database: pollers of other databases (other tests) hold the same key.
LEADER = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND objid = $1 AND granted
  AND database = (SELECT oid FROM pg_database WHERE datname = $2)
"""


async def until(condition, what: str) -> None:
    give_up = time.monotonic() + WITHIN
    while not await condition():
        assert time.monotonic() < give_up, f"not within {WITHIN} s: {what}"
        await asyncio.sleep(0.05)


async def test_a_busy_leading_process_opens_its_pool_plus_its_dedicated_connections(
    gecko: FakeCoinGecko,
) -> None:
    with fresh_database() as base_url:
        url = f"{base_url}?maxsize={POOL}"
        env = {**conftest.test_env(url, gecko.base_url, None), "PRICE_POLLER_ENABLED": "true"}
        app = create_app(settings=Settings.from_env(env))
        observer = await asyncpg.connect(**connect_kwargs(base_url))
        async with serve(app), contextlib.AsyncExitStack() as held:
            wiring = app.ctx.wiring

            async def listening() -> bool:
                return wiring.read_model.live

            async def leading() -> bool:
                key = POLLER_LOCK_KEY & 0xFFFFFFFF
                return await observer.fetchval(LEADER, key, database_name(base_url)) == 1

            await until(listening, "the read model listens")
            await until(leading, "the poller holds its lock")
            pool = await get_connection(CONNECTION)._ready_pool()
            for _ in range(POOL):  # every pooled connection taken at once
                await held.enter_async_context(pool.acquire())
            opened = await observer.fetchval(OTHER_CONNECTIONS, database_name(base_url))
        await observer.close()
    assert opened == connections_per_process(url)
