"""The read models' listening connections, as PostgreSQL sees them (their
application_name is ``cps-read-model <pid>``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from domain.model import QuoteCurrencies
from infrastructure.db.config import connect_kwargs
from infrastructure.read_model.live import APPLICATION_NAME, LiveReadModel
from tests.support.clock import wait_until

_OF_THIS_DATABASE = (
    "FROM pg_stat_activity WHERE application_name LIKE $1 || '%' AND datname = current_database()"
)


async def listeners(database_url: str) -> list[int]:
    """The backend pids of the listening connections on this database."""
    conn = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        rows = await conn.fetch(f"SELECT pid {_OF_THIS_DATABASE}", APPLICATION_NAME)
        return [r["pid"] for r in rows]
    finally:
        await conn.close()


async def terminate_listeners(database_url: str) -> int:
    """Kill them (pg_terminate_backend); return, with their number, once their
    backends have exited."""
    conn = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        return await conn.fetchval(
            f"SELECT count(*) {_OF_THIS_DATABASE} AND pg_terminate_backend(pid, 10000)",
            APPLICATION_NAME,
        )
    finally:
        await conn.close()


async def went_live(model: LiveReadModel, within: float = 30) -> None:
    """Once ``model`` serves from memory (loaded); fails after ``within`` s."""
    await wait_until(lambda: model.live, "the read model to go live", within)


USD = QuoteCurrencies(("usd",))


@asynccontextmanager
async def live_read_model(
    url: str, keep: int, currencies: QuoteCurrencies = USD, **options: Any
) -> AsyncIterator[LiveReadModel]:
    """A ``LiveReadModel(url, keep, currencies, **options)`` started and loaded (live)
    for the block, stopped after it."""
    model = LiveReadModel(url, keep, currencies, **options)
    await model.start()
    try:
        await went_live(model)
        yield model
    finally:
        await model.stop()
