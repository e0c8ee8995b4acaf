"""RedisRateLimiter against real Redis: the machine's for the shared budget (a unique key
prefix per test, cleaned up), a private redis-server for outages. Each limiter stands
for one worker; some tests run real worker processes.

The window runs on Redis's own clock, so these tests use windows and pauses of tens
of seconds and check them with generous bounds, never by waiting them out: a
limiter's sleep is recorded (or held) instead of slept, past calls are written into
the window at a time Redis names, and the circuit breaker runs on a manual clock."""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from domain.errors import UpstreamRateLimited
from domain.model import Ticker
from infrastructure.coingecko import CoinGeckoClient, RateLimiter
from infrastructure.coingecko.shared_rate_limiter import RedisRateLimiter, build_rate_limiter
from infrastructure.settings import Settings
from tests.fakes.coingecko_server import Failure, FakeCoinGecko
from tests.support.clock import HeldSleep, ManualClock
from tests.support.redis_server import (  # noqa: F401 (fixtures: machine_url, prefix, raw)
    RedisServer,
    machine_url_fixture,
    prefix_fixture,
    raw_fixture,
)

pytestmark = pytest.mark.integration

LOGGER = "infrastructure.coingecko.shared_rate_limiter"
ROOT = Path(__file__).resolve().parents[2]

MakeLimiter = Callable[..., RedisRateLimiter]


@pytest.fixture
async def make_limiter(machine_url: str, prefix: str) -> AsyncIterator[MakeLimiter]:
    """Builds limiters (workers) on the machine's Redis under this test's prefix, by
    default 5 calls a 60 s window; closes them afterwards."""
    made: list[RedisRateLimiter] = []

    def make(calls_per_minute: int = 5, **options: Any) -> RedisRateLimiter:
        options.setdefault("key_prefix", prefix)
        limiter = RedisRateLimiter(options.pop("url", machine_url), calls_per_minute, **options)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.close()


@pytest.fixture(autouse=True)
def capture_limiter_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)


def logged(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


async def refusal(limiter: RedisRateLimiter | RateLimiter, max_wait: float = 0) -> Any:
    with pytest.raises(UpstreamRateLimited) as refused:
        await limiter.acquire(max_wait=max_wait)
    return refused.value


async def took(coroutine: Any) -> float:
    started = time.monotonic()
    await coroutine
    return time.monotonic() - started


async def redis_seconds(client: Redis) -> float:
    seconds, micros = await client.time()
    return seconds + micros / 1_000_000


async def spent(raw: Redis, prefix: str, *seconds_ago: float) -> None:
    """Calls made ``seconds_ago`` by Redis's clock, as a limiter records them."""
    now = await redis_seconds(raw)
    await raw.zadd(
        f"{prefix}calls", {uuid.uuid4().hex: round((now - ago) * 1_000_000) for ago in seconds_ago}
    )


def about(seconds: float) -> Any:
    """``seconds`` as Redis's clock, which keeps running while the test does, gives it."""
    return pytest.approx(seconds, abs=10)


def spent_message(refused: UpstreamRateLimited, budget: int) -> str:
    retry = math.ceil(refused.retry_after)
    return f"the budget of {budget} CoinGecko calls a minute is spent; retry in {retry} s"


# --- one budget for every worker -------------------------------------------------------


async def test_two_workers_get_exactly_the_budget_between_them(make_limiter, raw, prefix):
    first, second = make_limiter(), make_limiter()
    attempts = [worker.acquire(max_wait=0) for _ in range(5) for worker in (first, second)]
    results = await asyncio.gather(*attempts, return_exceptions=True)

    assert sum(result is None for result in results) == 5
    refusals = [result for result in results if result is not None]
    assert len(refusals) == 5
    for refused in refusals:
        assert isinstance(refused, UpstreamRateLimited)
        assert refused.message == spent_message(refused, 5)
        assert refused.retry_after == about(60)
    assert await raw.zcard(f"{prefix}calls") == 5
    assert 0 < await raw.pttl(f"{prefix}calls") <= 61_000  # kept no longer than needed


CHILD = """
import asyncio, sys
from domain.errors import UpstreamRateLimited
from infrastructure.coingecko.shared_rate_limiter import RedisRateLimiter

async def main() -> None:
    limiter = RedisRateLimiter(sys.argv[1], 5, key_prefix=sys.argv[2])
    got = 0
    for _ in range(4):
        try:
            await limiter.acquire(max_wait=0)
            got += 1
        except UpstreamRateLimited:
            pass
    await limiter.close()
    print(got)

asyncio.run(main())
"""


async def test_worker_processes_share_the_budget(machine_url, prefix, raw):
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            machine_url,
            prefix,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    outputs = await asyncio.wait_for(
        asyncio.gather(*(worker.communicate() for worker in workers)), timeout=30
    )

    assert [worker.returncode for worker in workers] == [0, 0, 0]
    assert sum(int(stdout) for stdout, _ in outputs) == 5  # 3 workers asked for 12
    assert await raw.zcard(f"{prefix}calls") == 5


async def test_a_worker_waits_for_the_slot_another_one_frees(make_limiter, raw, prefix):
    clock = ManualClock()
    first, second = make_limiter(2), make_limiter(2, clock=clock, sleep=clock.sleep)
    await first.acquire(max_wait=0)
    await first.acquire(max_wait=0)

    refused = await refusal(second)
    assert 0 < refused.retry_after <= 60
    assert refused.retry_after == about(60)
    assert refused.message == spent_message(refused, 2)
    await second.acquire(max_wait=120)
    assert clock.sleeps == [about(60)]  # until first's first call leaves the window
    assert await raw.zcard(f"{prefix}calls") == 3


async def test_waiting_workers_queue_for_the_slots_as_they_free(make_limiter):
    clock = ManualClock()
    first = make_limiter(1, clock=clock, sleep=clock.sleep)
    second = make_limiter(1, clock=clock, sleep=clock.sleep)
    await first.acquire(max_wait=0)
    await asyncio.gather(second.acquire(max_wait=300), first.acquire(max_wait=300))
    assert sorted(clock.sleeps) == [about(60), about(120)]  # the next window, not the same slot


async def test_the_window_slides(make_limiter, raw, prefix):
    first, second = make_limiter(2), make_limiter(2)
    await spent(raw, prefix, 90, 30)  # the call 90 s ago has left the window

    await first.acquire(max_wait=0)
    assert await raw.zcard(f"{prefix}calls") == 2  # the old call was pruned
    refused = await refusal(second)
    assert refused.retry_after == about(30)  # when the call 30 s ago leaves it


async def test_a_cancelled_waiter_gives_its_slot_back(make_limiter, raw, prefix):
    held = HeldSleep()
    first, second = make_limiter(1), make_limiter(1, sleep=held)
    await first.acquire(max_wait=0)
    waiting = asyncio.create_task(second.acquire(max_wait=120))
    await asyncio.wait_for(held.entered.wait(), timeout=30)
    assert held.sleeps == [about(60)]
    assert await raw.zcard(f"{prefix}calls") == 2  # the slot it waits for is reserved

    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await second.flush()
    assert await raw.zcard(f"{prefix}calls") == 1


# --- a 429 pauses every worker ---------------------------------------------------------


async def test_a_pause_on_one_worker_holds_the_others(make_limiter, raw, prefix):
    first, second = make_limiter(), make_limiter()
    assert first.pause(30) == 30
    refused = await refusal(first)  # at once, before the pause reached Redis
    assert refused.message == "CoinGecko is rate-limiting us; retry in 30 s"

    await first.flush()
    refused = await refusal(second)
    assert (
        refused.message
        == f"CoinGecko is rate-limiting us; retry in {math.ceil(refused.retry_after)} s"
    )
    assert refused.retry_after == about(30)
    assert second.paused_for == about(30)
    paused_until = int(await raw.get(f"{prefix}paused")) / 1_000_000
    assert paused_until - await redis_seconds(raw) == about(30)
    assert await raw.zcard(f"{prefix}calls") == 0  # nothing was spent


async def test_the_pause_reaches_other_workers_without_a_flush(make_limiter):
    first, second = make_limiter(), make_limiter()
    first.pause(20)
    deadline = time.monotonic() + 30
    while True:
        try:
            await second.acquire(max_wait=0)
        except UpstreamRateLimited as refused:
            assert refused.retry_after == about(20)
            break
        assert time.monotonic() < deadline, "the pause never reached the other worker"
        await asyncio.sleep(0.01)


async def test_a_shorter_pause_never_shortens_a_longer_one(make_limiter):
    first, second, third = make_limiter(), make_limiter(), make_limiter()
    first.pause(30)
    await first.flush()
    assert second.pause(5) == 5
    await second.flush()

    assert (await refusal(third)).retry_after == about(30)
    assert second.paused_for == about(30)


@pytest.mark.parametrize(
    ("asked", "applied"), [(None, 60), (math.nan, 60), (-3, 60), (0.01, 1), (10_000, 600)]
)
async def test_a_pause_is_clamped_like_the_local_limiter_does(
    make_limiter, raw, prefix, asked, applied
):
    first = make_limiter()
    before = await redis_seconds(raw)
    assert first.pause(asked) == applied
    await first.flush()
    after = await redis_seconds(raw)
    # Written as "Redis's time when it got the pause, plus the pause".
    paused_until = int(await raw.get(f"{prefix}paused")) / 1_000_000
    assert before + applied <= paused_until <= after + applied + 1e-6


async def test_a_pause_while_waiting_sends_the_waiter_back_in_the_queue(make_limiter, raw, prefix):
    held = HeldSleep()
    first, second = make_limiter(1), make_limiter(1, sleep=held)
    await first.acquire(max_wait=0)
    waiting = asyncio.create_task(second.acquire(max_wait=90))
    await asyncio.wait_for(held.entered.wait(), timeout=30)  # asleep until its slot
    first.pause(120)  # a 429 meanwhile, longer than second may wait
    await first.flush()
    assert not waiting.done()

    held.release()  # second wakes at its slot: refused then, not before
    with pytest.raises(UpstreamRateLimited, match="rate-limiting us"):
        await waiting
    # first's call is still in the window; second's slot was given back
    assert await raw.zcard(f"{prefix}calls") == 1


async def test_the_poller_waits_out_a_pause_another_worker_set(make_limiter, raw, prefix):
    naps: list[float] = []

    async def sleep(seconds: float) -> None:
        naps.append(seconds)
        await raw.delete(f"{prefix}paused")  # the pause is over by the time it wakes

    first, second = make_limiter(), make_limiter(sleep=sleep)
    first.pause(30)
    await first.flush()
    await second.acquire(max_wait=60)
    assert naps == [about(30)]
    assert await raw.zcard(f"{prefix}calls") == 1


async def test_a_429_seen_by_one_client_holds_another_workers_client(make_limiter):
    async with FakeCoinGecko() as fake:
        limiter = make_limiter()
        here = CoinGeckoClient(fake.base_url, limiter=limiter, timeout_seconds=2)
        there = CoinGeckoClient(fake.base_url, limiter=make_limiter(), timeout_seconds=2)
        try:
            fake.fail(Failure.rate_limited(119), times=1)
            with pytest.raises(UpstreamRateLimited, match="retry in 119 s"):
                await here.prices(["bitcoin"])
            await limiter.flush()
            with pytest.raises(UpstreamRateLimited, match=r"rate-limiting us; retry in 11\d s"):
                await there.find_coin(Ticker("BTC"))
            assert len(fake.requests) == 1  # the other worker did not ask CoinGecko
        finally:
            await here.close()
            await there.close()


# --- Redis is only a helper ------------------------------------------------------------


async def test_redis_stopped_falls_back_to_the_local_budget_then_shares_again(
    private_redis: RedisServer, make_limiter, caplog
):
    clock = ManualClock()
    first = make_limiter(3, url=private_redis.url, retry_after_seconds=5, clock=clock)
    second = make_limiter(3, url=private_redis.url, retry_after_seconds=5, clock=clock)
    await first.acquire(max_wait=0)
    await second.acquire(max_wait=0)

    await asyncio.to_thread(private_redis.stop)
    assert await took(first.acquire(max_wait=0)) < 5  # the fallback's second call
    assert not first.shared
    await first.acquire(max_wait=0)
    refused = await refusal(first)  # its own 3 calls (1 shared, 2 local) spent the fallback
    assert refused.message.startswith("the budget of 3 CoinGecko calls a minute is spent")
    await second.acquire(max_wait=0)  # the other worker falls back to its own budget
    await second.acquire(max_wait=0)
    warnings = logged(caplog, logging.WARNING)
    assert len(warnings) == 2, warnings  # once per worker, not once per call
    assert all("unavailable" in line and private_redis.url in line for line in warnings)

    await asyncio.to_thread(private_redis.start)  # empty: no persistence
    clock.advance(5)  # the breaker's pause
    await first.acquire(max_wait=0)  # shared again: its full fallback is not asked
    assert first.shared
    async with Redis.from_url(private_redis.url) as client:
        assert await client.zcard(first.calls_key) == 1
    await second.acquire(max_wait=0)
    await second.acquire(max_wait=0)
    assert second.shared
    await refusal(second)  # 3 shared calls since Redis came back
    assert len(logged(caplog, logging.WARNING)) == 2
    assert len([line for line in logged(caplog, logging.INFO) if "is back" in line]) == 2


async def test_a_hung_redis_costs_one_timeout_then_is_skipped(
    private_redis: RedisServer, make_limiter
):
    # The breaker stays open on the manual clock; going to the hung Redis would cost
    # the whole 1 s timeout, so anything quicker than that went nowhere.
    clock = ManualClock()
    limiter = make_limiter(url=private_redis.url, timeout_seconds=1.0, clock=clock)
    await limiter.acquire(max_wait=0)
    await asyncio.to_thread(private_redis.pause)
    try:
        assert 0.9 <= await took(limiter.acquire(max_wait=0)) < 10  # the timeout, no more
        assert await took(limiter.acquire(max_wait=0)) < 1.0  # the breaker skips Redis
        assert limiter.pause(10) == 10  # the shared write is skipped, not waited for
        assert await took(limiter.flush()) < 1.0
        assert (await refusal(limiter)).retry_after == pytest.approx(10)
    finally:
        await asyncio.to_thread(private_redis.resume)


async def test_a_shared_pause_outlives_a_redis_outage(private_redis: RedisServer, make_limiter):
    first = make_limiter(url=private_redis.url)
    second = make_limiter(url=private_redis.url)
    first.pause(20)
    await first.flush()
    await refusal(second)  # second learns of the pause from Redis

    await asyncio.to_thread(private_redis.stop)
    refused = await refusal(second)
    assert not second.shared
    assert refused.message.startswith("CoinGecko is rate-limiting us")
    assert refused.retry_after == about(20)


def test_the_limiter_follows_a_new_event_loop(machine_url, prefix):
    limiter = RedisRateLimiter(machine_url, 2, key_prefix=prefix)

    async def spend() -> None:
        await limiter.acquire(max_wait=0)
        assert limiter.shared

    asyncio.run(spend())
    asyncio.run(spend())  # a client made in the first loop would fail here
    with pytest.raises(UpstreamRateLimited):
        asyncio.run(spend())
    asyncio.run(limiter.close())


# --- construction ----------------------------------------------------------------------


def test_build_rate_limiter_shares_only_when_redis_is_configured(machine_url):
    local = build_rate_limiter(Settings.from_env({"COINGECKO_CALLS_PER_MINUTE": "7"}))
    assert isinstance(local, RateLimiter) and local.calls_per_minute == 7

    shared = build_rate_limiter(
        Settings.from_env(
            {
                "REDIS_URL": machine_url,
                "REDIS_KEY_PREFIX": "app:",
                "COINGECKO_CALLS_PER_MINUTE": "7",
            }
        )
    )
    assert isinstance(shared, RedisRateLimiter)
    assert shared.calls_per_minute == shared.fallback.calls_per_minute == 7
    assert (shared.calls_key, shared.paused_key) == ("app:coingecko:calls", "app:coingecko:paused")


@pytest.mark.parametrize(
    ("url", "calls", "options"),
    [
        ("redis://127.0.0.1:6379/0", 0, {}),
        ("redis://127.0.0.1:6379/0", 5, {"window_seconds": 0}),
        ("redis://127.0.0.1:6379/0", 5, {"timeout_seconds": 0}),
        ("http://127.0.0.1:6379", 5, {}),
    ],
)
def test_bad_arguments_are_refused_at_once(url, calls, options):
    with pytest.raises(ValueError):
        RedisRateLimiter(url, calls, **options)
