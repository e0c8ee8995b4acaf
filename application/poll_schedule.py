"""The poll cycle's schedule: one cycle every interval, by the leader only.

Every process that runs a PollSchedule competes for the leader lock; only the holder
polls, so a deployment polls once per interval however many replicas it has. A
failing cycle is logged and tried again at the next tick; after a 429 the next cycle
waits out CoinGecko's Retry-After. ``run`` only ends when cancelled. After every cycle
the leader reports how it fared upstream (``UpstreamReporter``): ok, or the status its
UpstreamError names; a database failure is not upstream's and reports nothing.

With a monthly budget of CoinGecko calls, ``pace`` gives the interval in effect
(PollPace: MonthlyBudgetLastsTheMonth over the month's count and the tracked set). It
is asked again every ``interval`` (the configured one), so a longer interval follows
the tracked set as it changes, and a month's end, within one configured interval.

``check`` (``CheckQuoteCurrencies``) starts as the leader's first cycle does, and
again with each one after until it succeeded once. It runs beside the cycles, in a
task of its own: CoinGecko down at start (or hung, a whole timeout) neither blocks the
start nor holds up a cycle, and what it says is no cycle's outcome.

The clock and the sleep are injected so that tests step time instead of waiting on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from application.poll_cycle import PollResult
from domain.errors import CallBudgetSpent, StorageUnavailable, UpstreamError, UpstreamRateLimited
from domain.ports import (
    Clock,
    CryptoRepository,
    LeaderLock,
    MonthlyCalls,
    PollerMonitor,
    UpstreamReporter,
)
from domain.rules import MonthlyBudgetLastsTheMonth, next_month_start

log = logging.getLogger(__name__)


class _Unmonitored:
    def cycle_finished(self, outcome: str, seconds: float, tracked: int | None) -> None:
        pass

    def leadership(self, held: bool) -> None:
        pass

    def interval_in_effect(self, seconds: float) -> None:
        pass


@dataclass(slots=True)
class PollPace:
    """The poll interval in effect under a monthly budget of CoinGecko calls: a poll
    is one call per ``batch_size()`` tracked coins (the client's batch, which a 414
    lowers)."""

    month: MonthlyCalls
    cryptos: CryptoRepository
    clock: Clock
    floor: float
    batch_size: Callable[[], int]

    async def __call__(self) -> float:
        coins = len({coin.coin_id for coin in await self.cryptos.tracked_coins()})
        used = await self.month.used()
        now = self.clock()
        return MonthlyBudgetLastsTheMonth(
            budget=self.month.budget,
            used=used,
            calls_per_poll=math.ceil(coins / max(self.batch_size(), 1)),
            seconds_left=(next_month_start(now) - now).total_seconds(),
            floor=self.floor,
        ).interval()


class _Unreported:
    async def report(self, status: str) -> None:
        pass


@dataclass(slots=True)
class PollSchedule:
    poll: Callable[[], Awaitable[PollResult]]
    lock: LeaderLock
    interval: float  # the configured one; ``pace`` may lengthen it
    monitor: PollerMonitor = field(default_factory=_Unmonitored)
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    pace: Callable[[], Awaitable[float]] | None = None
    upstream: UpstreamReporter = field(default_factory=_Unreported)
    check: Callable[[], Awaitable[object]] | None = None  # None: nothing (more) to check
    _leader: bool = False
    _in_effect: float | None = None  # the interval last in effect
    _last_turn: float | None = None  # monotonic() when a poll was last due
    _not_before: float = -math.inf  # monotonic() when a 429's pause ends
    _reported: str | None = None  # the upstream status last reported
    _check_failed: bool = False  # from its first failure on (logged then)
    _checking: asyncio.Task[None] | None = None  # the check under way, or the last one

    async def check_once(self) -> None:
        """Run ``check``, and forget it once it succeeded; never raises (but
        cancellation). A failure is logged once until it succeeds, and it is tried
        again with the next cycle."""
        if self.check is None:
            return
        try:
            await self.check()
        except StorageUnavailable:
            return  # the outage itself is logged once, where it is found
        except Exception as error:
            if not self._check_failed:
                self._check_failed = True
                if isinstance(error, UpstreamError):
                    log.warning(
                        "could not check QUOTE_CURRENCIES against CoinGecko (%s); "
                        "trying again with each poll",
                        error.message,
                    )
                else:
                    log.exception("checking QUOTE_CURRENCIES failed; trying again with each poll")
            return
        if self._check_failed:
            log.info("QUOTE_CURRENCIES checked against CoinGecko")
        self.check = None

    async def poll_once(self) -> float:
        """Run one cycle; never raises (but cancellation). Returns how long to wait at
        least before the next one (the Retry-After of a 429, else 0)."""
        started = self.monotonic()
        outcome, tracked, pause = "failed", None, 0.0
        upstream: str | None = "failing"
        try:
            result = await self.poll()
        except CallBudgetSpent as error:
            # Waits for the new month (retry_after), then polls at once: a refused
            # cycle is no poll for the interval in effect to count from.
            log.warning("poll: %s", error.message)
            outcome, pause, upstream = "budget_spent", error.retry_after, error.upstream_status
            self._last_turn = None
        except UpstreamRateLimited as error:
            log.warning("poll: %s", error.message)
            outcome, pause, upstream = "rate_limited", error.retry_after, error.upstream_status
        except UpstreamError as error:
            log.warning("poll failed, will retry next cycle: %s", error.message)
            upstream = error.upstream_status
        except StorageUnavailable as error:
            # The outage itself is logged once, where it is found.
            log.info("poll failed, will retry next cycle: %s", error.message)
            upstream = None
        except Exception:
            log.exception("poll failed, will retry next cycle")
        else:
            outcome, upstream = "partial" if result.skipped else "ok", "ok"
            tracked = result.tracked
            log.info(
                "poll: %d of %d cryptos updated (%d had nothing newer) in %.2f s",
                result.updated,
                result.tracked,
                result.priced - result.updated,
                self.monotonic() - started,
            )
        self.monitor.cycle_finished(outcome, self.monotonic() - started, tracked)
        if upstream is not None:
            self._reported = upstream
            await self.upstream.report(upstream)
        return pause

    def _start_check(self) -> None:
        """``check_once`` in a task, unless nothing is left to check or one is under way."""
        if self.check is not None and (self._checking is None or self._checking.done()):
            self._checking = asyncio.create_task(self.check_once(), name="quote-currencies-check")

    async def interval_in_effect(self) -> float:
        """The configured interval, or ``pace``'s when longer; logged and reported when
        it changes. Without the database the last one stays in effect."""
        seconds = self._in_effect or self.interval
        if self.pace is not None:
            # an outage is logged once, where it is found
            with contextlib.suppress(StorageUnavailable):
                seconds = max(await self.pace(), self.interval)
        if seconds != self._in_effect:
            if self._in_effect is not None or seconds != self.interval:
                log.info(
                    "poll interval in effect: %g s (PRICE_POLL_INTERVAL_SECONDS=%g, "
                    "longer when the month's CoinGecko calls would not last otherwise)",
                    seconds,
                    self.interval,
                )
            self._in_effect = seconds
            self.monitor.interval_in_effect(seconds)
        return seconds

    async def tick(self) -> float:
        """One turn of the schedule: poll if one is due and this process leads. Returns
        the seconds to sleep before the next turn (at most the configured interval, so
        that the interval in effect is looked at again by then)."""
        interval = await self.interval_in_effect()
        now = self.monotonic()
        if now >= self._not_before and (
            self._last_turn is None or now - self._last_turn >= interval
        ):
            self._last_turn = now
            leader = await self.lock.acquire()
            if leader != self._leader:
                self._leader = leader
                self.monitor.leadership(leader)
            if leader:
                self._start_check()
                pause = await self.poll_once()
                self._not_before = self.monotonic() + pause
        elif self._leader and self._reported is not None:
            # Waiting out a 429 or a spent month: told again each configured interval, so
            # that a replica started meanwhile learns it within one.
            await self.upstream.report(self._reported)
        now = self.monotonic()
        next_turn = self._not_before
        if self._last_turn is not None:
            next_turn = max(self._last_turn + interval, next_turn)
        return max(min(next_turn - now, self.interval), 0.0)

    async def run(self) -> None:
        """Poll every ``interval`` seconds while holding the leader lock; until cancelled.
        The lock is given back on the way out, so another process takes over at once."""
        try:
            while True:
                await self.sleep(await self.tick())
        finally:
            if self._checking is not None and not self._checking.done():
                self._checking.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._checking
            if self._leader:
                self._leader = False
                self.monitor.leadership(False)
            await self.lock.release()
