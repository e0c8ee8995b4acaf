"""An operator's view of the server as deployed (``sanic ... --factory`` in a process
of its own): JSON logs that never show a secret, and /metrics."""

import asyncio
import json
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.e2e.conftest import forget_keys
from tests.fakes.coingecko_server import Failure
from tests.support.database import truncate_tables
from tests.support.metrics import Scrape
from tests.support.redis_server import machine_redis_url
from tests.support.server_process import running_server, server_env

pytestmark = pytest.mark.integration

LOG_FIELDS = {"time", "level", "logger", "message"}


def with_password(database_url: str, password: str) -> str:
    """The URL with a password: the test PostgreSQL trusts 127.0.0.1, so it is ignored."""
    parts = urlsplit(database_url)
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user or 'postgres'}:{password}@{host}"))


def forged(token: str) -> str:
    header, payload, _signature = token.split(".")
    return f"{header}.{payload}.{'A' * 43}"


async def wait_for_scrape(client, condition, seconds: float = 30) -> Scrape:
    deadline = time.monotonic() + seconds
    while True:
        scrape = Scrape((await client.get("/metrics")).text)
        if condition(scrape):
            return scrape
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {seconds} s; last scrape:\n{scrape.text}")
        await asyncio.sleep(0.2)


async def test_json_logs_show_no_secret_and_tag_each_request(database_url, gecko, tmp_path):
    await truncate_tables(database_url)
    secrets = {
        "database password": f"db-pw-{uuid.uuid4().hex}",
        "api key": f"CG-{uuid.uuid4().hex}",
        "jwt secret": f"jwt-{uuid.uuid4().hex}{uuid.uuid4().hex}",
        "password": f"pw-{uuid.uuid4().hex}",
        "wrong password": f"wrong-{uuid.uuid4().hex}",
    }
    gecko.plan, gecko.api_key = "demo", secrets["api key"]  # the key must reach it
    env = server_env(
        with_password(database_url, secrets["database password"]),
        gecko.base_url,
        tmp_path,
        LOG_FORMAT="json",
        COINGECKO_API_PLAN="demo",
        COINGECKO_API_KEY=secrets["api key"],
        JWT_SECRET=secrets["jwt secret"],
        PRICE_POLL_INTERVAL_SECONDS="1",
    )
    async with running_server(env, tmp_path / "server.log") as server:
        await server.wait_ready()
        async with server.client() as client:
            body = {"username": "operator", "password": secrets["password"]}
            assert (await client.post("/auth/register", json=body)).status_code == 201
            wrong = {**body, "password": secrets["wrong password"]}
            assert (await client.post("/auth/login", json=wrong)).status_code == 401
            r = await client.post("/auth/login", json=body)
            secrets["token"] = r.json()["token"]
            auth = {"Authorization": f"Bearer {secrets['token']}"}

            r = await client.post("/crypto", json={"symbol": "BTC"}, headers=auth)
            assert r.status_code == 201, r.text
            r = await client.get("/crypto/BTC", headers={**auth, "X-Request-ID": "abc-123"})
            assert r.status_code == 200 and r.headers["x-request-id"] == "abc-123"
            assert (await client.get("/crypto/NOPE", headers=auth)).status_code == 404
            forgery = {"Authorization": f"Bearer {forged(secrets['token'])}"}
            assert (await client.get("/crypto", headers=forgery)).status_code == 401
            gecko.fail(Failure.server_error(), path="/coins/markets", times=1)
            r = await client.post("/crypto", json={"symbol": "ETH"}, headers=auth)
            assert r.status_code == 500  # logged as warnings, with CoinGecko's answer
            assert (await client.get("/crypto", headers=auth)).status_code == 200
            # The poller's lines too.
            await wait_for_scrape(client, lambda s: s.value("cps_poll_cycles_total") >= 1)
        assert await server.stop() == 0
    log = server.log()

    assert [name for name, secret in secrets.items() if secret in log] == []

    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert all(isinstance(line, dict) and line.keys() >= LOG_FIELDS for line in lines)
    [access] = [line for line in lines if line.get("request_id") == "abc-123"]
    assert access["logger"] == "interfaces.http.access"
    assert (access["method"], access["route"], access["path"], access["status"]) == (
        "GET",
        "/crypto/<symbol>",
        "/crypto/BTC",
        200,
    )
    assert isinstance(access["duration_ms"], int | float)
    failures = [line for line in lines if "answered 503" in line["message"]]
    assert {(line["level"], line["logger"]) for line in failures} == {
        ("WARNING", "infrastructure.coingecko.client"),
        ("WARNING", "interfaces.http.errors"),
    }
    assert len({line["request_id"] for line in failures}) == 1
    loggers = {line["logger"] for line in lines}
    assert {
        "sanic.root",
        "sanic.server",
        "interfaces.http.access",
        "application.poll_schedule",
    } <= loggers


async def test_metrics_count_what_the_server_did(database_url, gecko, tmp_path):
    await truncate_tables(database_url)
    redis_url, prefix = machine_redis_url(), f"cps-test-{uuid.uuid4().hex[:10]}:"
    env = server_env(
        database_url,
        gecko.base_url,
        tmp_path,
        LOG_FORMAT="json",
        PRICE_POLL_INTERVAL_SECONDS="1",
        REDIS_URL=redis_url,  # the ticker cache: the second lookup hits
        REDIS_KEY_PREFIX=prefix,
    )
    sent = {"200": 0, "401": 0, "404": 0}
    try:
        async with running_server(env, tmp_path / "server.log") as server:
            await server.wait_ready()
            async with server.client() as client:
                auth = await server.register()
                add = {"json": {"symbol": "BTC"}, "headers": auth}
                assert (await client.post("/crypto", **add)).status_code == 201  # cache miss
                assert (await client.delete("/crypto/BTC", headers=auth)).status_code == 200
                assert (await client.post("/crypto", **add)).status_code == 201  # cache hit
                for i in range(24):
                    symbol, headers, status = [
                        ("BTC", auth, "200"),
                        (f"NO{i}", auth, "404"),
                        (f"X{i}", {}, "401"),
                    ][i % 3]
                    r = await client.get(f"/crypto/{symbol}", headers=headers)
                    assert r.status_code == int(status), r.text
                    sent[status] += 1
                await client.get("/no/such/route")
                scrape = await wait_for_scrape(
                    client,
                    lambda s: (
                        s.value("cps_poll_cycles_total", outcome="ok") >= 1
                        and s.value("cps_tracked_cryptos") == 1
                        and s.value("cps_read_model_live") == 1
                    ),
                )
    finally:
        await forget_keys(redis_url, prefix)

    requests, route = "cps_http_requests_total", "/crypto/<symbol>"
    for status, count in sent.items():
        assert scrape.value(requests, route=route, method="GET", status=status) == count, status
    assert scrape.value(requests, route="unmatched", status="404") == 1
    assert scrape.value(requests, route="/crypto", method="POST", status="201") == 2
    total = sum(sent.values())
    histogram = "cps_http_request_duration_seconds"
    assert scrape.value(f"{histogram}_count", route=route, method="GET") == total
    assert scrape.value(f"{histogram}_bucket", route=route, method="GET", le="+Inf") == total
    buckets = [s for s in scrape.samples(f"{histogram}_bucket") if s.labels["route"] == route]
    assert len({s.labels["le"] for s in buckets}) > 5
    assert not [r for r in scrape.label_values(requests, "route") if "NO" in r or "such" in r]

    calls = "cps_coingecko_calls_total"
    markets = len(gecko.calls("/coins/markets"))
    assert markets == 1  # the second add found BTC in the cache
    assert scrape.value(calls, endpoint="/coins/markets", outcome="ok") == markets
    assert scrape.value(calls, endpoint="/simple/price", outcome="ok") >= 1
    lookups = "cps_ticker_cache_lookups_total"
    assert scrape.value(lookups, cache="redis", result="miss") == 1
    assert scrape.value(lookups, cache="redis", result="hit") == 1
    assert scrape.value("cps_coingecko_rate_limit_wait_seconds_count") >= markets + 1

    assert scrape.value("cps_poller_leader") == 1
    assert scrape.value("cps_read_model_loads_total") == 1  # at start, none lost
    assert scrape.value("cps_poll_cycle_duration_seconds_count") >= 1
