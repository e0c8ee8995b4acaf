"""One budget of CoinGecko calls for the whole process.

A sliding 60 s window: at most ``calls_per_minute`` calls start in any 60 s, which
is exactly what a plan's "calls a minute" promises to honour (a token bucket lets
through up to twice that in a minute: its burst plus its refill). A burst up to the
whole budget is allowed, which suits this service: calls are rare (a poll cycle is
one call per 100 coins; an add or refresh is one call).

Callers reserve a slot without awaiting anything first, so concurrent callers never
race for one, and a caller that cannot get a slot within ``max_wait`` seconds is
refused at once with ``UpstreamRateLimited`` naming when to retry: requests use a
small ``max_wait`` and fail fast, the poller a large one and waits.

After a 429, ``pause`` holds every caller (also those already waiting for a slot)
until CoinGecko's ``Retry-After`` has passed.

The state is plain numbers, bound to no event loop, so one limiter may be built
before the loop starts. It counts the calls of one process only.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from domain.errors import UpstreamRateLimited

DEFAULT_PAUSE_SECONDS = 60.0  # after a 429 without a usable Retry-After
MAX_PAUSE_SECONDS = 600.0  # a longer Retry-After is cut to this
MIN_PAUSE_SECONDS = 1.0  # a 429 always costs at least this


class CallLimiter(Protocol):
    """What the CoinGecko client needs of a limiter: RateLimiter (one process) and
    shared_rate_limiter.RedisRateLimiter (every process on one Redis) both are one."""

    @property
    def paused_for(self) -> float: ...

    def pause(self, seconds: float | None) -> float: ...

    async def acquire(self, *, max_wait: float) -> None: ...

    async def close(self) -> None: ...


class RateLimiter:
    def __init__(
        self,
        calls_per_minute: int,
        *,
        window_seconds: float = 60.0,
        default_pause: float = DEFAULT_PAUSE_SECONDS,
        max_pause: float = MAX_PAUSE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if calls_per_minute < 1:
            raise ValueError("calls_per_minute must be at least 1")
        self.calls_per_minute = calls_per_minute
        self._window = window_seconds
        self._default_pause = default_pause
        self._max_pause = max_pause
        self._clock = clock
        self._sleep = sleep
        self._slots: deque[float] = deque()  # start times of calls made or reserved, sorted
        self._paused_until = -math.inf

    async def close(self) -> None:
        """Nothing to release: the state is plain numbers."""

    @property
    def paused_for(self) -> float:
        """Seconds left of the pause a 429 asked for (0 when there is none)."""
        return max(self._paused_until - self._clock(), 0.0)

    def pause(self, seconds: float | None) -> float:
        """Hold every caller for ``seconds`` (CoinGecko's Retry-After). None, a
        negative or a non-finite value means the default; the pause is kept between
        MIN_PAUSE_SECONDS and ``max_pause``. A shorter pause never shortens a longer
        one already running. Returns the pause applied."""
        if seconds is None or not math.isfinite(seconds) or seconds < 0:
            seconds = self._default_pause
        seconds = min(max(seconds, MIN_PAUSE_SECONDS), self._max_pause)
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        return seconds

    async def acquire(self, *, max_wait: float) -> None:
        """Take a slot for one call, waiting for it at most ``max_wait`` seconds.

        Raises UpstreamRateLimited (with ``retry_after``) at once, without waiting,
        when no slot frees up in time."""
        deadline = self._clock() + max(max_wait, 0.0)
        while True:
            now = self._clock()
            slot = self._next_slot(now)
            if slot > max(deadline, now) + 1e-9:  # a slot free now is never refused
                raise self._refusal(now, slot)
            bisect.insort(self._slots, slot)
            if slot <= now:
                return
            try:
                await self._sleep(slot - now)
            except BaseException:
                self._slots.remove(slot)  # cancelled: give the slot back
                raise
            if self._paused_until <= self._clock():
                return
            self._slots.remove(slot)  # a 429 came in while we waited: queue again

    def _next_slot(self, now: float) -> float:
        while self._slots and self._slots[0] <= now - self._window:
            self._slots.popleft()
        slot = max(now, self._paused_until)
        if len(self._slots) >= self.calls_per_minute:
            slot = max(slot, self._slots[-self.calls_per_minute] + self._window)
        return slot

    def _refusal(self, now: float, slot: float) -> UpstreamRateLimited:
        return refusal(self.calls_per_minute, slot - now, paused=self._paused_until >= slot)


def refusal(calls_per_minute: int, wait: float, *, paused: bool) -> UpstreamRateLimited:
    """The error of a limiter that has no slot for ``wait`` seconds: because a 429
    paused the calls (``paused``) or because the budget is spent."""
    seconds = math.ceil(wait)
    if paused:
        message = f"CoinGecko is rate-limiting us; retry in {seconds} s"
    else:
        message = (
            f"the budget of {calls_per_minute} CoinGecko calls a minute "
            f"is spent; retry in {seconds} s"
        )
    return UpstreamRateLimited(message, retry_after=wait)
