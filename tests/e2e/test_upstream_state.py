"""Staleness you can see: the stream's ``upstream`` event and ``cps_price_age_seconds``.

Two apps on one database (two replicas, each polling every second, so one of them
leads), the CoinGecko stand-in answering 429 and then prices again, and a clock the
test sets: every stream, on either replica, hears each state once, with the time it
began."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime

import httpx
import pytest

from infrastructure.settings import Settings
from interfaces.http.app import create_app
from tests.e2e import conftest
from tests.e2e.test_price_stream import STREAM, Stream
from tests.fakes.coingecko_server import Failure
from tests.support.clock import SetClock
from tests.support.database import truncate_tables
from tests.support.live_server import serve
from tests.support.metrics import Scrape
from tests.support.redis_server import machine_redis_url

pytestmark = pytest.mark.integration

T0 = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
T1 = datetime(2024, 1, 1, 12, 3, 0, tzinfo=UTC)
T2 = datetime(2024, 1, 1, 12, 7, 30, tzinfo=UTC)


@asynccontextmanager
async def replicas(
    database_url: str, gecko, clock: SetClock, count: int, *, poller: bool = True
) -> AsyncIterator[list[httpx.AsyncClient]]:
    await truncate_tables(database_url)
    env = {
        **conftest.test_env(database_url, gecko.base_url, machine_redis_url()),
        "PRICE_POLLER_ENABLED": str(poller).lower(),
        "PRICE_POLL_INTERVAL_SECONDS": "1",
    }
    try:
        async with AsyncExitStack() as stack:
            yield [
                await stack.enter_async_context(
                    serve(create_app(settings=Settings.from_env(env), clock=clock))
                )
                for _ in range(count)
            ]
    finally:
        await conftest.forget_keys(env["REDIS_URL"], env["REDIS_KEY_PREFIX"])


async def token(client: httpx.AsyncClient) -> dict[str, str]:
    body = {"username": "tester", "password": "test password"}
    r = await client.post("/auth/register", json=body)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def next_upstream(events: Stream) -> dict[str, str]:
    """The next ``upstream`` event's data (price events in between are skipped); a poll
    cycle runs every second, so 30 s is a generous bound (heartbeats included)."""
    async with asyncio.timeout(30):
        while True:
            event = await events.next_event()
            assert event is not None, "the stream ended"
            if event.name == "upstream":
                return event.data


async def test_every_replica_s_streams_hear_rate_limited_then_ok_with_their_since(
    database_url, gecko
):
    clock = SetClock(T0)
    async with replicas(database_url, gecko, clock, 2) as clients:
        auth = await token(clients[0])
        r = await clients[1].post("/crypto", json={"symbol": "BTC"}, headers=auth)
        assert r.status_code == 201, r.text
        async with AsyncExitStack() as stack:
            streams = []
            for client in clients:
                response = await stack.enter_async_context(
                    client.stream("GET", "/crypto", headers={**auth, **STREAM})
                )
                assert response.status_code == 200
                streams.append(Stream(response))
            for events in streams:
                snapshot = await events.next_event()
                assert snapshot is not None and snapshot.name == "snapshot"
                # Right after the snapshot when the replica knows it already, else
                # as soon as the first cycle tells it: ok, since the first cycle.
                assert await next_upstream(events) == {
                    "status": "ok",
                    "since": "2024-01-01T12:00:00Z",
                }

            clock.now = T1
            gecko.fail(Failure.rate_limited(1), path="/simple/price")
            for events in streams:
                assert await next_upstream(events) == {
                    "status": "rate_limited",
                    "since": "2024-01-01T12:03:00Z",
                }

            clock.now = T2
            gecko.clear_failures()
            for events in streams:
                # Repeated 429s told nothing new: the next event is the recovery.
                assert await next_upstream(events) == {
                    "status": "ok",
                    "since": "2024-01-01T12:07:30Z",
                }

        # A stream opened now gets the state right after its snapshot.
        for client in clients:
            async with client.stream("GET", "/crypto", headers={**auth, **STREAM}) as response:
                events = Stream(response)
                assert (await events.next_event()).name == "snapshot"
                after = await events.next_event()
                assert (after.name, after.data) == (
                    "upstream",
                    {"status": "ok", "since": "2024-01-01T12:07:30Z"},
                )


async def test_price_age_is_the_oldest_current_price_s_age_and_nan_with_none(database_url, gecko):
    clock = SetClock(T0)
    async with replicas(database_url, gecko, clock, 1, poller=False) as [client]:
        assert math.isnan(await price_age(client))
        auth = await token(client)
        for symbol, at in (("BTC", T0), ("ETH", T1)):
            clock.now = at
            r = await client.post("/crypto", json={"symbol": symbol}, headers=auth)
            assert r.status_code == 201, r.text
        assert_age(*await timed_age(client), oldest=T0)  # BTC's

        clock.now = T2
        assert (await client.put("/crypto/BTC/refresh", headers=auth)).status_code == 200
        assert_age(*await timed_age(client), oldest=T1)  # now ETH's

        assert (await client.delete("/crypto/BTC", headers=auth)).status_code == 200
        assert (await client.delete("/crypto/ETH", headers=auth)).status_code == 200
        assert math.isnan(await price_age(client))


async def price_age(client: httpx.AsyncClient) -> float:
    r = await client.get("/metrics")
    assert r.status_code == 200
    [value] = [s.value for s in Scrape(r.text).samples("cps_price_age_seconds")]
    return value


async def timed_age(client: httpx.AsyncClient) -> tuple[float, float, float]:
    before = time.time()
    age = await price_age(client)
    return before, age, time.time()


def assert_age(before: float, age: float, after: float, *, oldest: datetime) -> None:
    assert before - oldest.timestamp() <= age <= after - oldest.timestamp()
