"""The committed aerich migrations, from code: apply them, and tell whether a database
has them all.

The server applies them itself to the embedded PostgreSQL, and the tests to every
fresh database. Against a database you manage, run ``aerich -c aerich.ini upgrade``
(``make migrate``, the Kubernetes Job) instead. The readiness probe and the Kubernetes
init container ask ``pending_migrations``: a server must not serve on a schema older
than its code.

    python -m infrastructure.db.migrate upgrade          # what aerich upgrade does
    python -m infrastructure.db.migrate check            # exit 1 when some are pending
    python -m infrastructure.db.migrate wait --timeout 600
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import asyncpg
from aerich import Command
from tortoise.context import TortoiseContext

from infrastructure.db.config import APP_LABEL, connect_kwargs, tortoise_config
from infrastructure.log_setup import configure_logging_from

log = logging.getLogger("infrastructure.db.migrate")  # not __name__: that is __main__ under -m

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK_KEY = 0x6370736D  # "cpsm": serialises concurrent upgrades of one database
# How long an upgrade waits for another one to finish (or for a paused database).
LOCK_TIMEOUT_SECONDS = 600.0
CHECK_TIMEOUT_SECONDS = 10.0
_MIGRATION_FILE = re.compile(r"\d+_.+\.py")
# aerich records each applied migration by file name in its own table.
APPLIED_SQL = "SELECT version FROM aerich WHERE app = $1"


def shipped_migrations() -> list[str]:
    """The migration files this code ships, in the order they apply."""
    names = (p.name for p in (MIGRATIONS_DIR / APP_LABEL).iterdir())
    return sorted((n for n in names if _MIGRATION_FILE.fullmatch(n)), key=_number)


def _number(name: str) -> int:
    return int(name.split("_", 1)[0])


def missing_from(applied: Iterable[str]) -> list[str]:
    """The shipped migrations not among ``applied``."""
    done = set(applied)
    return [name for name in shipped_migrations() if name not in done]


async def pending_migrations(
    database_url: str, query_timeout: float = CHECK_TIMEOUT_SECONDS
) -> list[str]:
    """The shipped migrations the database lacks (all of them on an empty database)."""
    conn = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        try:
            rows = await conn.fetch(APPLIED_SQL, APP_LABEL, timeout=query_timeout)
        except asyncpg.UndefinedTableError:
            return shipped_migrations()
    finally:
        await conn.close(timeout=10)
    return missing_from(row["version"] for row in rows)


async def wait_until_current(database_url: str, within: float, every: float = 2.0) -> None:
    """Return once the database has every shipped migration; TimeoutError after
    ``within`` seconds. An unreachable database is waited for like a pending one."""
    deadline = time.monotonic() + within
    while True:
        try:
            pending = await pending_migrations(database_url)
            reason = f"waiting for migrations: {', '.join(pending)}"
        except (OSError, asyncpg.PostgresError, TimeoutError) as error:
            pending, reason = ["?"], f"waiting for the database: {type(error).__name__}: {error}"
        if not pending:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"gave up after {within:g} s {reason}")
        log.info("%s", reason)
        await asyncio.sleep(every)


async def upgrade(database_url: str, lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> list[str]:
    """Apply every committed migration the database lacks, each in a transaction;
    return the names of those applied (empty when it was up to date).

    Safe to call again, and from several processes at once: a PostgreSQL advisory
    lock lets one upgrade run at a time (TimeoutError after ``lock_timeout`` seconds
    without it). Tortoise is initialised in a context of its own that is closed on
    return, so the caller's Tortoise state (or the lack of it) is untouched: a later
    ``Tortoise.init`` or ``register_tortoise`` in the same process works as usual.
    """
    config = tortoise_config(database_url)
    credentials = config["connections"]["default"]["credentials"]
    credentials.update(minsize=1, maxsize=2)
    lock = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        await lock.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY, timeout=lock_timeout)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infrastructure.db.migrate",
        description="Apply or check the committed migrations on DATABASE_URL.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("upgrade", help="apply the migrations the database lacks")
    commands.add_parser("check", help="exit 1 when the database lacks some migrations")
    wait = commands.add_parser("wait", help="wait until the database has every migration")
    wait.add_argument("--timeout", type=float, default=600.0, help="seconds (600)")
    args = parser.parse_args(argv)
    json_logs = configure_logging_from(os.environ).log_format == "json"

    def report(message: str, *, failed: bool = False) -> None:
        # A person reads a plain line; a log shipper (the init container's log is
        # shipped with the app's) one JSON object a line, as everything else logs.
        if json_logs:
            log.log(logging.ERROR if failed else logging.INFO, "%s", message)
        else:
            print(message, file=sys.stderr if failed else sys.stdout)

    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        report("DATABASE_URL is not set", failed=True)
        return 2
    if args.command == "upgrade":
        applied = asyncio.run(upgrade(url))
        report(f"applied: {', '.join(applied)}" if applied else "up to date")
        return 0
    if args.command == "check":
        pending = asyncio.run(pending_migrations(url))
        report(f"pending: {', '.join(pending)}" if pending else "up to date")
        return 1 if pending else 0
    try:
        asyncio.run(wait_until_current(url, args.timeout))
    except TimeoutError as error:
        report(str(error), failed=True)
        return 1
    report("up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
