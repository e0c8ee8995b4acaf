"""The monthly budget of CoinGecko calls over real HTTP, on an injected clock: every
call any request makes is counted in PostgreSQL; once the month's budget is spent,
adds and refreshes answer 503 with Retry-After and reach nobody (the stand-in's
request log), while reads go on; the count outlives the app and restarts with the
calendar month."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from infrastructure.db.config import connect_kwargs
from infrastructure.settings import Settings
from interfaces.http.app import create_app
from tests.e2e.conftest import forget_keys
from tests.e2e.conftest import test_env as base_env
from tests.e2e.test_openapi import check_answer
from tests.fakes.coingecko_server import FakeCoinGecko
from tests.support.clock import SetClock
from tests.support.database import insert_cryptos, truncate_tables
from tests.support.live_server import serve
from tests.support.redis_server import machine_redis_url

pytestmark = pytest.mark.integration

NOVEMBER_END = datetime(2024, 11, 30, 23, 0, tzinfo=UTC)  # an hour before it renews
WITHIN = 30.0  # seconds: a generous bound for what the poller does every second


@asynccontextmanager
async def budget_api(
    database_url: str, gecko: FakeCoinGecko, clock: SetClock, calls: int
) -> AsyncIterator[httpx.AsyncClient]:
    """An app with a budget of ``calls`` a month, on ``clock``; its client carries a
    bearer token. The database is left as it is (a restart keeps the count)."""
    env = {
        **base_env(database_url, gecko.base_url, machine_redis_url()),
        "COINGECKO_CALLS_PER_MONTH": str(calls),
    }
    app = create_app(settings=Settings.from_env(env), clock=clock)
    try:
        async with serve(app) as client:
            login = {"username": "tester", "password": "test password"}
            r = await client.post("/auth/register", json=login)
            if r.status_code == 409:  # registered by the app before the restart
                r = await client.post("/auth/login", json=login)
            client.headers["Authorization"] = f"Bearer {r.json()['token']}"
            yield client
    finally:
        await forget_keys(env["REDIS_URL"], env["REDIS_KEY_PREFIX"])


async def counted(database_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        rows = await conn.fetch("SELECT month, calls FROM coingecko_month_calls ORDER BY month")
    finally:
        await conn.close()
    return {f"{row['month']:%Y-%m}": row["calls"] for row in rows}


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[str]:
    await truncate_tables(database_url)
    yield database_url
    await truncate_tables(database_url)


async def test_a_spent_budget_refuses_adds_and_refreshes_without_a_call(database, gecko):
    clock = SetClock(NOVEMBER_END)
    async with budget_api(database, gecko, clock, calls=3) as client:
        assert (await client.post("/crypto", json={"symbol": "BTC"})).status_code == 201
        assert (await client.post("/crypto", json={"symbol": "ETH"})).status_code == 201
        while len(gecko.requests) < 3:  # however many calls an add made: every one counts
            assert (await client.put("/crypto/BTC/refresh")).status_code == 200
        assert await counted(database) == {"2024-11": 3}
        made = len(gecko.requests)

        spec = (await client.get("/docs/openapi.json")).json()
        for (method, path), r in (
            (("post", "/crypto"), await client.post("/crypto", json={"symbol": "DOGE"})),
            (("put", "/crypto/{symbol}/refresh"), await client.put("/crypto/ETH/refresh")),
        ):
            check_answer(spec, method, path, r)  # as the OpenAPI description says
            assert "Retry-After" in spec["paths"][path][method]["responses"]["503"]["headers"]
            assert r.status_code == 503
            assert r.headers["Retry-After"] == "3600"  # until 1 December, 00:00 UTC
            message = r.json()["error"]
            assert "budget of 3 CoinGecko calls (COINGECKO_CALLS_PER_MONTH) is spent" in message
            assert "renews at 2024-12-01T00:00:00Z" in message
        assert len(gecko.requests) == made  # nothing reached CoinGecko
        assert await counted(database) == {"2024-11": 3}

        listed = await client.get("/crypto")  # reads keep working
        assert listed.status_code == 200
        assert [c["symbol"] for c in listed.json()["cryptos"]] == ["BTC", "ETH"]
        assert (await client.get("/crypto/BTC/history")).status_code == 200
        metrics = (await client.get("/metrics")).text
        assert "cps_coingecko_month_calls 3.0" in metrics
        assert "cps_coingecko_month_budget 3.0" in metrics

        clock.now += timedelta(hours=1)  # December: a new month, a new count
        assert (await client.post("/crypto", json={"symbol": "DOGE"})).status_code == 201
        assert len(gecko.requests) > made
        assert (await counted(database))["2024-12"] == len(gecko.requests) - made


async def test_a_new_app_on_the_same_database_keeps_the_count(database, gecko):
    clock = SetClock(NOVEMBER_END)
    async with budget_api(database, gecko, clock, calls=100) as client:
        assert (await client.post("/crypto", json={"symbol": "BTC"})).status_code == 201
        assert (await client.put("/crypto/BTC/refresh")).status_code == 200
    made = len(gecko.requests)
    assert await counted(database) == {"2024-11": made}

    # restarted with a budget of one more call than the first app made
    async with budget_api(database, gecko, clock, calls=made + 1) as client:
        assert (await client.put("/crypto/BTC/refresh")).status_code == 200
        r = await client.put("/crypto/BTC/refresh")
        assert r.status_code == 503 and "is spent" in r.json()["error"]
    assert len(gecko.requests) == made + 1
    assert await counted(database) == {"2024-11": made + 1}


class ShiftedClock:
    """Stands still at ``frozen`` until ``run_from`` is called, then runs at the real
    pace from there: a month boundary crossed in seconds of real time."""

    def __init__(self, frozen: datetime) -> None:
        self.frozen, self.started = frozen, 0.0

    def run_from(self, at: datetime) -> None:
        self.frozen, self.started = at, time.monotonic()

    def __call__(self) -> datetime:
        if not self.started:
            return self.frozen
        return self.frozen + timedelta(seconds=time.monotonic() - self.started)


async def refused_polls(client: httpx.AsyncClient) -> float:
    found = re.search(
        r'^cps_poll_cycles_total\{outcome="budget_spent"\} (\S+)$',
        (await client.get("/metrics")).text,
        re.MULTILINE,
    )
    assert found is not None
    return float(found.group(1))


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    give_up = time.monotonic() + WITHIN
    while not await condition():
        assert time.monotonic() < give_up, f"not within {WITHIN} s: {what}"
        await asyncio.sleep(0.05)


async def test_the_poller_waits_for_the_new_month_then_polls(database, gecko):
    boundary = datetime(2024, 12, 1, tzinfo=UTC)
    clock = ShiftedClock(boundary - timedelta(seconds=2))
    await insert_cryptos(database, ("BTC", "bitcoin", "Bitcoin"))
    conn = await asyncpg.connect(**connect_kwargs(database))
    try:  # November's poll share (9 of 10) spent: only the reserve is left
        await conn.execute("INSERT INTO coingecko_month_calls VALUES ('2024-11-01', 9)")
    finally:
        await conn.close()
    env = {
        **base_env(database, gecko.base_url, None),
        "COINGECKO_CALLS_PER_MONTH": "10",
        "PRICE_POLLER_ENABLED": "true",
        "PRICE_POLL_INTERVAL_SECONDS": "1",
    }
    app = create_app(settings=Settings.from_env(env), clock=clock)
    async with serve(app) as client:
        before = await refused_polls(client)

        async def refused() -> bool:
            return await refused_polls(client) > before

        await until(refused, "a poll refused by the spent budget")
        assert gecko.calls("/simple/price") == []  # the refused poll reached nobody
        clock.run_from(boundary - timedelta(seconds=1))

        async def polled_in_december() -> bool:
            return (await counted(database)).get("2024-12", 0) >= 1

        await until(polled_in_december, "a poll in the new month")
    calls = await counted(database)
    assert calls["2024-11"] == 9  # no poll spent November's reserve
    # each call counted: the polls' and the quote currencies' check
    made = gecko.calls("/simple/price") + gecko.calls("/simple/supported_vs_currencies")
    assert len(made) == calls["2024-12"]
