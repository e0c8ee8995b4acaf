import asyncio

import pytest

from application.poll_prices import PollResult
from domain.errors import UpstreamError, UpstreamRateLimited
from interfaces.http.poller import poll_once, run_poller


class Lock:
    def __init__(self, wins: bool = True) -> None:
        self.wins = wins
        self.released = 0

    async def acquire(self) -> bool:
        return self.wins

    async def release(self) -> None:
        self.released += 1


class Poll:
    def __init__(self, *outcomes) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    async def __call__(self) -> PollResult:
        self.calls += 1
        outcome = self.outcomes.pop(0) if self.outcomes else PollResult(1, 1)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


async def run_for(seconds, poll, lock, interval):
    task = asyncio.create_task(run_poller(poll, lock, interval))
    await asyncio.sleep(seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_polls_every_interval_and_survives_failures():
    poll = Poll(UpstreamError("down"), RuntimeError("bug"), PollResult(2, 1))
    lock = Lock()
    await run_for(0.35, poll, lock, interval=0.05)
    assert poll.calls >= 5  # failures did not stop the loop
    assert lock.released == 1  # cancelled cleanly, lock given back


async def test_only_the_leader_polls():
    poll = Poll()
    await run_for(0.2, poll, Lock(wins=False), interval=0.02)
    assert poll.calls == 0


async def test_a_429_waits_out_retry_after():
    poll = Poll(UpstreamRateLimited("slow down", retry_after=0.3))
    await run_for(0.2, poll, Lock(), interval=0.01)
    assert poll.calls == 1


async def test_poll_once_reports_the_pause():
    assert await poll_once(Poll(UpstreamRateLimited("x", retry_after=7))) == 7
    assert await poll_once(Poll(ValueError("x"))) == 0
    assert await poll_once(Poll()) == 0
