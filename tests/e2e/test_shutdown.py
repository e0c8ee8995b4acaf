"""SIGTERM drains: what is in flight is answered, what comes after is turned away,
and the server exits well within Kubernetes' grace period."""

import asyncio
import signal
import time

import httpx
import pytest

from tests.fakes.coingecko_server import Failure
from tests.support import signal_at_start
from tests.support.clock import wait_until
from tests.support.database import truncate_tables
from tests.support.server_process import json_lines, running_server, server_env

pytestmark = pytest.mark.integration

IN_FLIGHT = 20
GRACE_SECONDS = 20  # SHUTDOWN_GRACE_SECONDS' default; k8s gives 35 in all


async def test_sigterm_answers_every_request_in_flight_then_exits(database_url, gecko, tmp_path):
    await truncate_tables(database_url)
    env = server_env(
        database_url,
        gecko.base_url,
        tmp_path,
        PRICE_POLLER_ENABLED="false",
        COINGECKO_TIMEOUT_SECONDS="30",
    )
    async with running_server(env, tmp_path / "server.log") as server:
        await server.wait_ready()
        async with server.client() as client:
            auth = await server.register()
            assert (await client.post("/crypto", json={"symbol": "BTC"}, headers=auth)).is_success
            gecko.set_price("bitcoin", 71000.0)
            gecko.fail(Failure.hang(120), path="/simple/price")

            async def refresh() -> httpx.Response:
                async with server.client() as own:  # a connection each, as 20 clients
                    return await own.put("/crypto/BTC/refresh", headers=auth)

            requests = [asyncio.create_task(refresh()) for _ in range(IN_FLIGHT)]

            async def all_in_flight() -> bool:
                return len(gecko.calls("/simple/price")) >= IN_FLIGHT

            await wait_until(all_in_flight, "every refresh to reach CoinGecko", 30)
            stopped_at = time.monotonic()
            server.process.send_signal(signal.SIGTERM)

            async def refused() -> bool:
                try:
                    async with server.client(timeout=1) as late:
                        await late.get("/health")
                except httpx.TransportError:
                    return True
                return False

            await wait_until(refused, "new connections to be refused", 10)
            gecko.release_hung()
            answers = await asyncio.gather(*requests)
        code = await server.stop(None, seconds=GRACE_SECONDS + 10)
        took = time.monotonic() - stopped_at

    assert [a.status_code for a in answers] == [200] * IN_FLIGHT, [a.text for a in answers]
    assert all(a.json()["crypto"]["current_price"] == 71000.0 for a in answers)
    assert code == 0, server.log()[-3000:]
    assert took < GRACE_SECONDS, took
    assert "Traceback" not in server.log()


@pytest.mark.parametrize(
    "moment, sig",
    [
        ("built", "SIGTERM"),
        ("built", "SIGINT"),
        ("before_server_start", "SIGTERM"),
        ("before_server_start", "SIGINT"),
        ("await", "SIGTERM"),
        ("return", "SIGTERM"),
    ],
)
async def test_a_signal_during_start_up_still_stops_the_server(
    database_url, gecko, tmp_path, moment, sig
):
    """interfaces/http/sanic_fixes.py: without it, a SIGTERM before Sanic installs its
    handlers (the app built, a ``before_server_start`` listener) kills the server at
    once (status 143, no stop listener; as PID 1, it is ignored) and a SIGINT there
    prints a raw KeyboardInterrupt traceback; one handled while Sanic runs the
    ``after_server_start`` listeners kills the server with a traceback (the step still
    awaits: "Event loop stopped before Future completed") or is lost, and the server
    serves on for ever (the step ends in the same turn of the loop). Each line of its
    log stays one JSON object."""
    env = server_env(
        database_url,
        gecko.base_url,
        tmp_path,
        PRICE_POLLER_ENABLED="false",
        LOG_FORMAT="json",
        SIGNAL_AT_START=moment,
        SIGNAL_NAME=sig,
    )
    async with running_server(env, tmp_path / "server.log", signal_at_start.APP) as server:
        code = await server.stop(None, seconds=15)
    log = server.log()
    assert code == 0, log[-3000:]
    messages = [line["message"] for line in json_lines(log)]
    assert signal_at_start.STOPPED_LINE in messages  # a clean stop, listeners and all
    if moment in ("built", "before_server_start"):
        assert f"{sig} while starting: the server stops" in messages
    assert "Traceback" not in log and "KeyboardInterrupt" not in log
