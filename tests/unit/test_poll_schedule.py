"""The poller's schedule, on a stepped clock: no test waits on real time."""

import asyncio

import pytest

from application.poll_cycle import PollResult
from application.poll_schedule import PollSchedule
from domain.errors import StorageUnavailable, UpstreamError, UpstreamRateLimited


class Lock:
    def __init__(self, *wins: bool) -> None:
        self.wins = list(wins) or [True]
        self.released = 0

    async def acquire(self) -> bool:
        return self.wins.pop(0) if len(self.wins) > 1 else self.wins[0]

    async def release(self) -> None:
        self.released += 1


class Poll:
    """Each call takes ``cost`` seconds of the stepped clock, then gives an outcome."""

    def __init__(self, clock, *outcomes, cost: float = 0.0) -> None:
        self.clock, self.outcomes, self.cost, self.calls = clock, list(outcomes), cost, 0

    async def __call__(self) -> PollResult:
        self.calls += 1
        self.clock.now += self.cost
        outcome = self.outcomes.pop(0) if self.outcomes else PollResult(1, 1)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class SteppedClock:
    """monotonic() and sleep() on a counter; sleep ends the run after ``turns`` naps."""

    def __init__(self, turns: int) -> None:
        self.now, self.turns, self.naps = 100.0, turns, []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.naps.append(seconds)
        self.now += seconds
        if len(self.naps) >= self.turns:
            raise asyncio.CancelledError


class Monitor:
    def __init__(self) -> None:
        self.cycles, self.leadership_changes = [], []

    def cycle_finished(self, outcome, seconds, tracked) -> None:
        self.cycles.append((outcome, seconds, tracked))

    def leadership(self, held) -> None:
        self.leadership_changes.append(held)


def poller(clock, poll, lock, interval=30.0):
    monitor = Monitor()
    return (
        PollSchedule(poll, lock, interval, monitor, clock.monotonic, clock.sleep),
        monitor,
    )


async def run(p: PollSchedule) -> None:
    with pytest.raises(asyncio.CancelledError):
        await p.run()


async def test_polls_every_interval_minus_the_cycle_and_survives_failures():
    clock = SteppedClock(turns=4)
    poll = Poll(clock, UpstreamError("down"), RuntimeError("bug"), PollResult(2, 1), cost=4.0)
    lock = Lock()
    p, monitor = poller(clock, poll, lock)
    await run(p)
    assert poll.calls == 4  # failures did not stop the loop
    assert clock.naps == [26.0, 26.0, 26.0, 26.0]  # a cycle's own time counts
    assert [c[0] for c in monitor.cycles] == ["failed", "failed", "partial", "ok"]
    assert monitor.cycles[2] == ("partial", 4.0, 2)
    assert monitor.leadership_changes == [True, False]  # given up on the way out
    assert lock.released == 1


async def test_only_the_leader_polls_and_leadership_changes_are_reported():
    clock = SteppedClock(turns=4)
    poll = Poll(clock)
    p, monitor = poller(clock, poll, Lock(False, True, False, False))
    await run(p)
    assert poll.calls == 1
    assert monitor.leadership_changes == [True, False]


async def test_a_429_waits_out_retry_after_when_longer_than_the_interval():
    clock = SteppedClock(turns=2)
    poll = Poll(clock, UpstreamRateLimited("slow down", retry_after=90.0))
    p, monitor = poller(clock, poll, Lock())
    await run(p)
    assert clock.naps == [90.0, 30.0]
    assert monitor.cycles[0] == ("rate_limited", 0.0, None)


async def test_a_cycle_longer_than_the_interval_starts_the_next_at_once():
    clock = SteppedClock(turns=1)
    p, _ = poller(clock, Poll(clock, cost=45.0), Lock())
    await run(p)
    assert clock.naps == [0.0]


async def test_poll_once_reports_the_pause():
    clock = SteppedClock(turns=1)
    p, _ = poller(clock, Poll(clock, UpstreamRateLimited("x", retry_after=7)), Lock())
    assert await p.poll_once() == 7
    p.poll = Poll(clock, ValueError("x"))
    assert await p.poll_once() == 0


class Reporter:
    def __init__(self) -> None:
        self.statuses: list[str] = []

    async def report(self, status: str) -> None:
        self.statuses.append(status)


class BudgetSpent(UpstreamError):
    """How the monthly budget says so: an UpstreamError naming its status."""

    upstream_status = "budget_spent"


async def test_each_cycle_reports_how_it_fared_upstream_and_a_database_outage_nothing():
    clock = SteppedClock(turns=7)
    outcomes = (
        PollResult(2, 2),
        PollResult(2, 1),  # partial: CoinGecko answered
        UpstreamRateLimited("slow down", retry_after=1.0),
        UpstreamError("down"),
        StorageUnavailable(),  # not upstream's: nothing to tell
        BudgetSpent("the month's budget is spent"),
        RuntimeError("bug"),
    )
    p, _ = poller(clock, Poll(clock, *outcomes), Lock())
    p.upstream = reporter = Reporter()
    await run(p)
    assert reporter.statuses == ["ok", "ok", "rate_limited", "failing", "budget_spent", "failing"]
