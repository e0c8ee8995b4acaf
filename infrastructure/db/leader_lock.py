"""Leader election over a PostgreSQL advisory lock.

Every server process (each replica, and any standalone poller) runs a poller, but
only the one holding this lock polls. The lock is tied to a dedicated connection:
when its holder dies or loses the connection, PostgreSQL releases it and another
process takes over.
"""

from __future__ import annotations

import logging

import asyncpg

from infrastructure.db.config import connect_kwargs

log = logging.getLogger(__name__)

POLLER_LOCK_KEY = 0x63707370  # "cpsp": one number the whole deployment agrees on


class AdvisoryLeaderLock:
    def __init__(self, database_url: str, key: int = POLLER_LOCK_KEY, timeout: float = 5.0) -> None:
        self._connect = {**connect_kwargs(database_url), "timeout": timeout}
        self._key = key
        self._timeout = timeout
        self._conn: asyncpg.Connection | None = None
        self._unreachable = False  # warn once per outage, not at every turn

    async def acquire(self) -> bool:
        """True when this process holds the lock (now or already); never raises."""
        try:
            held = await self._acquire()
        except (TimeoutError, OSError, asyncpg.PostgresError) as error:
            if not self._unreachable:
                self._unreachable = True
                log.warning("poller leader election: database unreachable (%s)", error)
            await self.release()
            return False
        if self._unreachable:
            self._unreachable = False
            log.info("poller leader election: database reachable again")
        return held

    async def _acquire(self) -> bool:
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.fetchval("SELECT 1", timeout=self._timeout)
            return True
        await self.release()
        conn = await asyncpg.connect(**self._connect)
        try:
            won = await conn.fetchval(
                "SELECT pg_try_advisory_lock($1)", self._key, timeout=self._timeout
            )
        except BaseException:
            await conn.close(timeout=self._timeout)
            raise
        if not won:
            await conn.close(timeout=self._timeout)
            return False
        self._conn = conn
        log.info("this process now runs the price poller")
        return True

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=self._timeout)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                conn.terminate()
