"""Redis is only a cache: stopped mid-run, every endpoint still works, and the cache
is used again once Redis is back, without a restart."""

import asyncio
import time

import pytest
import redis

from tests.support.clock import wait_until

pytestmark = pytest.mark.integration


async def markets_calls(api) -> int:
    return len(api.gecko.calls("/coins/markets"))


async def add_again(api, symbol):
    await api.client.delete(f"/crypto/{symbol}", headers=api.auth)
    return await api.client.post("/crypto", json={"symbol": symbol}, headers=api.auth)


async def test_redis_stopped_mid_run(make_api, private_redis, caplog):
    async with make_api(REDIS_URL=private_redis.url) as api:
        r = await api.client.post("/crypto", json={"symbol": "BTC"}, headers=api.auth)
        assert r.status_code == 201
        keys = redis.Redis.from_url(private_redis.url).keys("*ticker:BTC")
        assert len(keys) == 1  # the mapping went to Redis

        await asyncio.to_thread(private_redis.stop)
        before = await markets_calls(api)
        started = time.monotonic()
        r = await add_again(api, "BTC")
        assert r.status_code == 201
        assert await markets_calls(api) == before + 1  # resolved upstream instead
        eth = await api.client.post("/crypto", json={"symbol": "ETH"}, headers=api.auth)
        assert eth.status_code == 201
        assert time.monotonic() - started < 10  # a dead cache costs at most short timeouts
        for path in ("/crypto", "/crypto/BTC", "/crypto/BTC/history", "/crypto/BTC/stats"):
            assert (await api.client.get(path, headers=api.auth)).status_code == 200
        ready = await api.client.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["cache"] is False
        assert any("redis" in m.lower() for m in caplog.messages)

        await asyncio.to_thread(private_redis.start)

        async def cache_ready() -> bool:
            # Its check asks Redis even while the cache skips it, and a success ends the
            # skipping (which would otherwise end by itself 5 s after the last failure).
            return (await api.client.get("/health/ready")).json()["cache"] is True

        await wait_until(cache_ready, "the readiness check to find Redis back")
        assert (await add_again(api, "ETH")).status_code == 201  # fills the new Redis
        calls = await markets_calls(api)
        assert (await add_again(api, "ETH")).status_code == 201
        assert await markets_calls(api) == calls  # answered by Redis again
