"""Exactly one poller: the PostgreSQL advisory lock elects one leader, and another
worker takes over when the leader's connection goes away."""

import asyncpg
import pytest

from infrastructure.db.config import connect_kwargs
from infrastructure.db.leader_lock import AdvisoryLeaderLock

pytestmark = pytest.mark.integration

KEY = 424242


async def test_one_leader_at_a_time(database_url):
    workers = [AdvisoryLeaderLock(database_url, key=KEY) for _ in range(4)]
    try:
        results = [await w.acquire() for w in workers]
        assert results == [True, False, False, False]
        assert await workers[0].acquire()  # still the leader
        assert not await workers[1].acquire()
        await workers[0].release()
        assert await workers[2].acquire()
        assert not await workers[0].acquire()
    finally:
        for w in workers:
            await w.release()


async def test_takeover_when_the_leader_connection_dies(database_url):
    leader, follower = (
        AdvisoryLeaderLock(database_url, key=KEY),
        AdvisoryLeaderLock(database_url, key=KEY),
    )
    admin = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        assert await leader.acquire()
        assert not await follower.acquire()
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks "
            "WHERE locktype = 'advisory' AND objid = $1 AND granted "
            # Advisory locks are per database: never another test's.
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            KEY,
        )
        assert await follower.acquire()
        assert not await leader.acquire()  # it notices it lost the lock
    finally:
        await admin.close()
        await leader.release()
        await follower.release()


async def test_unreachable_database_is_not_leader_and_does_not_raise():
    lock = AdvisoryLeaderLock("postgres://postgres@127.0.0.1:1/nowhere", key=KEY, timeout=0.5)
    assert not await lock.acquire()
