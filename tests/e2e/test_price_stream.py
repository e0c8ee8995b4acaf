"""The live price stream, over real HTTP from a real server process: GET /crypto with
Accept: text/event-stream."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.database import truncate_tables
from tests.support.server_process import ServerProcess, running_server, server_env

pytestmark = pytest.mark.integration

STREAM = {"Accept": "text/event-stream"}


@dataclass
class Event:
    name: str  # "comment" for a heartbeat line
    data: Any


class Stream:
    """One open stream's events, read as they come."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self, within: float = 10) -> Event | None:
        """The next event or comment; None when the stream ended."""
        name, data = "message", None
        async with asyncio.timeout(within):
            async for line in self._lines:
                if line.startswith(":"):
                    return Event("comment", line[1:].strip())
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = json.loads(line.removeprefix("data: "))
                elif line == "" and data is not None:
                    return Event(name, data)
        return None

    async def next_event(self, within: float = 10) -> Event | None:
        """The next event that is not a heartbeat comment."""
        while (event := await self.next(within)) is not None and event.name == "comment":
            pass
        return event


@asynccontextmanager
async def stream(server: ServerProcess, auth: dict[str, str]) -> AsyncIterator[Stream]:
    async with (
        server.client() as client,
        client.stream("GET", "/crypto", headers={**auth, **STREAM}) as response,
    ):
        yield Stream(response)


@asynccontextmanager
async def server_with(database_url, gecko, tmp_path, **env: str) -> AsyncIterator[ServerProcess]:
    await truncate_tables(database_url)
    settings = server_env(
        database_url, gecko.base_url, tmp_path, PRICE_POLLER_ENABLED="false", **env
    )
    async with running_server(settings, tmp_path / "server.log") as server:
        await server.wait_ready()
        yield server


async def open_streams(server: ServerProcess) -> float:
    async with server.client() as client:
        r = await client.get("/metrics")
    assert r.status_code == 200
    [value] = [
        float(line.split()[-1])
        for line in r.text.splitlines()
        if line.startswith("cps_stream_clients")
    ]
    return value


async def test_the_stream_tells_adds_prices_and_removals_as_they_commit(
    database_url, gecko, tmp_path
):
    async with server_with(database_url, gecko, tmp_path) as server:
        auth = await server.register()
        async with server.client() as api:
            gecko.set_price("bitcoin", 100.0)
            assert (
                await api.post("/crypto", json={"symbol": "BTC"}, headers=auth)
            ).status_code == 201
            async with stream(server, auth) as events:
                assert events.response.status_code == 200
                assert events.response.headers["content-type"].startswith("text/event-stream")
                assert events.response.headers["cache-control"] == "no-store"
                snapshot = await events.next_event()
                assert snapshot is not None and snapshot.name == "snapshot"
                assert [c["symbol"] for c in snapshot.data["cryptos"]] == ["BTC"]
                listed = (await api.get("/crypto", headers=auth)).json()
                assert snapshot.data == listed

                r = await api.post("/crypto", json={"symbol": "ETH"}, headers=auth)
                added = await events.next_event()
                assert added == Event("added", r.json()["crypto"])

                gecko.set_price("bitcoin", 101.5)
                r = await api.put("/crypto/BTC/refresh", headers=auth)
                price = await events.next_event()
                crypto = r.json()["crypto"]
                assert price == Event(
                    "price",
                    {k: crypto[k] for k in ("symbol", "current_price", "last_updated")},
                )
                assert price.data["current_price"] == 101.5

                assert (await api.delete("/crypto/ETH", headers=auth)).status_code == 200
                assert await events.next_event() == Event("removed", {"symbol": "ETH"})


async def test_a_refresh_with_nothing_newer_answers_200_and_sends_no_event(
    database_url, gecko, tmp_path
):
    async with server_with(database_url, gecko, tmp_path) as server:
        auth = await server.register()
        async with server.client() as api:
            assert (
                await api.post("/crypto", json={"symbol": "BTC"}, headers=auth)
            ).status_code == 201
            stored = (await api.get("/crypto/BTC", headers=auth)).json()
            async with stream(server, auth) as events:
                snapshot = await events.next_event()
                assert snapshot is not None and snapshot.name == "snapshot"

                # CoinGecko's price and time are those stored: nothing to record.
                r = await api.put("/crypto/BTC/refresh", headers=auth)
                assert (r.status_code, r.json()["crypto"]) == (200, stored)

                gecko.set_price("bitcoin", 101.5)
                r = await api.put("/crypto/BTC/refresh", headers=auth)
                # The next event is this refresh's: the one before sent none.
                price = await events.next_event()
                assert price is not None and price.name == "price"
                assert price.data["current_price"] == 101.5
            history = (await api.get("/crypto/BTC/history", headers=auth)).json()["history"]
            assert [p["price"] for p in history] == [stored["current_price"], 101.5]


async def test_a_quiet_stream_sends_heartbeats_and_outlives_the_response_timeout(
    database_url, gecko, tmp_path
):
    # Sanic's response timeout (here 1 s) counts from the last bytes sent or received:
    # the heartbeats keep a stream with nothing to tell open past it.
    async with server_with(
        database_url, gecko, tmp_path, STREAM_HEARTBEAT_SECONDS="0.2", SANIC_RESPONSE_TIMEOUT="1"
    ) as server:
        auth = await server.register()
        async with stream(server, auth) as events:
            assert (await events.next()).name == "snapshot"
            started = time.monotonic()
            beats = 0
            while time.monotonic() - started < 3:
                event = await events.next(within=5)
                assert event == Event("comment", "keep-alive"), event
                beats += 1
            assert beats >= 5


async def test_the_stream_ends_when_its_token_expires(database_url, gecko, tmp_path):
    async with server_with(database_url, gecko, tmp_path, JWT_EXPIRES_SECONDS="3") as server:
        auth = await server.register()
        async with stream(server, auth) as events:
            assert (await events.next()).name == "snapshot"
            assert await events.next_event(within=30) is None  # ended, cleanly
        async with stream(server, auth) as again:
            assert again.response.status_code == 401
            await again.response.aread()
            assert again.response.json() == {"error": "token expired"}


async def test_past_stream_max_clients_the_answer_is_503_json(database_url, gecko, tmp_path):
    async with server_with(database_url, gecko, tmp_path, STREAM_MAX_CLIENTS="2") as server:
        auth = await server.register()
        async with stream(server, auth) as first, stream(server, auth) as second:
            assert (await first.next()).name == "snapshot"
            assert (await second.next()).name == "snapshot"
            async with stream(server, auth) as third:
                assert third.response.status_code == 503
                await third.response.aread()
                assert "too many open price streams" in third.response.json()["error"]
            assert await open_streams(server) == 2
        # Closed streams free their places.
        async with stream(server, auth) as fourth:
            assert (await fourth.next()).name == "snapshot"
            assert await open_streams(server) == 1


async def test_the_stream_needs_a_token_and_json_stays_the_default(database_url, gecko, tmp_path):
    async with server_with(database_url, gecko, tmp_path) as server:
        auth = await server.register()
        async with server.client() as api:
            r = await api.get("/crypto", headers=STREAM)
            assert r.status_code == 401
            assert "error" in r.json()
            for accept in (
                "application/json",
                "*/*",
                "application/json, text/event-stream;q=0.5",
                "text/event-stream;q=0",  # q=0: not acceptable (RFC 9110)
                "text/event-stream;q=0, */*;q=0.1",
            ):
                # A stream would never end: the read timeout turns it into a failure.
                r = await api.get("/crypto", headers={**auth, "Accept": accept}, timeout=5)
                assert r.status_code == 200, accept
                assert r.json() == {"cryptos": []}


async def test_sigterm_ends_open_streams_cleanly_and_the_server_exits_at_once(
    database_url, gecko, tmp_path
):
    async with server_with(database_url, gecko, tmp_path, SHUTDOWN_GRACE_SECONDS="30") as server:
        auth = await server.register()
        async with stream(server, auth) as first, stream(server, auth) as second:
            assert (await first.next()).name == "snapshot"
            assert (await second.next()).name == "snapshot"
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            assert await first.next_event(within=15) is None
            assert await second.next_event(within=15) is None
        assert await server.stop(sig=None, seconds=25) == 0
        # Well within the 30 s grace: the streams did not hold the shutdown up.
        assert time.monotonic() - signalled < 15
