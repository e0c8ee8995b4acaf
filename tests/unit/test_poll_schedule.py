"""The poller's schedule, on a stepped clock: no test waits on real time."""

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from application.check_quote_currencies import CheckQuoteCurrencies
from application.poll_cycle import PollResult
from application.poll_schedule import PollPace, PollSchedule
from domain.errors import CallBudgetSpent, StorageUnavailable, UpstreamError, UpstreamRateLimited
from domain.model import QuoteCurrencies
from tests.support.cryptos import crypto
from tests.unit.fakes import InMemoryCryptoRepository


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
        outcome = self.outcomes.pop(0) if self.outcomes else PollResult(1, 1, 1)
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
        await asyncio.sleep(0)  # the loop's turn: a task started meanwhile (the check) runs
        if len(self.naps) >= self.turns:
            raise asyncio.CancelledError


class Monitor:
    def __init__(self) -> None:
        self.cycles, self.leadership_changes, self.intervals = [], [], []

    def cycle_finished(self, outcome, seconds, tracked) -> None:
        self.cycles.append((outcome, seconds, tracked))

    def leadership(self, held) -> None:
        self.leadership_changes.append(held)

    def interval_in_effect(self, seconds) -> None:
        self.intervals.append(seconds)


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
    poll = Poll(clock, UpstreamError("down"), RuntimeError("bug"), PollResult(2, 1, 1), cost=4.0)
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
    clock = SteppedClock(turns=4)
    poll = Poll(clock, UpstreamRateLimited("slow down", retry_after=90.0))
    p, monitor = poller(clock, poll, Lock())
    p.upstream = reporter = Reporter()
    await run(p)
    # Polls at 100 and 190; wakes every configured 30 s meanwhile and tells the state
    # again, for a replica started during the wait.
    assert clock.naps == [30.0] * 4
    assert reporter.statuses == ["rate_limited"] * 3 + ["ok"]
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


class Pace:
    """The interval in effect, one answer a turn (the last one again when used up)."""

    def __init__(self, *answers: float | BaseException) -> None:
        self.answers, self.asked = list(answers), 0

    async def __call__(self) -> float:
        self.asked += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


async def test_a_longer_interval_in_effect_spaces_the_polls_and_is_looked_at_every_interval(
    caplog,
):
    clock = SteppedClock(turns=7)
    poll = Poll(clock)
    p, monitor = poller(clock, poll, Lock())
    p.pace = Pace(90.0, 90.0, 90.0, 90.0, 30.0)
    caplog.set_level(logging.INFO, logger="application.poll_schedule")
    await run(p)
    # polls at 100 and 190 (90 s apart), then every 30 s once the pace is back to 30;
    # in between the schedule wakes every configured 30 s to ask the pace again
    assert clock.naps == [30.0] * 7
    assert poll.calls == 5 and p.pace.asked == 7  # at 100, 190, 220, 250 and 280
    assert monitor.intervals == [90.0, 30.0]  # reported when it changes only
    changes = [r.getMessage() for r in caplog.records if "interval in effect" in r.message]
    assert len(changes) == 2 and changes[0].startswith("poll interval in effect: 90 s")


async def test_the_configured_interval_is_the_shortest_and_an_outage_keeps_the_last_pace():
    clock = SteppedClock(turns=3)
    poll = Poll(clock)
    p, monitor = poller(clock, poll, Lock())
    p.pace = Pace(60.0, StorageUnavailable(), 5.0)
    await run(p)
    assert clock.naps == [30.0, 30.0, 30.0]
    assert poll.calls == 2  # at 100 and 160: the 60 s held through the outage
    assert monitor.intervals == [60.0, 30.0]


async def test_a_spent_monthly_budget_waits_for_the_new_month_then_polls_at_once():
    clock = SteppedClock(turns=3)
    now = datetime(2024, 11, 30, 23, 59, tzinfo=UTC)
    spent = CallBudgetSpent("budget spent", renews_at=now + timedelta(minutes=1), now=now)
    poll = Poll(clock, spent)
    p, monitor = poller(clock, poll, Lock())
    p.upstream = reporter = Reporter()
    p.pace = Pace(7200.0)  # the new month's pace: no poll's start to count it from
    await run(p)
    assert clock.naps == [30.0] * 3
    assert poll.calls == 2  # the refused one at 100, then one as the month renews at 160
    assert reporter.statuses == ["budget_spent", "budget_spent", "ok"]
    assert [c[0] for c in monitor.cycles] == ["budget_spent", "ok"]


class Month:
    def __init__(self, budget: int, used: int) -> None:
        self.budget, self.calls = budget, used

    async def take(self, *, polling: bool) -> None:
        self.calls += 1

    async def used(self) -> int:
        return self.calls


async def test_the_pace_counts_a_call_per_batch_of_distinct_tracked_coins():
    cryptos = InMemoryCryptoRepository()
    for i in range(150):
        await cryptos.add(crypto(f"C{i}"))
    await cryptos.add(replace(crypto("TWIN"), coin_id="c0-coin"))  # a coin tracked twice
    now = datetime(2024, 11, 1, tzinfo=UTC)
    month = Month(budget=10_000, used=0)
    pace = PollPace(month, cryptos, lambda: now, floor=30.0, batch_size=lambda: 100)
    # 150 coins: two calls a poll, 4,500 polls over November's 30 days
    assert await pace() == pytest.approx(30 * 86_400 / 4_500)
    await cryptos.delete(crypto("C149").symbol)  # 149 coins: still two calls
    assert await pace() == pytest.approx(576.0)
    for i in range(50, 149):
        await cryptos.delete(crypto(f"C{i}").symbol)  # 50 coins: one call
    assert await pace() == pytest.approx(288.0)


NOV_30 = datetime(2024, 11, 30, tzinfo=UTC)


class Reporter:
    def __init__(self) -> None:
        self.statuses: list[str] = []

    async def report(self, status: str) -> None:
        self.statuses.append(status)


async def test_each_cycle_reports_how_it_fared_upstream_and_a_database_outage_nothing():
    clock = SteppedClock(turns=7)
    outcomes = (
        PollResult(2, 2, 2),
        PollResult(2, 1, 1),  # partial: CoinGecko answered
        UpstreamRateLimited("slow down", retry_after=1.0),
        UpstreamError("down"),
        StorageUnavailable(),  # not upstream's: nothing to tell
        CallBudgetSpent("the month's budget is spent", renews_at=NOV_30, now=NOV_30),
        RuntimeError("bug"),
    )
    p, _ = poller(clock, Poll(clock, *outcomes), Lock())
    p.upstream = reporter = Reporter()
    await run(p)
    assert reporter.statuses == ["ok", "ok", "rate_limited", "failing", "budget_spent", "failing"]


# --- the quote currencies' check ---------------------------------------------------------


class Check:
    """Each call gives the next outcome (the last one again when used up); a "hang"
    waits until cancelled."""

    def __init__(self, *outcomes: object) -> None:
        self.outcomes, self.calls, self.cancelled = list(outcomes) or [None], 0, 0

    async def __call__(self) -> None:
        self.calls += 1
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if outcome == "hang":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        if isinstance(outcome, BaseException):
            raise outcome


def checked(turns: int, check: Check, lock: Lock | None = None):
    clock = SteppedClock(turns)
    poll = Poll(clock)
    p, monitor = poller(clock, poll, lock or Lock())
    p.check = check
    p.upstream = reporter = Reporter()
    return p, clock, poll, monitor, reporter


async def test_the_check_runs_with_each_cycle_until_it_succeeds_once_logged_once(caplog):
    check = Check(UpstreamError("CoinGecko answered 503"), UpstreamError("still down"), None)
    p, clock, poll, monitor, reporter = checked(5, check)
    caplog.set_level(logging.INFO, logger="application.poll_schedule")
    await run(p)
    assert check.calls == 3  # with the first three cycles, then done for the process
    assert p.check is None
    assert poll.calls == 5 and clock.naps == [30.0] * 5  # never stopped nor delayed polling
    assert [c[0] for c in monitor.cycles] == ["ok"] * 5  # no cycle's outcome
    assert reporter.statuses == ["ok"] * 5
    logged = [
        (r.levelno, r.getMessage()) for r in caplog.records if "QUOTE_CURRENCIES" in r.getMessage()
    ]
    assert logged == [
        (
            logging.WARNING,
            "could not check QUOTE_CURRENCIES against CoinGecko (CoinGecko answered 503); "
            "trying again with each poll",
        ),
        (logging.INFO, "QUOTE_CURRENCIES checked against CoinGecko"),
    ]


async def test_a_hung_check_holds_up_no_cycle_and_is_not_started_twice():
    check = Check("hang")
    p, clock, poll, _, _ = checked(4, check)
    await run(p)
    assert poll.calls == 4 and clock.naps == [30.0] * 4
    assert check.calls == 1  # still under way at each later cycle
    assert check.cancelled == 1  # and cancelled with the schedule


async def test_only_the_leader_checks():
    check = Check()
    p, _, poll, _, _ = checked(3, check, Lock(False))
    await run(p)
    assert (poll.calls, check.calls) == (0, 0)


async def test_a_bug_in_the_check_is_logged_once_and_a_database_outage_not_at_all(caplog):
    check = Check(StorageUnavailable(), RuntimeError("bug"), RuntimeError("bug"), None)
    p, _, poll, _, _ = checked(5, check)
    caplog.set_level(logging.INFO, logger="application.poll_schedule")
    await run(p)
    assert (poll.calls, check.calls) == (5, 4)
    failures = [r for r in caplog.records if "checking QUOTE_CURRENCIES failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None


class Source:
    """supported_currencies: CoinGecko down first, then its list."""

    def __init__(self, *answers: set[str] | BaseException) -> None:
        self.answers, self.asked = list(answers), 0

    async def supported_currencies(self) -> set[str]:
        self.asked += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


async def test_a_code_coingecko_does_not_list_is_an_error_logged_once_coingecko_answers(caplog):
    source = Source(UpstreamError("CoinGecko answered 503"), {"usd", "eur"})
    check = CheckQuoteCurrencies(source, QuoteCurrencies.parse("usd,xyz"))  # type: ignore[arg-type]
    p, _, poll, _, _ = checked(4, Check())
    p.check = check
    caplog.set_level(logging.INFO)
    await run(p)
    assert (poll.calls, source.asked) == (4, 2)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith("QUOTE_CURRENCIES: CoinGecko lists no xyz (of usd,xyz)")
