"""The process-wide CoinGecko rate limiter, on a fake clock (no real waiting)."""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Coroutine
from typing import Any

import pytest

from domain.errors import UpstreamRateLimited
from infrastructure.coingecko.rate_limiter import RateLimiter
from tests.support.clock import HeldSleep, ManualClock


class VirtualTime(ManualClock):
    """A clock for concurrent sleepers: time jumps to the earliest wake-up once every
    task is blocked, and wakes that sleeper only."""

    def __init__(self) -> None:
        super().__init__()
        self._wakeups: list[tuple[float, int, asyncio.Future[None]]] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        woken = asyncio.get_running_loop().create_future()
        heapq.heappush(self._wakeups, (self.now + seconds, len(self.sleeps), woken))
        await woken

    async def run(self, *calls: Coroutine[Any, Any, None]) -> None:
        tasks = [asyncio.create_task(call) for call in calls]
        while not all(task.done() for task in tasks):
            for _ in range(10):
                await asyncio.sleep(0)  # let every task run until it blocks
            if self._wakeups:
                when, _, woken = heapq.heappop(self._wakeups)
                self.now = max(self.now, when)
                woken.set_result(None)
        await asyncio.gather(*tasks)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def limiter_on(clock: ManualClock, calls_per_minute: int, **kwargs: float) -> RateLimiter:
    return RateLimiter(calls_per_minute, clock=clock, sleep=clock.sleep, **kwargs)


async def test_the_whole_budget_may_be_spent_at_once_then_callers_are_refused(clock):
    limiter = limiter_on(clock, 3)
    for _ in range(3):
        await limiter.acquire(max_wait=0)
    with pytest.raises(UpstreamRateLimited) as refused:
        await limiter.acquire(max_wait=5)
    assert refused.value.retry_after == pytest.approx(60)
    assert refused.value.message == (
        "the budget of 3 CoinGecko calls a minute is spent; retry in 60 s"
    )
    assert clock.sleeps == []  # refused at once, not after waiting


async def test_the_window_slides_a_slot_frees_60_s_after_its_call(clock):
    limiter = limiter_on(clock, 3)
    for _ in range(3):
        await limiter.acquire(max_wait=0)
        clock.now += 10  # calls at 1000, 1010, 1020
    with pytest.raises(UpstreamRateLimited) as refused:
        await limiter.acquire(max_wait=0)  # at 1030: the first frees at 1060
    assert refused.value.retry_after == pytest.approx(30)
    clock.now = 1060
    await limiter.acquire(max_wait=0)
    with pytest.raises(UpstreamRateLimited) as refused:
        await limiter.acquire(max_wait=0)  # the second frees at 1070
    assert refused.value.retry_after == pytest.approx(10)


async def test_a_caller_allowed_to_wait_sleeps_just_long_enough(clock):
    limiter = limiter_on(clock, 2)
    await limiter.acquire(max_wait=0)
    clock.now += 15
    await limiter.acquire(max_wait=0)
    await limiter.acquire(max_wait=60)
    assert clock.sleeps == [pytest.approx(45)]
    assert clock.now == pytest.approx(1060)


async def test_a_refusal_reserves_nothing(clock):
    limiter = limiter_on(clock, 1)
    await limiter.acquire(max_wait=0)
    for _ in range(3):
        with pytest.raises(UpstreamRateLimited) as refused:
            await limiter.acquire(max_wait=1)
        assert refused.value.retry_after == pytest.approx(60)
    await limiter.acquire(max_wait=60)
    assert clock.now == pytest.approx(1060)


async def test_concurrent_callers_never_exceed_the_budget_in_any_window():
    clock = VirtualTime()
    limiter = limiter_on(clock, 4)
    starts: list[float] = []

    async def call() -> None:
        await limiter.acquire(max_wait=10_000)
        starts.append(clock())

    await clock.run(*(call() for _ in range(18)))
    assert len(starts) == 18
    starts.sort()
    for i in range(len(starts) - 4):
        assert starts[i + 4] - starts[i] >= 60 - 1e-9, starts
    assert starts[-1] - starts[0] == pytest.approx(4 * 60)  # and no slower than needed


async def test_a_429_pauses_every_caller_for_its_retry_after(clock):
    limiter = limiter_on(clock, 100)
    assert limiter.pause(119) == 119
    assert limiter.paused_for == pytest.approx(119)
    with pytest.raises(UpstreamRateLimited) as refused:
        await limiter.acquire(max_wait=2)
    assert refused.value.retry_after == pytest.approx(119)
    assert refused.value.message == "CoinGecko is rate-limiting us; retry in 119 s"
    await limiter.acquire(max_wait=200)  # the poller waits it out
    assert clock.sleeps == [pytest.approx(119)]
    assert limiter.paused_for == 0
    await limiter.acquire(max_wait=0)  # and then calls flow again


@pytest.mark.parametrize(
    ("asked", "applied"),
    [(None, 60), (math.nan, 60), (math.inf, 60), (-5, 60), (0, 1), (0.2, 1), (30, 30), (5000, 600)],
)
def test_the_pause_falls_back_to_a_default_and_is_capped(clock, asked, applied):
    limiter = limiter_on(clock, 10)
    assert limiter.pause(asked) == applied
    assert limiter.paused_for == pytest.approx(applied)


def test_a_shorter_pause_never_shortens_a_longer_one(clock):
    limiter = limiter_on(clock, 10, default_pause=45, max_pause=300)
    limiter.pause(None)
    assert limiter.paused_for == pytest.approx(45)
    limiter.pause(10)
    assert limiter.paused_for == pytest.approx(45)
    limiter.pause(1000)
    assert limiter.paused_for == pytest.approx(300)


def a_429_while_sleeping(clock: ManualClock, limiter: RateLimiter, *, every_time: bool) -> None:
    """Make another caller's 429 (a 100 s pause) land while this one sleeps."""
    sleep = clock.sleep

    async def sleep_then_429(seconds: float) -> None:
        if every_time or not clock.sleeps:
            limiter.pause(100)
        await sleep(seconds)

    limiter._sleep = sleep_then_429


async def test_a_429_that_comes_while_a_caller_waits_for_a_slot_holds_it_too(clock):
    limiter = limiter_on(clock, 1)
    await limiter.acquire(max_wait=0)
    a_429_while_sleeping(clock, limiter, every_time=False)
    await limiter.acquire(max_wait=1000)
    assert clock.sleeps == [pytest.approx(60), pytest.approx(40)]
    assert clock.now == pytest.approx(1100)


async def test_a_waiting_caller_is_refused_when_a_429_pushes_it_past_its_max_wait(clock):
    limiter = limiter_on(clock, 1)
    await limiter.acquire(max_wait=0)
    a_429_while_sleeping(clock, limiter, every_time=True)
    with pytest.raises(UpstreamRateLimited) as refused:
        await limiter.acquire(max_wait=70)
    assert refused.value.retry_after == pytest.approx(40)
    assert "rate-limiting us" in refused.value.message


async def test_a_cancelled_waiter_gives_its_slot_back(clock):
    held = HeldSleep()
    limiter = RateLimiter(1, clock=clock, sleep=held)
    await limiter.acquire(max_wait=0)
    waiter = asyncio.create_task(limiter.acquire(max_wait=1000))  # reserves the slot at 1060
    await held.entered.wait()
    with pytest.raises(UpstreamRateLimited) as refused:
        await limiter.acquire(max_wait=0)
    assert refused.value.retry_after == pytest.approx(120)  # behind the waiter
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    with pytest.raises(UpstreamRateLimited) as refused:
        await limiter.acquire(max_wait=0)
    assert refused.value.retry_after == pytest.approx(60)  # the waiter's slot is free again


def test_a_budget_below_one_call_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        RateLimiter(0)


async def test_a_free_slot_is_taken_with_no_wait_on_the_real_clock():
    # time.monotonic moves between reading the deadline and the slot: a free slot must
    # still be granted at max_wait=0 (it was refused as "retry in 0 s")
    limiter = RateLimiter(3)
    for _ in range(3):
        await limiter.acquire(max_wait=0)
    with pytest.raises(UpstreamRateLimited, match="retry in 60 s"):
        await limiter.acquire(max_wait=0)
