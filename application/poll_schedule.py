"""The poll cycle's schedule: one cycle every interval, by the leader only.

Every process that runs a PollSchedule competes for the leader lock; only the holder
polls, so a deployment polls once per interval however many replicas it has. A
failing cycle is logged and tried again at the next tick; after a 429 the next cycle
waits out CoinGecko's Retry-After. ``run`` only ends when cancelled. After every cycle
the leader reports how it fared upstream (``UpstreamReporter``): ok, or the status its
UpstreamError names; a database failure is not upstream's and reports nothing.

The clock and the sleep are injected so that tests step time instead of waiting on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from application.poll_cycle import PollResult
from domain.errors import StorageUnavailable, UpstreamError, UpstreamRateLimited
from domain.ports import LeaderLock, PollerMonitor, UpstreamReporter

log = logging.getLogger(__name__)


class _Unmonitored:
    def cycle_finished(self, outcome: str, seconds: float, tracked: int | None) -> None:
        pass

    def leadership(self, held: bool) -> None:
        pass


class _Unreported:
    async def report(self, status: str) -> None:
        pass


@dataclass(slots=True)
class PollSchedule:
    poll: Callable[[], Awaitable[PollResult]]
    lock: LeaderLock
    interval: float
    monitor: PollerMonitor = field(default_factory=_Unmonitored)
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    upstream: UpstreamReporter = field(default_factory=_Unreported)
    _leader: bool = False

    async def poll_once(self) -> float:
        """Run one cycle; never raises (but cancellation). Returns how long to wait at
        least before the next one (the Retry-After of a 429, else 0)."""
        started = self.monotonic()
        outcome, tracked, pause = "failed", None, 0.0
        upstream: str | None = "failing"
        try:
            result = await self.poll()
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
                "poll: %d of %d cryptos updated in %.2f s",
                result.updated,
                result.tracked,
                self.monotonic() - started,
            )
        self.monitor.cycle_finished(outcome, self.monotonic() - started, tracked)
        if upstream is not None:
            await self.upstream.report(upstream)
        return pause

    async def tick(self) -> float:
        """One turn of the schedule: poll if this process leads. Returns the seconds to
        sleep before the next turn."""
        started = self.monotonic()
        leader = await self.lock.acquire()
        if leader != self._leader:
            self._leader = leader
            self.monitor.leadership(leader)
        pause = await self.poll_once() if leader else 0.0
        return max(self.interval - (self.monotonic() - started), pause, 0.0)

    async def run(self) -> None:
        """Poll every ``interval`` seconds while holding the leader lock; until cancelled.
        The lock is given back on the way out, so another process takes over at once."""
        try:
            while True:
                await self.sleep(await self.tick())
        finally:
            if self._leader:
                self._leader = False
                self.monitor.leadership(False)
            await self.lock.release()
