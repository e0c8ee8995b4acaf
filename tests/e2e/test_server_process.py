"""The server as deployed: ``sanic interfaces.http.app:create_app --factory`` with four
workers, as a separate process. Exactly one of them polls CoinGecko."""

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import JWT_SECRET
from tests.support.database import truncate_tables
from tests.support.live_server import free_port, sanic_command

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
INTERVAL = 1.0


async def wait_until_up(client: httpx.AsyncClient, process, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.returncode is None, "the server exited during start-up"
        try:
            if (await client.get("/health/ready")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError("the server did not become ready")


async def test_four_workers_run_one_poller(database_url, gecko, tmp_path):
    await truncate_tables(database_url)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "COINGECKO_BASE_URL": gecko.base_url,
        "COINGECKO_CALLS_PER_MINUTE": "10000",
        "JWT_SECRET": JWT_SECRET,
        "BCRYPT_ROUNDS": "4",
        "PRICE_POLL_INTERVAL_SECONDS": str(INTERVAL),
        "DATA_DIR": str(tmp_path),
    }
    env.pop("REDIS_URL", None)
    log = (tmp_path / "server.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        *sanic_command(port, workers=4),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
            await wait_until_up(client, process)
            r = await client.post(
                "/auth/register", json={"username": "ops", "password": "op password"}
            )
            auth = {"Authorization": f"Bearer {r.json()['token']}"}
            for symbol in ("BTC", "ETH"):
                r = await client.post("/crypto", json={"symbol": symbol}, headers=auth)
                assert r.status_code == 201, r.text
            gecko.clear_requests()
            gecko.set_price("bitcoin", 70000.0)
            await asyncio.sleep(5 * INTERVAL)
            polls = gecko.calls("/simple/price")
            # one poller: about one call a second (two ids in one batch); four would make ~20
            assert 3 <= len(polls) <= 7, len(polls)
            assert all(sorted(c.query["ids"].split(",")) == ["bitcoin", "ethereum"] for c in polls)
            r = await client.get("/crypto/BTC", headers=auth)
            assert r.json()["current_price"] == 70000.0
            history = (await client.get("/crypto/BTC/history", headers=auth)).json()["history"]
            assert len(history) >= 3
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = await asyncio.wait_for(process.wait(), timeout=30)
        except TimeoutError:
            process.kill()
            raise
        finally:
            log.close()
    assert code == 0, (tmp_path / "server.log").read_text()[-3000:]


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
