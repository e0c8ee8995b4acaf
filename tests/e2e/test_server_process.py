"""The server as deployed: ``sanic interfaces.http.app:create_app --factory`` with four
workers, as a separate process. Exactly one of them polls CoinGecko."""

import asyncio
import os

import pytest

from tests.e2e.conftest import JWT_SECRET
from tests.support.clock import wait_until
from tests.support.live_server import free_port, sanic_command
from tests.support.server_process import LEADER_LINE, ROOT, polling_env, running_server

pytestmark = pytest.mark.integration

INTERVAL = 1.0
CYCLES = 3


async def test_four_workers_run_one_poller(database_url, gecko, tmp_path):
    """Shown exactly, not by the pace of the calls: every poll cycle is logged by one
    worker, the one that took the lead, and every /simple/price call CoinGecko got is
    one of its cycles (two cryptos: one batch a cycle)."""
    coins = ("BTC", "bitcoin", "Bitcoin"), ("ETH", "ethereum", "Ethereum")
    env = await polling_env(database_url, gecko.base_url, tmp_path, INTERVAL, *coins)
    gecko.set_price("bitcoin", 70000.0)
    async with running_server(env, tmp_path / "server.log", workers=4) as server:

        def workers() -> set[int]:
            return {line["pid"] for line in server.log_lines()} - {server.process.pid}

        await server.wait_ready()
        await wait_until(lambda: len(workers()) >= 4, "four workers")
        await wait_until(lambda: len(server.poll_cycles()) >= CYCLES, f"{CYCLES} poll cycles")
        cycles_before = len(server.poll_cycles())
        calls = gecko.calls("/simple/price")
        lines = server.log_lines()  # taken before the shutdown, when another may lead
        cycles = server.poll_cycles()
        auth = await server.register()
        async with server.client() as client:
            crypto = (await client.get("/crypto/BTC", headers=auth)).json()
            history = (await client.get("/crypto/BTC/history", headers=auth)).json()["history"]
        assert await server.stop() == 0, server.log()[-3000:]

    [leader] = [line["pid"] for line in lines if line["message"] == LEADER_LINE]
    assert {line["pid"] for line in cycles} == {leader}  # one of the four workers
    # A cycle's call is recorded before its line is written, and at most one is in flight.
    assert cycles_before <= len(calls) <= len(cycles) + 1
    assert all(sorted(c.query["ids"].split(",")) == ["bitcoin", "ethereum"] for c in calls)
    assert crypto["current_price"] == 70000.0
    assert len(history) >= CYCLES


@pytest.mark.parametrize(
    "setting, value",
    [("JWT_SECRET", "too-short"), ("HISTORY_LIMIT", "0"), ("COINGECKO_API_PLAN", "gold")],
)
async def test_a_bad_setting_stops_start_up_with_a_clear_message(database_url, setting, value):
    env = {**os.environ, "DATABASE_URL": database_url, "JWT_SECRET": JWT_SECRET, setting: value}
    process = await asyncio.create_subprocess_exec(
        *sanic_command(free_port(), workers=1),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode != 0
    text = output.decode()
    assert f"configuration error: {setting}" in text
    assert "Traceback" not in text
