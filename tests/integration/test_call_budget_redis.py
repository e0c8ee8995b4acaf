"""The CoinGecko call budget shared through real Redis: the machine's for the shared
budget (a key prefix of the test's own, cleaned up), a private redis-server for
outages. Each budget stands for one replica; one test runs real processes.

The window is stamped by the callers' clock (limits passes time.time to its scripts),
so the tests that step time give every budget, and limits, one manual clock; the
pause is a key's TTL on Redis's clock, checked with generous bounds, never waited out."""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from domain.errors import UpstreamRateLimited
from domain.model import Ticker
from infrastructure.coingecko import CallBudget, CoinGeckoClient
from infrastructure.coingecko.call_budget import build_call_budget
from infrastructure.settings import Settings
from tests.fakes.coingecko_server import Failure, FakeCoinGecko
from tests.support.clock import HeldSleep, ManualClock
from tests.support.limits_clock import follow
from tests.support.redis_server import (  # noqa: F401 (fixtures: machine_url, prefix, raw)
    RedisServer,
    machine_url_fixture,
    prefix_fixture,
    private_redis_fixture,
    raw_fixture,
)

pytestmark = pytest.mark.integration

LOGGER = "infrastructure.coingecko.call_budget"
ROOT = Path(__file__).resolve().parents[2]

MakeBudget = Callable[..., CallBudget]


@pytest.fixture
async def make_budget(machine_url: str, prefix: str) -> AsyncIterator[MakeBudget]:
    """Builds budgets (replicas) on the machine's Redis under this test's prefix, by
    default 5 calls a minute; closes them afterwards."""
    made: list[CallBudget] = []

    def make(calls_per_minute: int = 5, **options: Any) -> CallBudget:
        options.setdefault("redis_url", machine_url)
        options.setdefault("key_prefix", prefix)
        budget = CallBudget(calls_per_minute, **options)
        made.append(budget)
        return budget

    yield make
    for budget in made:
        await budget.close()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    fake = ManualClock()
    follow(monkeypatch, fake)
    return fake


@pytest.fixture(autouse=True)
def capture_budget_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)


def logged(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


async def refusal(budget: CallBudget, max_wait: float = 0) -> UpstreamRateLimited:
    with pytest.raises(UpstreamRateLimited) as refused:
        await budget.acquire(max_wait=max_wait)
    return refused.value


async def took(coroutine: Any) -> float:
    started = time.monotonic()
    await coroutine
    return time.monotonic() - started


def about(seconds: float) -> Any:
    """A pause left on Redis's clock, which runs while the test does."""
    return pytest.approx(seconds, abs=10)


def spent_message(refused: UpstreamRateLimited, budget: int) -> str:
    retry = math.ceil(refused.retry_after)
    return f"the budget of {budget} CoinGecko calls a minute is spent; retry in {retry} s"


def paused_message(refused: UpstreamRateLimited) -> str:
    return f"CoinGecko is rate-limiting us; retry in {math.ceil(refused.retry_after)} s"


# --- one budget for every replica ------------------------------------------------------


async def test_two_replicas_get_exactly_the_budget_between_them(make_budget, raw, prefix):
    first, second = make_budget(), make_budget()
    attempts = [replica.acquire(max_wait=0) for _ in range(5) for replica in (first, second)]
    results = await asyncio.gather(*attempts, return_exceptions=True)

    assert sum(result is None for result in results) == 5
    refusals = [result for result in results if result is not None]
    assert len(refusals) == 5
    for refused in refusals:
        assert isinstance(refused, UpstreamRateLimited)
        assert refused.message == spent_message(refused, 5)
        assert 55 <= refused.retry_after <= 60
    keys = [key.decode() async for key in raw.scan_iter(match=f"{prefix}*")]
    assert keys == [f"{prefix}LIMITER/calls/5/1/minute"]
    assert 0 < await raw.ttl(keys[0]) <= 60  # kept no longer than the window


CHILD = """
import asyncio, sys
from domain.errors import UpstreamRateLimited
from infrastructure.coingecko import CallBudget

async def main() -> None:
    budget = CallBudget(5, redis_url=sys.argv[1], key_prefix=sys.argv[2])
    got = 0
    for _ in range(4):
        try:
            await budget.acquire(max_wait=0)
            got += 1
        except UpstreamRateLimited:
            pass
    await budget.close()
    print(got)

asyncio.run(main())
"""


async def test_processes_share_the_budget(machine_url, prefix, make_budget):
    processes = [
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
        asyncio.gather(*(process.communicate() for process in processes)), timeout=60
    )

    assert [process.returncode for process in processes] == [0, 0, 0]
    assert sum(int(stdout) for stdout, _ in outputs) == 5  # 3 processes asked for 12
    await refusal(make_budget())


async def test_a_replica_waits_for_the_slot_another_one_frees(make_budget, clock):
    first = make_budget(2, clock=clock)
    second = make_budget(2, clock=clock, sleep=clock.sleep)
    await first.acquire(max_wait=0)
    clock.advance(10)
    await first.acquire(max_wait=0)

    refused = await refusal(second)
    assert refused.retry_after == pytest.approx(50)
    assert refused.message == spent_message(refused, 2)
    await second.acquire(max_wait=120)
    assert clock.sleeps[0] == pytest.approx(50)  # until first's first call leaves the window
    assert clock.now == pytest.approx(1060, abs=0.01)  # (at exactly 60 s it still counts)
    assert (await refusal(first)).retry_after == pytest.approx(10, abs=0.01)  # its second call


async def test_waiting_replicas_take_the_slots_as_they_free(make_budget, clock):
    first = make_budget(1, clock=clock, sleep=clock.sleep)
    second = make_budget(1, clock=clock, sleep=clock.sleep)
    await first.acquire(max_wait=0)
    await asyncio.gather(second.acquire(max_wait=300), first.acquire(max_wait=300))
    # one got the slot that freed after 60 s, the other the one after 120 s
    assert clock.now == pytest.approx(1120, abs=0.1)


async def test_the_window_slides(make_budget, clock):
    first, second = make_budget(2, clock=clock), make_budget(2, clock=clock)
    await first.acquire(max_wait=0)
    clock.advance(30)
    await second.acquire(max_wait=0)
    clock.advance(40)  # the first call has left the window

    await first.acquire(max_wait=0)
    assert (await refusal(second)).retry_after == pytest.approx(20)  # when the second leaves


async def test_a_cancelled_waiter_takes_nothing(make_budget, clock):
    held = HeldSleep()
    first, second = make_budget(1, clock=clock), make_budget(1, clock=clock, sleep=held)
    await first.acquire(max_wait=0)
    waiting = asyncio.create_task(second.acquire(max_wait=120))
    await asyncio.wait_for(held.entered.wait(), timeout=30)
    assert held.sleeps == [pytest.approx(60)]
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting

    clock.advance(60.5)
    await first.acquire(max_wait=0)  # the slot that freed was not held for the waiter


# --- a 429 pauses every replica --------------------------------------------------------


async def test_a_pause_on_one_replica_holds_the_others(make_budget, raw, prefix):
    first, second = make_budget(), make_budget()
    assert await first.pause(30) == 30

    for replica in (first, second):
        refused = await refusal(replica)
        assert refused.message == paused_message(refused)
        assert refused.retry_after == about(30)
    assert 20_000 < await raw.pttl(f"{prefix}paused") <= 30_000
    assert [key async for key in raw.scan_iter(match=f"{prefix}LIMITER*")] == []  # none spent


async def test_a_shorter_pause_never_shortens_a_longer_one(make_budget, raw, prefix):
    first, second, third = make_budget(), make_budget(), make_budget()
    await first.pause(30)
    assert await second.pause(5) == 5
    assert (await refusal(third)).retry_after == about(30)
    await third.pause(100)  # a longer one lengthens it
    assert await raw.pttl(f"{prefix}paused") > 90_000


@pytest.mark.parametrize(
    ("asked", "applied"), [(None, 60), (math.nan, 60), (-3, 60), (0.01, 1), (10_000, 600)]
)
async def test_a_shared_pause_is_clamped(make_budget, raw, prefix, asked, applied):
    assert await make_budget().pause(asked) == applied
    assert applied * 1000 - 5_000 < await raw.pttl(f"{prefix}paused") <= applied * 1000


async def test_a_pause_while_waiting_sends_the_waiter_back(make_budget, clock):
    held = HeldSleep()
    first, second = make_budget(1, clock=clock), make_budget(1, clock=clock, sleep=held)
    await first.acquire(max_wait=0)
    waiting = asyncio.create_task(second.acquire(max_wait=90))
    await asyncio.wait_for(held.entered.wait(), timeout=30)  # asleep until the slot frees
    await first.pause(120)  # a 429 meanwhile, longer than second may wait
    assert not waiting.done()

    held.release()  # second wakes: refused then, not before
    with pytest.raises(UpstreamRateLimited, match="rate-limiting us"):
        await waiting


async def test_the_poller_waits_out_a_pause_another_replica_set(make_budget, raw, prefix, clock):
    async def sleep(seconds: float) -> None:
        await clock.sleep(seconds)
        await raw.delete(f"{prefix}paused")  # the pause is over on Redis's clock too

    first, second = make_budget(clock=clock), make_budget(clock=clock, sleep=sleep)
    await first.pause(30)
    await second.acquire(max_wait=60)
    assert clock.sleeps == [about(30)]


async def test_a_429_seen_by_one_client_holds_another_replicas_client(make_budget):
    async with FakeCoinGecko() as fake:
        here = CoinGeckoClient(fake.base_url, limiter=make_budget(), timeout_seconds=2)
        there = CoinGeckoClient(fake.base_url, limiter=make_budget(), timeout_seconds=2)
        try:
            fake.fail(Failure.rate_limited(119), times=1)
            with pytest.raises(UpstreamRateLimited, match="retry in 119 s"):
                await here.prices(["bitcoin"])
            with pytest.raises(UpstreamRateLimited, match=r"rate-limiting us; retry in 1[01]\d s"):
                await there.find_coin(Ticker("BTC"))
            assert len(fake.requests) == 1  # the other replica did not ask CoinGecko
        finally:
            await here.close()
            await there.close()


# --- Redis is only a helper ------------------------------------------------------------


async def test_redis_stopped_falls_back_to_the_own_budget_then_shares_again(
    private_redis: RedisServer, make_budget, caplog
):
    # retry_after_seconds=0: the breaker tries Redis again on every call
    first = make_budget(3, redis_url=private_redis.url, retry_after_seconds=0)
    second = make_budget(3, redis_url=private_redis.url, retry_after_seconds=0)
    await first.acquire(max_wait=0)
    await second.acquire(max_wait=0)

    await asyncio.to_thread(private_redis.stop)
    assert await took(first.acquire(max_wait=0)) < 5
    await first.acquire(max_wait=0)
    refused = await refusal(first)  # its own 3 calls (1 shared, 2 alone) spent its budget
    assert refused.message == spent_message(refused, 3)
    await second.acquire(max_wait=0)  # the other replica has a budget of its own
    await second.acquire(max_wait=0)
    warnings = logged(caplog, logging.WARNING)
    assert len(warnings) == 2, warnings  # once per replica, not once per call
    assert all("unavailable" in line and private_redis.url in line for line in warnings)

    await asyncio.to_thread(private_redis.start)  # empty: no persistence
    await first.acquire(max_wait=0)  # shared again: its full budget of its own is not asked
    await second.acquire(max_wait=0)
    await second.acquire(max_wait=0)
    refused = await refusal(second)  # 3 shared calls since Redis came back
    assert refused.message == spent_message(refused, 3)
    assert len(logged(caplog, logging.WARNING)) == 2
    assert len([line for line in logged(caplog, logging.INFO) if "is back" in line]) == 2


async def test_a_hung_redis_costs_one_timeout_then_is_skipped(
    private_redis: RedisServer, make_budget
):
    # The breaker stays open for 60 s; the hung Redis would cost the whole 1 s timeout,
    # so anything quicker than that went nowhere.
    budget = make_budget(redis_url=private_redis.url, timeout_seconds=1.0, retry_after_seconds=60)
    await budget.acquire(max_wait=0)
    await asyncio.to_thread(private_redis.pause)
    try:
        assert 0.9 <= await took(budget.acquire(max_wait=0)) < 10  # the timeout, no more
        assert await took(budget.acquire(max_wait=0)) < 1.0  # the breaker skips Redis
        assert await took(budget.pause(10)) < 1.0  # the shared write is skipped too
        assert (await refusal(budget)).retry_after == pytest.approx(10, abs=1)
    finally:
        await asyncio.to_thread(private_redis.resume)


async def test_a_shared_pause_outlives_a_redis_outage(private_redis: RedisServer, make_budget):
    first = make_budget(redis_url=private_redis.url)
    second = make_budget(redis_url=private_redis.url)
    await first.pause(20)
    await refusal(second)  # second learns of the pause from Redis

    await asyncio.to_thread(private_redis.stop)
    refused = await refusal(second)
    assert refused.message == paused_message(refused)
    assert refused.retry_after == about(20)


def test_the_budget_follows_a_new_event_loop(machine_url, prefix):
    budget = CallBudget(2, redis_url=machine_url, key_prefix=prefix)

    async def spend() -> None:
        await budget.acquire(max_wait=0)

    asyncio.run(spend())
    asyncio.run(spend())  # a client made in the first loop would fail here
    with pytest.raises(UpstreamRateLimited):
        asyncio.run(spend())  # and it was Redis that counted: no outage was logged
    asyncio.run(budget.close())


# --- construction ----------------------------------------------------------------------


async def test_the_settings_give_a_budget_shared_under_the_key_prefix(machine_url, prefix, raw):
    settings = Settings.from_env(
        {"REDIS_URL": machine_url, "REDIS_KEY_PREFIX": prefix, "COINGECKO_CALLS_PER_MINUTE": "7"}
    )
    budget = build_call_budget(settings)
    try:
        await budget.acquire(max_wait=0)
        await budget.pause(5)
    finally:
        await budget.close()
    keys = sorted([key.decode() async for key in raw.scan_iter(match=f"{prefix}*")])
    assert keys == [f"{prefix}coingecko:LIMITER/calls/7/1/minute", f"{prefix}coingecko:paused"]


@pytest.mark.parametrize(
    ("url", "calls", "options"),
    [
        ("redis://127.0.0.1:6379/0", 0, {}),
        ("redis://127.0.0.1:6379/0", 5, {"timeout_seconds": 0}),
        ("http://127.0.0.1:6379", 5, {}),
    ],
)
def test_bad_arguments_are_refused_at_once(url, calls, options):
    with pytest.raises(ValueError):
        CallBudget(calls, redis_url=url, **options)
