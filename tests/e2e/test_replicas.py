"""Three replicas on one database run one poller between them, and killing them with
SIGKILL one after another (the leader each time) keeps prices moving: within two poll
intervals on an idle machine (the test allows more, for a loaded one)."""

import os
import signal

import asyncpg
import pytest

from infrastructure.db.config import connect_kwargs
from tests.support.clock import wait_until
from tests.support.server_process import (
    LEADER_LINE,
    ServerProcess,
    polling_env,
    running_servers,
)

pytestmark = pytest.mark.integration

INTERVAL = 2.0
REPLICAS = 3
CYCLES = 3
TAKEOVER_SECONDS = 2 * INTERVAL + 10


async def rows_at(database_url: str, price: float) -> int:
    conn = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM price_history WHERE (prices->>'usd')::float8 = $1", price
        )
    finally:
        await conn.close()


def live_leaders(servers: list[ServerProcess]) -> list[ServerProcess]:
    leaders = [s for s in servers if s.process.returncode is None and LEADER_LINE in s.log()]
    assert len(leaders) <= 1, "two live replicas both say they run the poller"
    return leaders


async def the_leader(servers: list[ServerProcess]) -> ServerProcess:
    await wait_until(lambda: bool(live_leaders(servers)), "a replica to take the poller")
    [leader] = live_leaders(servers)
    return leader


async def test_replicas_share_one_poller_and_survive_sigkill(database_url, gecko, tmp_path):
    env = await polling_env(
        database_url, gecko.base_url, tmp_path, INTERVAL, ("BTC", "bitcoin", "Bitcoin")
    )
    async with running_servers(env, tmp_path, REPLICAS) as servers:
        # One poller for the three, shown exactly: one replica logs every poll cycle,
        # and each /simple/price call is one of its cycles (recorded before the cycle's
        # line is written; at most one in flight).
        def cycles() -> list[int]:
            return [len(s.poll_cycles()) for s in servers]

        await wait_until(lambda: sum(cycles()) >= CYCLES, f"{CYCLES} poll cycles")
        before = sum(cycles())
        calls = len(gecko.calls("/simple/price"))
        after = cycles()
        assert sorted(after)[:-1] == [0] * (REPLICAS - 1), after
        assert before <= calls <= sum(after) + 1

        for kill in range(REPLICAS - 1):
            leader = await the_leader(servers)
            os.killpg(leader.process.pid, signal.SIGKILL)  # the whole pod, as the kubelet does
            await leader.process.wait()
            servers.remove(leader)
            # Only a survivor can store this price: the dead leader never saw it.
            price = 80000.0 + kill
            gecko.set_price("bitcoin", price)
            await wait_until(
                lambda price=price: rows_at(database_url, price),
                "a survivor to store a new price",
                seconds=TAKEOVER_SECONDS,
            )
        assert await the_leader(servers) is servers[0]
