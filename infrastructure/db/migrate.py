"""Apply the committed aerich migrations from code (what ``aerich upgrade`` does).

The server calls this for the embedded PostgreSQL, and the tests for every fresh
database. Against a database you manage yourself, run ``aerich -c aerich.ini upgrade``
(``make migrate``) instead.
"""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg
from aerich import Command
from tortoise.context import TortoiseContext

from infrastructure.db.config import APP_LABEL, connect_kwargs, tortoise_config

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK_KEY = 0x6370736D  # "cpsm": serialises concurrent upgrades of one database


async def upgrade(database_url: str) -> list[str]:
    """Apply every committed migration the database lacks, each in a transaction;
    return the names of those applied (empty when it was up to date).

    Safe to call again, and from several processes at once: a PostgreSQL advisory
    lock lets one upgrade run at a time. Tortoise is initialised in a context of its
    own that is closed on return, so the caller's Tortoise state (or the lack of it)
    is untouched: a later ``Tortoise.init`` or ``register_tortoise`` in the same
    process works as usual.
    """
    config = tortoise_config(database_url)
    credentials = config["connections"]["default"]["credentials"]
    credentials.update(minsize=1, maxsize=2)
    lock = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        await lock.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        async with TortoiseContext():
            # aerich calls Tortoise.init, which fills the context just entered.
            command = Command(tortoise_config=config, app=APP_LABEL, location=str(MIGRATIONS_DIR))
            await command.init()
            applied = await command.upgrade(run_in_transaction=True)
    finally:
        await lock.close(timeout=10)  # ends the session, which releases the advisory lock
    for name in applied:
        log.info("applied migration %s", name)
    return applied
