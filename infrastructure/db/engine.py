"""Tortoise's asyncpg client with a deadline on every database operation, as a Tortoise
engine (``"engine": "infrastructure.db.engine"`` in a connection's config).

Tortoise 1.1.9 takes a pooled connection with ``pool.acquire()``: no timeout, so a
request waits as long as the pool has no free connection. Worse, a query cut short by
``asyncio.timeout`` still hands its connection back with ``pool.release()``, which is
shielded from cancellation and waits, without a time limit, for PostgreSQL to
acknowledge the cancelled query: with the server paused (SIGSTOP) that is until it
resumes, whatever timeout the caller set. Here each operation (taking a connection,
every statement run on it, giving it back) ends within one deadline; a connection
whose server did not answer in time is closed instead of waited for.

A failure to reach PostgreSQL (refused, reset, timed out, shutting down, out of
connections) leaves as ``domain.errors.StorageUnavailable``, logged once per outage
and once more when the database answers again; the use cases and the HTTP layer see
only the domain error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient

from domain.errors import StorageUnavailable

log = logging.getLogger(__name__)

# Errors that mean PostgreSQL cannot be reached or cannot serve right now, as opposed
# to errors in what was asked of it (those keep their own meaning: a conflict, a bug).
UNAVAILABLE: tuple[type[BaseException], ...] = (
    TimeoutError,  # our deadline, a connect or command timeout (asyncio's is this one)
    OSError,  # refused, reset, no socket file; Tortoise's DBConnectionError is one too
    asyncpg.PostgresConnectionError,  # class 08, and a connection closed mid-query
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up, cancelled
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
)

_deadline: ContextVar[float | None] = ContextVar("database_deadline", default=None)


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` (or what it wraps: Tortoise wraps some asyncpg errors) says
    that the database is out of reach rather than that the request was wrong."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, UNAVAILABLE):
            return True
        seen = seen.__cause__
    return False


@contextmanager
def database_deadline(seconds: float) -> Iterator[None]:
    """Database operations started in this block (in this task) get ``seconds``
    instead of the connection's own deadline."""
    token = _deadline.set(seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


class OutageLog:
    """One WARNING when the database stops answering, one INFO when it answers again:
    never a line per failed request."""

    def __init__(self) -> None:
        self._since: float | None = None

    def failed(self, reason: str) -> None:
        if self._since is None:
            self._since = time.monotonic()
            log.warning("database unavailable (%s): requests get 503 until it answers", reason)

    def answered(self) -> None:
        if self._since is not None:
            seconds, self._since = time.monotonic() - self._since, None
            log.info("database available again after %.1f s", seconds)


# One database per process: whichever pool or request finds it gone reports it here.
OUTAGE = OutageLog()


def describe(error: BaseException) -> str:
    """``Type: message`` of the error and of each error it wraps, on one line."""
    parts = []
    seen: BaseException | None = error
    while seen is not None:
        if not isinstance(seen, asyncio.CancelledError):
            parts.append(f"{type(seen).__name__}: {seen}" if str(seen) else type(seen).__name__)
        seen = seen.__cause__
    return " <- ".join(parts)


class _PoolReconnectFilter(logging.Filter):
    """asyncpg's pool logs a traceback each time it fails to reconnect up to its
    ``min_size`` (every 1, 2, 4 ... 60 s): that is the outage reported once above."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and is_unavailable(error):
            OUTAGE.failed(describe(error))
            return False
        return True


def fold_pool_reconnect_tracebacks() -> None:
    """Install the filter above on asyncpg's pool logger (once, however often called);
    ``configure_logging`` calls it."""
    pool_log = logging.getLogger("asyncpg.pool")
    if not any(isinstance(f, _PoolReconnectFilter) for f in pool_log.filters):
        pool_log.addFilter(_PoolReconnectFilter())


class DeadlineAsyncpgClient(AsyncpgDBClient):
    """``AsyncpgDBClient`` whose every pooled operation ends within ``operation_timeout``
    seconds (none when ``None``), and whose unreachable database is a
    ``StorageUnavailable``."""

    def __init__(self, *args: Any, operation_timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.operation_timeout = operation_timeout

    @asynccontextmanager
    async def acquire_connection(self) -> AsyncIterator[Any]:
        seconds = _deadline.get() or self.operation_timeout
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                pool = await self._ready_pool()
                # The acquire timeout is also the budget of the release in the background.
                conn = await pool.acquire(timeout=seconds)
                try:
                    yield conn
                except BaseException as error:
                    if deadline.expired() or is_unavailable(error):
                        # A server that did not answer may never acknowledge the cancelled
                        # query, and release() would wait for it: close the connection.
                        conn.terminate()
                    raise
                finally:
                    await pool.release(conn)
        except Exception as error:
            if not is_unavailable(error):
                if isinstance(error, asyncpg.PostgresError):
                    OUTAGE.answered()
                raise
            OUTAGE.failed(
                f"no answer within {seconds:g} s" if deadline.expired() else describe(error)
            )
            raise StorageUnavailable() from error
        OUTAGE.answered()

    async def _ready_pool(self) -> asyncpg.Pool:
        """The pool, created on first use (what Tortoise's own wrapper does)."""
        if self._pool is None:
            async with self._pool_init_lock:
                if self._pool is None:
                    await self.create_connection(with_db=True)
        assert self._pool is not None
        return self._pool


client_class = DeadlineAsyncpgClient
