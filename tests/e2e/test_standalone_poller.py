"""``python -m interfaces.standalone_poller``: the same wiring as the API, polling on its own, and
stopping cleanly on SIGTERM."""

import asyncio
import signal
import sys
import time

import asyncpg
import pytest

from infrastructure.db.config import connect_kwargs
from tests.support.database import insert_cryptos, truncate_tables
from tests.support.server_process import ROOT, server_env

pytestmark = pytest.mark.integration


async def test_the_standalone_poller_polls_and_stops_on_sigterm(database_url, gecko, tmp_path):
    await truncate_tables(database_url)
    await insert_cryptos(database_url, ("BTC", "bitcoin", "Bitcoin"))
    conn = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        gecko.set_price("bitcoin", 64000.0)
        env = server_env(database_url, gecko.base_url, tmp_path, PRICE_POLL_INTERVAL_SECONDS="1")
        log = tmp_path / "poller.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "interfaces.standalone_poller",
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=out,
            )
        try:
            deadline = time.monotonic() + 30
            while (
                await conn.fetchval("SELECT (current_prices->>'usd')::float8 FROM cryptos")
                != 64000.0
            ):
                assert process.returncode is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                await asyncio.sleep(0.1)
        finally:
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), timeout=30)
        assert await conn.fetchval("SELECT count(*) FROM price_history") >= 1
    finally:
        await conn.close()
    assert code == 0, log.read_text()
    assert "price poller stopped" in log.read_text()
    assert "Traceback" not in log.read_text()
