"""Three replicas on one database run one poller between them, and killing them with
SIGKILL one after another (the leader each time) keeps prices moving within two
poll intervals."""

import asyncio
import os
import signal
import time

import asyncpg
import pytest

from infrastructure.db.config import connect_kwargs
from tests.support.database import truncate_tables
from tests.support.server_process import ServerProcess, running_server, server_env

pytestmark = pytest.mark.integration

INTERVAL = 2.0
REPLICAS = 3
LEADER_LINE = "this worker now runs the price poller"


async def rows_at(database_url: str, price: float) -> int:
    conn = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        return await conn.fetchval("SELECT count(*) FROM price_history WHERE price = $1", price)
    finally:
        await conn.close()


async def the_leader(servers: list[ServerProcess], seconds: float) -> ServerProcess:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        leaders = [s for s in servers if s.process.returncode is None and LEADER_LINE in s.log()]
        assert len(leaders) <= 1, "two live replicas both say they run the poller"
        if leaders:
            return leaders[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no replica took the poller")


async def test_replicas_share_one_poller_and_survive_sigkill(database_url, gecko, tmp_path):
    await truncate_tables(database_url)
    env = server_env(
        database_url, gecko.base_url, tmp_path, PRICE_POLL_INTERVAL_SECONDS=str(INTERVAL)
    )
    async with (
        running_server(env, tmp_path / "r0.log") as r0,
        running_server(env, tmp_path / "r1.log") as r1,
        running_server(env, tmp_path / "r2.log") as r2,
    ):
        servers = [r0, r1, r2]
        await asyncio.gather(*(s.wait_ready() for s in servers))
        async with r0.client() as client:
            auth = await r0.register()
            assert (await client.post("/crypto", json={"symbol": "BTC"}, headers=auth)).is_success

        # One poller for the three: about one /simple/price call an interval, not three.
        gecko.clear_requests()
        await asyncio.sleep(3 * INTERVAL)
        calls = len(gecko.calls("/simple/price"))
        assert 2 <= calls <= 4, calls

        for kill in range(REPLICAS - 1):
            leader = await the_leader(servers, 3 * INTERVAL)
            os.killpg(leader.process.pid, signal.SIGKILL)  # the whole pod, as the kubelet does
            await leader.process.wait()
            killed_at = time.monotonic()
            servers.remove(leader)
            # Only a survivor can store this price: the dead leader never saw it.
            price = 80000.0 + kill
            gecko.set_price("bitcoin", price)
            while not await rows_at(database_url, price):
                assert time.monotonic() - killed_at < 2 * INTERVAL + 1.0, "prices stopped moving"
                await asyncio.sleep(0.05)
        assert await the_leader(servers, 3 * INTERVAL) is servers[0]
