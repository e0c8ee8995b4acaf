"""The embedded PostgreSQL: started from the wheel in a scratch directory, migrated,
queried, and stopped by the process that started it (a process that found it running
leaves it running). Takes a few seconds (initdb)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from domain.model import Crypto, Ticker
from infrastructure.db.config import connect_kwargs
from infrastructure.db.embedded import start_embedded_postgres, stop_embedded_postgres
from infrastructure.db.migrate import shipped_migrations, upgrade
from infrastructure.db.repositories import TortoiseCryptoRepository
from tests.support.database import REPO_ROOT, tortoise_session

pytestmark = pytest.mark.integration

NOW = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)

# Starts the server or uses the running one, runs a query through it, prints the URL
# and the database's name, and exits.
USER = """
import asyncio, sys
import asyncpg
from infrastructure.db.config import connect_kwargs
from infrastructure.db.embedded import start_embedded_postgres

url = start_embedded_postgres(sys.argv[1])

async def ask():
    conn = await asyncpg.connect(**connect_kwargs(url))
    try:
        return await conn.fetchval("SELECT current_database()")
    finally:
        await conn.close()

print(url, asyncio.run(ask()))
"""


async def server_version(url: str) -> int:
    conn = await asyncpg.connect(**connect_kwargs(url))
    try:
        return int(await conn.fetchval("SHOW server_version_num"))
    finally:
        await conn.close()


def use_in_another_process(pgdata: Path) -> tuple[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", USER, str(pgdata)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    url, database = done.stdout.split()
    return url, database


async def test_embedded_postgres_starts_migrates_answers_and_stops(private_tmp: Path) -> None:
    pgdata = private_tmp / "data" / "postgres"

    # A process that starts it stops it as it exits.
    url, database = await asyncio.to_thread(use_in_another_process, pgdata)
    assert database == "crypto_prices"
    assert url.startswith("postgres://postgres@/crypto_prices?host=")
    assert (pgdata / "PG_VERSION").exists()
    assert not (pgdata / "postmaster.pid").exists(), "the process that started it should stop it"

    try:
        assert await asyncio.to_thread(start_embedded_postgres, pgdata) == url
        assert await asyncio.to_thread(start_embedded_postgres, pgdata) == url  # reused
        # A process that found it running leaves it running as it exits.
        assert await asyncio.to_thread(use_in_another_process, pgdata) == (url, database)
        assert await server_version(url) >= 180000  # the wheel's server, not the machine's

        applied = await upgrade(url)
        assert applied == shipped_migrations()
        async with tortoise_session(url):
            repo = TortoiseCryptoRepository()
            stored = await repo.add(
                Crypto(Ticker("BTC"), "bitcoin", "Bitcoin", {"usd": 45000.5}, NOW)
            )
            assert await repo.list() == [stored]
    finally:
        await asyncio.to_thread(stop_embedded_postgres, pgdata)

    assert not (pgdata / "postmaster.pid").exists()
    with pytest.raises(OSError):
        await server_version(url)
