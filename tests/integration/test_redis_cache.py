"""RedisTickerCache against real Redis: the machine's for normal operation (a unique key
prefix per test, cleaned up), a private redis-server for outages."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator

import pytest

from domain.model import CoinCandidate, CoinRef, Ticker
from infrastructure.cache import RedisTickerCache
from tests.support.clock import ManualClock, wait_until
from tests.support.ports import refusing_port
from tests.support.redis_server import (  # noqa: F401 (fixtures: machine_url, prefix, raw)
    RedisServer,
    machine_url_fixture,
    prefix_fixture,
    raw_fixture,
)

pytestmark = pytest.mark.integration

LOGGER = "infrastructure.cache.redis_cache"
BTC, ETH = Ticker("BTC"), Ticker("ETH")
BITCOIN = CoinRef("bitcoin", "Bitcoin")
ETHEREUM = CoinRef("ethereum", "Ethereum")


@pytest.fixture
async def cache(machine_url: str, prefix: str) -> AsyncIterator[RedisTickerCache]:
    c = RedisTickerCache.from_url(machine_url, key_prefix=prefix)
    yield c
    await c.close()


def logged(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and r.levelno == level and text in r.getMessage()
    ]


@pytest.fixture(autouse=True)
def capture_cache_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)


async def test_round_trip_stores_json_under_the_prefix_with_the_default_ttl(cache, raw, prefix):
    await cache.set(BTC, BITCOIN)

    assert await cache.get(BTC) == BITCOIN
    stored = await raw.get(f"{prefix}BTC")
    assert json.loads(stored) == {"coin_id": "bitcoin", "name": "Bitcoin"}
    ttl = await raw.ttl(f"{prefix}BTC")
    assert 24 * 3600 - 5 <= ttl <= 24 * 3600


async def test_set_overwrites_and_ttl_is_configurable(machine_url, prefix, raw):
    cache = RedisTickerCache(machine_url, key_prefix=prefix, ttl_seconds=90)
    try:
        await cache.set(BTC, CoinRef("batcat", "Batcat"))
        await cache.set(BTC, BITCOIN)
        assert await cache.get(BTC) == BITCOIN
        assert 85 <= await raw.ttl(f"{prefix}BTC") <= 90
    finally:
        await cache.close()


async def test_expired_entry_is_a_miss(machine_url, prefix, raw):
    # Redis expires the key on its own clock: wait for that, however long it takes here.
    cache = RedisTickerCache(machine_url, key_prefix=prefix, ttl_seconds=1)
    try:
        await cache.set(BTC, BITCOIN)
        assert 0 < await raw.pttl(f"{prefix}BTC") <= 1000

        async def missed() -> bool:
            return await cache.get(BTC) is None

        await wait_until(missed, "the entry to expire")
        assert await raw.exists(f"{prefix}BTC") == 0
    finally:
        await cache.close()


async def test_unknown_ticker_is_a_miss_and_prefixes_keep_caches_apart(cache, machine_url, prefix):
    await cache.set(BTC, BITCOIN)
    other = RedisTickerCache(machine_url, key_prefix=f"{prefix}other:")
    try:
        assert await cache.get(ETH) is None
        assert await other.get(BTC) is None
    finally:
        await other.close()


@pytest.mark.parametrize(
    "value",
    [
        b"not json",
        b"\xff\xfe\x00garbage",
        b"[1, 2]",
        b'"bitcoin"',
        b"{}",
        b'{"coin_id": "bitcoin"}',
        b'{"coin_id": 5, "name": "Bitcoin"}',
        b'{"coin_id": "", "name": "Bitcoin"}',
        b'{"coin_id": "bitcoin", "name": null}',
    ],
)
async def test_malformed_value_is_a_miss_then_overwritten(cache, raw, prefix, caplog, value):
    await raw.set(f"{prefix}BTC", value)

    assert await cache.get(BTC) is None
    assert logged(caplog, logging.WARNING, "malformed")
    assert cache.available  # a bad value is no outage

    await cache.set(BTC, BITCOIN)
    assert await cache.get(BTC) == BITCOIN


async def test_value_of_the_wrong_redis_type_is_a_miss(cache, raw, prefix, caplog):
    await raw.rpush(f"{prefix}BTC", "bitcoin")

    assert await cache.get(BTC) is None
    assert logged(caplog, logging.WARNING, "refused")
    assert cache.available
    assert not logged(caplog, logging.WARNING, "unavailable")


BTC_COINS_USD = [
    CoinCandidate(BITCOIN, 1, 67187.33),
    CoinCandidate(CoinRef("batcat", "batcat"), None, None),
]
BTC_COINS_EUR = [
    CoinCandidate(BITCOIN, 1, 62148.28),
    CoinCandidate(CoinRef("batcat", "batcat"), None, 0.0001),
]


async def test_the_coins_of_a_ticker_are_kept_apart_for_each_currency(cache, raw, prefix):
    await cache.set_candidates(BTC, "usd", BTC_COINS_USD)
    assert await cache.get_candidates(BTC, "eur") is None
    await cache.set_candidates(BTC, "eur", BTC_COINS_EUR)

    assert await cache.get_candidates(BTC, "usd") == BTC_COINS_USD
    assert await cache.get_candidates(BTC, "eur") == BTC_COINS_EUR
    assert await cache.get_candidates(ETH, "usd") is None
    assert await cache.get(BTC) is None  # the ticker's own entry is another key
    stored = json.loads(await raw.get(f"{prefix}BTC:coins:eur"))
    assert stored[0] == {"coin_id": "bitcoin", "name": "Bitcoin", "market_cap_rank": 1,
                         "current_price": 62148.28}  # fmt: skip
    assert 0 < await raw.ttl(f"{prefix}BTC:coins:usd") <= 5 * 60


async def test_ping_answers_true_when_redis_is_up(cache):
    assert await cache.ping() is True


def test_a_cache_built_outside_a_loop_works_in_successive_loops(machine_url, prefix):
    cache = RedisTickerCache(machine_url, key_prefix=prefix)
    asyncio.run(cache.set(BTC, BITCOIN))
    assert asyncio.run(cache.get(BTC)) == BITCOIN  # a new loop: the client is made again
    asyncio.run(cache.close())


def test_a_url_redis_cannot_read_fails_at_construction():
    with pytest.raises(ValueError):
        RedisTickerCache("redis://127.0.0.1:notaport/0")


# --- outages, on a private redis-server --------------------------------------------------


async def test_stopped_redis_reads_as_miss_quickly_and_recovers_without_restart(
    private_redis: RedisServer, caplog
):
    # retry_after 0: every call tries Redis, so each one must be fast on its own and
    # the single warning is not a side effect of the breaker.
    cache = RedisTickerCache(private_redis.url, retry_after_seconds=0)
    try:
        await cache.set(BTC, BITCOIN)
        assert await cache.get(BTC) == BITCOIN
        private_redis.stop()

        started = time.monotonic()
        for _ in range(5):
            assert await cache.get(BTC) is None
            await cache.set(ETH, ETHEREUM)  # no exception
        assert await cache.ping() is False
        assert time.monotonic() - started < 5  # refused at once; each call bounded anyway
        assert not cache.available
        assert len(logged(caplog, logging.WARNING, "unavailable")) == 1
        assert private_redis.url.removesuffix("/0") in logged(caplog, logging.WARNING, "")[0]

        private_redis.start()  # same port, empty: no persistence
        assert await cache.get(BTC) is None
        await cache.set(BTC, BITCOIN)
        assert await cache.get(BTC) == BITCOIN
        assert cache.available
        assert await cache.ping() is True
        assert len(logged(caplog, logging.INFO, "Redis is back")) == 1
        assert len(logged(caplog, logging.WARNING, "unavailable")) == 1
    finally:
        await cache.close()


async def test_hung_redis_costs_one_timeout_then_is_bypassed_until_it_answers(
    private_redis: RedisServer, caplog
):
    # The breaker runs on a manual clock: it stays open until the test moves the clock.
    # A call that went to the hung Redis would cost the whole 1 s timeout, so twenty
    # calls in less than that went nowhere.
    clock = ManualClock()
    cache = RedisTickerCache(
        private_redis.url, timeout_seconds=1.0, retry_after_seconds=5, clock=clock
    )
    try:
        await cache.set(BTC, BITCOIN)
        await cache.set(ETH, ETHEREUM)
        private_redis.pause()  # accepts connections, answers nothing

        started = time.monotonic()
        assert await cache.get(BTC) is None
        first = time.monotonic() - started
        assert 0.9 <= first < 10, first  # it waited for the timeout, and was then let go

        started = time.monotonic()
        for _ in range(10):  # within retry_after: the breaker skips Redis
            assert await cache.get(BTC) is None
            await cache.set(BTC, BITCOIN)
        assert time.monotonic() - started < 1.0
        assert len(logged(caplog, logging.WARNING, "unavailable")) == 1
        assert "no answer within 1 s" in logged(caplog, logging.WARNING, "unavailable")[0]

        private_redis.resume()
        assert await cache.get(ETH) is None  # still bypassed for the rest of retry_after
        clock.advance(5)
        # The GET BTC that timed out must not leak its late reply into this one.
        assert await cache.get(ETH) == ETHEREUM
        assert await cache.get(BTC) == BITCOIN
        assert len(logged(caplog, logging.INFO, "Redis is back")) == 1
    finally:
        private_redis.resume()
        await cache.close()


async def test_concurrent_calls_during_an_outage_log_one_warning(
    private_redis: RedisServer, caplog
):
    cache = RedisTickerCache(private_redis.url)  # 0.5 s timeout
    try:
        assert await cache.ping()
        private_redis.pause()
        started = time.monotonic()
        results = await asyncio.gather(*(cache.get(BTC) for _ in range(20)))
        assert results == [None] * 20
        assert time.monotonic() - started < 5  # in parallel: one after another takes 10 s
        assert len(logged(caplog, logging.WARNING, "unavailable")) == 1
    finally:
        private_redis.resume()
        await cache.close()


async def test_after_the_pause_one_caller_probes_while_the_others_bypass_redis(
    private_redis: RedisServer, caplog
):
    # A long timeout and a manual clock: the probe waits on the hung Redis until the
    # test resumes it, so "the others are done, the probe is not" holds however slow.
    clock = ManualClock()
    cache = RedisTickerCache(
        private_redis.url, timeout_seconds=60, retry_after_seconds=5, clock=clock
    )
    try:
        assert await cache.ping()
        await asyncio.to_thread(private_redis.stop)
        assert await cache.get(BTC) is None  # refused: the breaker opens
        await asyncio.to_thread(private_redis.start)
        await asyncio.to_thread(private_redis.pause)

        clock.advance(5)  # the pause is over: half-open
        tasks = [asyncio.create_task(cache.get(BTC)) for _ in range(20)]
        await wait_until(lambda: sum(t.done() for t in tasks) >= 19, "the callers that bypass")
        assert sum(not task.done() for task in tasks) == 1  # the probe, waiting for Redis

        await asyncio.to_thread(private_redis.resume)
        assert await asyncio.wait_for(asyncio.gather(*tasks), timeout=30) == [None] * 20
        assert cache.available
        await cache.set(BTC, BITCOIN)
        assert await cache.get(BTC) == BITCOIN
        assert len(logged(caplog, logging.WARNING, "unavailable")) == 1
        assert len(logged(caplog, logging.INFO, "Redis is back")) == 1
    finally:
        private_redis.resume()
        await cache.close()


async def test_redis_never_reachable_reads_as_miss(caplog):
    with refusing_port() as port:
        cache = RedisTickerCache(f"redis://:secret@127.0.0.1:{port}/0")
        try:
            started = time.monotonic()
            assert await cache.get(BTC) is None
            await cache.set(BTC, BITCOIN)
            assert await cache.ping() is False
            assert time.monotonic() - started < 5  # refused at once; each call bounded anyway
            (warning,) = logged(caplog, logging.WARNING, "unavailable")
            assert "secret" not in warning  # no credentials in the logs
        finally:
            await cache.close()
