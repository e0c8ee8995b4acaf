"""Fresh PostgreSQL databases for tests.

Every test session gets its own database on the machine's PostgreSQL (by default
``postgres://postgres@127.0.0.1:5432/postgres`` administers it; set
``TEST_DATABASE_ADMIN_URL`` to use another server or user), migrated with the
committed aerich migrations, and dropped at the end. When PostgreSQL cannot be
reached, ``DatabaseUnavailable`` is raised: the tests fail, they never skip.

The helpers are plain functions and context managers so that any conftest can build
its fixtures on them (``tests/integration/conftest.py`` shows how).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from tortoise import Tortoise

from infrastructure.db.config import connect_kwargs, tortoise_config
from infrastructure.db.migrate import upgrade

T = TypeVar("T")

ADMIN_URL_ENV = "TEST_DATABASE_ADMIN_URL"
DEFAULT_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
REPO_ROOT = Path(__file__).resolve().parents[2]
TABLES = ("price_history", "cryptos", "users", "coingecko_month_calls")
DATABASE_PREFIX = "cps_test"
AERICH_TIMEOUT_SECONDS = 120.0


class DatabaseUnavailable(RuntimeError):
    """The test PostgreSQL could not be reached or refused an admin command."""


def admin_url() -> str:
    return os.environ.get(ADMIN_URL_ENV) or DEFAULT_ADMIN_URL


def url_for(database: str, base_url: str | None = None) -> str:
    """``base_url`` (the admin URL by default) pointed at another database."""
    parts = urlsplit(base_url or admin_url())
    return urlunsplit(parts._replace(path=f"/{database}"))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a private event loop in a thread of its own,
    so that sync fixtures can use async helpers whether or not a loop is running."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coro)
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=target, name="test-database-admin")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


async def _admin_execute(sql: str) -> None:
    url = admin_url()
    try:
        conn = await asyncpg.connect(**connect_kwargs(url))
    except (OSError, asyncpg.PostgresError) as error:
        raise DatabaseUnavailable(
            f"cannot reach the test PostgreSQL at {url} ({type(error).__name__}: {error}); "
            f"integration tests need it running, or {ADMIN_URL_ENV} pointing at one"
        ) from error
    try:
        await conn.execute(sql, timeout=60)
    finally:
        await conn.close(timeout=10)


def create_database(prefix: str = DATABASE_PREFIX) -> str:
    """Create an empty, uniquely named database; return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    run_async(_admin_execute(f'CREATE DATABASE "{name}"'))
    return url_for(name)


def drop_database(url: str) -> None:
    """Drop a database, closing whatever connections still use it."""
    name = database_name(url)
    run_async(_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def migrate(url: str) -> list[str]:
    """Apply the committed migrations (aerich's Command API, as the server does)."""
    return run_async(upgrade(url))


@contextmanager
def fresh_database(prefix: str = DATABASE_PREFIX, *, migrated: bool = True) -> Iterator[str]:
    """A new database for the duration of the block, migrated unless told not to;
    dropped afterwards."""
    url = create_database(prefix)
    try:
        if migrated:
            migrate(url)
        yield url
    finally:
        drop_database(url)


async def truncate_tables(url: str) -> None:
    """Empty every application table and restart the id sequences."""
    conn = await asyncpg.connect(**connect_kwargs(url))
    try:
        await conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE", timeout=30)
    finally:
        await conn.close(timeout=10)


async def insert_cryptos(url: str, *coins: tuple[str, str, str]) -> None:
    """Track ``(symbol, coin_id, name)`` cryptos (price 1.0 in usd as of 2024-01-01, no
    history) straight in the database, without asking CoinGecko as adding them through
    the API does. Only newer prices are recorded: any time the CoinGecko stand-in gives
    (from ``UPDATED_AT``, 2024-03-25, on) is newer, so the first poll records one."""
    conn = await asyncpg.connect(**connect_kwargs(url))
    try:
        await conn.executemany(
            "INSERT INTO cryptos (symbol, coin_id, name, current_prices, last_updated) "
            "VALUES ($1, $2, $3, '{\"usd\": 1.0}', '2024-01-01T00:00:00Z')",
            coins,
        )
    finally:
        await conn.close(timeout=10)


@asynccontextmanager
async def tortoise_session(url: str) -> AsyncIterator[None]:
    """Tortoise initialised on ``url`` for the block (in the current context, which
    pytest-asyncio hands on from a fixture to its test), then closed."""
    await Tortoise.init(config=tortoise_config(url))
    try:
        yield
    finally:
        await Tortoise.close_connections()


def aerich_command() -> list[str]:
    """The ``aerich`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("aerich")
    if script.exists():
        return [str(script)]
    found = shutil.which("aerich")
    return [found] if found else [sys.executable, "-m", "aerich"]


def run_aerich(
    *args: str,
    database_url: str,
    config: Path | str = "aerich.ini",
    cwd: Path = REPO_ROOT,
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``aerich -c <config> <args>`` as a person would, at ``cwd`` (the repository
    root by default) with ``DATABASE_URL`` set; output captured, never raising on a
    non-zero exit (check ``returncode``)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "AERICH_NO_TORTOISE_V1_WARNING": "1",
        **(extra_env or {}),
    }
    return subprocess.run(
        [*aerich_command(), "-c", str(config), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=AERICH_TIMEOUT_SECONDS,
        check=False,
    )
