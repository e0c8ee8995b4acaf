"""Every database operation has a deadline: a statement that runs too long, or a pool
with no free connection, fails with StorageUnavailable in time and leaves the pool
serving; the migrate helpers give up instead of waiting forever. (Pausing and stopping
a whole PostgreSQL is in tests/e2e/test_database_outage.py, on a private server.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import replace

import asyncpg
import pytest
from tortoise import Tortoise
from tortoise.connection import get_connection

from application.poll_cycle import PollResult
from bootstrap import bootstrap, database
from domain.errors import StorageUnavailable
from infrastructure.db.config import connect_kwargs, tortoise_config
from infrastructure.db.engine import database_deadline
from infrastructure.db.migrate import MIGRATION_LOCK_KEY, pending_migrations, upgrade
from infrastructure.settings import Settings
from tests.e2e.conftest import JWT_SECRET

pytestmark = pytest.mark.integration

# Well above what a loaded machine takes to open a connection and answer SELECT 1, well
# below the statements that must run out of it.
DEADLINE = 2.0
WITHIN = 5.0  # generous: the point is "about the deadline", not "forever"


@pytest.fixture
async def one_connection_pool(database_url: str) -> AsyncIterator[str]:
    """Tortoise on the test database with a pool of one connection and a DEADLINE."""
    await Tortoise.init(config=tortoise_config(f"{database_url}?maxsize=1", DEADLINE))
    try:
        yield database_url
    finally:
        await Tortoise.close_connections()


async def one(sql: str) -> object:
    _, rows = await get_connection("default").execute_query(sql)
    return rows[0][0]


async def test_a_statement_past_the_deadline_is_unavailable_and_the_pool_serves_on(
    one_connection_pool: str,
) -> None:
    started = time.monotonic()
    async with asyncio.timeout(WITHIN + 5):  # a hang fails here, not after 30 s
        with pytest.raises(StorageUnavailable):
            await one("SELECT pg_sleep(30)")
    assert time.monotonic() - started < WITHIN
    assert await one("SELECT 1") == 1  # the only connection came back (or was replaced)


async def test_waiting_for_a_pooled_connection_is_bounded_too(one_connection_pool: str) -> None:
    with database_deadline(30):  # this one may take its time...
        busy = asyncio.create_task(one(f"SELECT 1 FROM pg_sleep({3 * DEADLINE})"))
        await asyncio.sleep(0.2)
    started = time.monotonic()
    with pytest.raises(StorageUnavailable):
        await one("SELECT 1")  # ...while this one cannot get the pool's only connection
    assert time.monotonic() - started < WITHIN
    assert await busy == 1  # the longer deadline let it finish


async def test_errors_in_the_statement_itself_are_not_unavailability(
    one_connection_pool: str,
) -> None:
    with pytest.raises(Exception) as raised:
        await one("SELECT * FROM no_such_table")
    assert not isinstance(raised.value, StorageUnavailable)
    assert await one("SELECT 1") == 1


async def test_the_poller_gets_a_longer_deadline_than_requests(database_url: str) -> None:
    env = {"DATABASE_URL": database_url, "JWT_SECRET": JWT_SECRET}
    wiring = bootstrap(
        Settings.from_env({**env, "DATABASE_TIMEOUT_SECONDS": str(DEADLINE)}),
        setup_logging=lambda _settings: None,
    )

    async def slow_cycle() -> PollResult:
        await one(f"SELECT 1 FROM pg_sleep({2 * DEADLINE})")  # twice a request's deadline
        return PollResult(tracked=0, updated=0, priced=0)

    wiring = replace(wiring, services=replace(wiring.services, poll_cycle=slow_cycle))
    try:
        async with database(wiring):
            with pytest.raises(StorageUnavailable):
                await slow_cycle()
            assert await wiring.poll_schedule().poll() == PollResult(tracked=0, updated=0, priced=0)
    finally:
        await wiring.close()


async def gives_up_in_time(waiting: Awaitable[object]) -> None:
    """``waiting`` raises TimeoutError within WITHIN seconds."""
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(WITHIN + 5):  # ...or it would wait on the lock for good
            await waiting
    assert time.monotonic() - started < WITHIN


async def test_pending_migrations_gives_up_on_a_database_that_does_not_answer(
    database_url: str,
) -> None:
    blocker = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE aerich IN ACCESS EXCLUSIVE MODE")
            await gives_up_in_time(pending_migrations(database_url, query_timeout=DEADLINE))
    finally:
        await blocker.close()


async def test_upgrade_gives_up_waiting_for_the_migration_lock(database_url: str) -> None:
    holder = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        await gives_up_in_time(upgrade(database_url, lock_timeout=DEADLINE))
    finally:
        await holder.close()
