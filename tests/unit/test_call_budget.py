"""The CoinGecko call budget in one process (limits' MemoryStorage), on a fake clock:
no real waiting."""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Coroutine
from typing import Any

import pytest

from domain.errors import UpstreamRateLimited
from infrastructure.coingecko.call_budget import CallBudget, build_call_budget
from infrastructure.settings import Settings
from tests.support.clock import HeldSleep, ManualClock
from tests.support.limits_clock import follow


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
def clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    fake = ManualClock()
    follow(monkeypatch, fake)
    return fake


def budget_on(clock: ManualClock, calls_per_minute: int, **kwargs: float) -> CallBudget:
    return CallBudget(calls_per_minute, clock=clock, sleep=clock.sleep, **kwargs)


async def refused(budget: CallBudget, max_wait: float = 0) -> UpstreamRateLimited:
    with pytest.raises(UpstreamRateLimited) as refusal:
        await budget.acquire(max_wait=max_wait)
    return refusal.value


async def test_the_whole_budget_may_be_spent_at_once_then_callers_are_refused(clock):
    budget = budget_on(clock, 3)
    for _ in range(3):
        await budget.acquire(max_wait=0)
    refusal = await refused(budget, max_wait=5)
    assert refusal.retry_after == pytest.approx(60)
    assert refusal.message == "the budget of 3 CoinGecko calls a minute is spent; retry in 60 s"
    assert clock.sleeps == []  # refused at once, not after waiting


async def test_the_window_slides_a_slot_frees_60_s_after_its_call(clock):
    budget = budget_on(clock, 3)
    for _ in range(3):
        await budget.acquire(max_wait=0)
        clock.advance(10)  # calls at 1000, 1010, 1020
    assert (await refused(budget)).retry_after == pytest.approx(30)  # at 1030
    clock.now = 1060.5
    await budget.acquire(max_wait=0)
    assert (await refused(budget)).retry_after == pytest.approx(9.5)  # the second's


async def test_a_caller_allowed_to_wait_sleeps_just_long_enough(clock):
    budget = budget_on(clock, 2)
    await budget.acquire(max_wait=0)
    clock.advance(15)
    await budget.acquire(max_wait=0)
    await budget.acquire(max_wait=60)
    # until the first call leaves the window (at 60 s it still counts: a hair more)
    assert sum(clock.sleeps) == pytest.approx(45, abs=0.01)
    assert clock.sleeps[0] == pytest.approx(45)


async def test_a_refusal_takes_nothing(clock):
    budget = budget_on(clock, 1)
    await budget.acquire(max_wait=0)
    for _ in range(3):
        assert (await refused(budget, max_wait=1)).retry_after == pytest.approx(60)
    await budget.acquire(max_wait=61)
    assert clock.now == pytest.approx(1060, abs=0.01)


async def test_concurrent_callers_never_exceed_the_budget_in_any_window(monkeypatch):
    clock = VirtualTime()
    follow(monkeypatch, clock)
    budget = budget_on(clock, 4)
    starts: list[float] = []

    async def call() -> None:
        await budget.acquire(max_wait=10_000)
        starts.append(clock())

    await clock.run(*(call() for _ in range(18)))
    assert len(starts) == 18
    starts.sort()
    for i in range(len(starts) - 4):
        assert starts[i + 4] - starts[i] >= 60, starts
    assert starts[-1] - starts[0] == pytest.approx(4 * 60, abs=0.1)  # and no slower


async def test_a_waiter_that_loses_the_freed_slot_tries_again_within_its_max_wait(clock):
    async def sleep_while_a_rival_takes_the_slot(seconds: float) -> None:
        await clock.sleep(seconds + 0.5)  # woken a little late: the rival is first
        await budget.acquire(max_wait=0)

    budget = CallBudget(1, clock=clock, sleep=sleep_while_a_rival_takes_the_slot)
    await budget.acquire(max_wait=0)
    clock.advance(30)
    refusal = await refused(budget, max_wait=70)  # the next slot: 90 s after it asked
    assert clock.sleeps == [pytest.approx(30.5)]
    assert refusal.retry_after == pytest.approx(60)


async def test_a_429_pauses_every_caller_for_its_retry_after(clock):
    budget = budget_on(clock, 100)
    assert await budget.pause(119) == 119
    refusal = await refused(budget, max_wait=2)
    assert refusal.retry_after == pytest.approx(119)
    assert refusal.message == "CoinGecko is rate-limiting us; retry in 119 s"
    await budget.acquire(max_wait=200)  # the poller waits it out
    assert clock.sleeps == [pytest.approx(119)]
    await budget.acquire(max_wait=0)  # and then calls flow again


@pytest.mark.parametrize(
    ("asked", "applied"),
    [(None, 60), (math.nan, 60), (math.inf, 60), (-5, 60), (0, 1), (0.2, 1), (30, 30), (5000, 600)],
)
async def test_the_pause_falls_back_to_a_default_and_is_capped(clock, asked, applied):
    budget = budget_on(clock, 10)
    assert await budget.pause(asked) == applied
    assert (await refused(budget)).retry_after == pytest.approx(applied)


async def test_a_shorter_pause_never_shortens_a_longer_one(clock):
    budget = budget_on(clock, 10, default_pause=45, max_pause=300)
    await budget.pause(None)
    await budget.pause(10)
    assert (await refused(budget)).retry_after == pytest.approx(45)
    await budget.pause(1000)
    assert (await refused(budget)).retry_after == pytest.approx(300)


def budget_with_a_429_while_sleeping(clock: ManualClock, *, every_time: bool) -> CallBudget:
    """A budget of 1 call a minute on which another caller's 429 (a 100 s pause) lands
    while this one sleeps."""

    async def sleep_then_429(seconds: float) -> None:
        if every_time or not clock.sleeps:
            await budget.pause(100)
        await clock.sleep(seconds)

    budget = CallBudget(1, clock=clock, sleep=sleep_then_429)
    return budget


async def test_a_429_that_comes_while_a_caller_waits_for_a_slot_holds_it_too(clock):
    budget = budget_with_a_429_while_sleeping(clock, every_time=False)
    await budget.acquire(max_wait=0)
    await budget.acquire(max_wait=1000)
    assert clock.sleeps == [pytest.approx(60), pytest.approx(40)]
    assert clock.now == pytest.approx(1100)


async def test_a_waiting_caller_is_refused_when_a_429_pushes_it_past_its_max_wait(clock):
    budget = budget_with_a_429_while_sleeping(clock, every_time=True)
    await budget.acquire(max_wait=0)
    refusal = await refused(budget, max_wait=70)
    assert refusal.retry_after == pytest.approx(40)
    assert "rate-limiting us" in refusal.message


async def test_a_cancelled_waiter_takes_nothing(clock):
    held = HeldSleep()
    budget = CallBudget(1, clock=clock, sleep=held)
    await budget.acquire(max_wait=0)
    waiter = asyncio.create_task(budget.acquire(max_wait=1000))
    await held.entered.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    clock.advance(60.5)
    await budget.acquire(max_wait=0)  # the slot that freed is there for the next caller


def test_a_budget_below_one_call_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        CallBudget(0)


async def test_a_free_slot_is_taken_with_no_wait_on_the_real_clock():
    budget = CallBudget(3)
    for _ in range(3):
        await budget.acquire(max_wait=0)
    with pytest.raises(UpstreamRateLimited, match="retry in 60 s"):
        await budget.acquire(max_wait=0)


def test_without_redis_the_budget_is_this_processs_own():
    budget = build_call_budget(Settings.from_env({"COINGECKO_CALLS_PER_MINUTE": "7"}))
    assert budget.calls_per_minute == 7
    assert budget._redis is None
