"""The budget of CoinGecko calls, shared by every replica through Redis.

* The calls: a ``limits`` moving window, at most ``calls_per_minute`` calls starting in
  any 60 s, which is what a plan's "calls a minute" promises to honour (a token bucket
  lets through up to twice that in a minute). A burst up to the whole budget is
  allowed: calls are rare (a poll cycle is one call per 100 coins). ``hit`` checks and
  takes a slot in one step (a Lua script on Redis), so concurrent callers in any
  number of processes never exceed the budget.
* The pause after a 429: one Redis key whose TTL is the pause, on Redis's clock. It is
  written ``SET NX`` + ``PEXPIRE GT`` in one transaction, so a pause never shortens a
  longer one, and read before every call by every replica. This process keeps it in
  memory too: it holds off at once, and through a Redis outage.

A caller waits for a slot at most ``max_wait`` seconds: when none is free it sleeps
until the pause ends or the window's oldest call leaves it, then tries again; it is
refused with UpstreamRateLimited, naming when to retry, as soon as the wait would end
past ``max_wait``. Requests use a small ``max_wait`` and fail fast, the poller a large
one and waits. Waiters are not queued: whoever tries first when a slot frees takes it.

Without REDIS_URL, and while Redis is down (RedisGuard: bounded calls, a circuit
breaker, one WARNING per outage), the window is this process's own (``limits``
MemoryStorage). That one also counts the calls this process made through Redis, so an
outage starts from them; during one, each process has the whole budget to itself.
``limits`` stamps the windows with time.time: the replicas' clocks must agree (NTP).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from domain.errors import UpstreamRateLimited
from infrastructure.redis_guard import (
    DEFAULT_RETRY_AFTER_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    SKIPPED,
    RedisGuard,
    Skipped,
    limits_storage,
)

if TYPE_CHECKING:
    from infrastructure.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_KEY_PREFIX = "cps:coingecko:"
DEFAULT_PAUSE_SECONDS = 60.0  # after a 429 without a usable Retry-After
MAX_PAUSE_SECONDS = 600.0  # a longer Retry-After is cut to this
MIN_PAUSE_SECONDS = 1.0  # a 429 always costs at least this
# Tried again this soon when a slot freed between a refused hit and the window's stats
# (or a window stamped at exactly 60 s ago counts as full for one and free for the other).
RETRY_SECONDS = 0.001
CALLS = "calls"  # the window's identifier

T = TypeVar("T")


class CallBudget:
    """``calls_per_minute`` CoinGecko calls in any 60 s, and the pause after a 429; in
    Redis at ``redis_url`` (under ``key_prefix``) for every process that uses it, or in
    this process only when ``redis_url`` is None.

    Build one per process, before or inside the event loop (the Redis client is made on
    first use in the running loop); ``close()`` it on shutdown. ``clock`` is time.time's
    scale (the one ``limits`` stamps windows with); ``sleep`` is how a caller waits."""

    def __init__(
        self,
        calls_per_minute: int,
        *,
        redis_url: str | None = None,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        default_pause: float = DEFAULT_PAUSE_SECONDS,
        max_pause: float = MAX_PAUSE_SECONDS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        retry_after_seconds: float = DEFAULT_RETRY_AFTER_SECONDS,
    ) -> None:
        if calls_per_minute < 1:
            raise ValueError("calls_per_minute must be at least 1")
        self.calls_per_minute = calls_per_minute
        self.pause_key = f"{key_prefix}paused"
        self._item = RateLimitItemPerMinute(calls_per_minute)
        self._own = MovingWindowRateLimiter(MemoryStorage())
        self._default_pause = default_pause
        self._max_pause = max_pause
        self._clock = clock
        self._sleep = sleep
        self._paused_until = -math.inf  # clock() when the last pause seen ends
        self._key_prefix = key_prefix.removesuffix(":")  # limits adds the ':' itself
        self._shared: tuple[Redis, MovingWindowRateLimiter] | None = None
        self._redis = (
            None
            if redis_url is None
            else RedisGuard(
                redis_url,
                logger=log,
                meanwhile=(
                    "CoinGecko calls are counted per process "
                    f"(a budget of {calls_per_minute} a minute each)"
                ),
                back="the CoinGecko call budget is shared again",
                timeout_seconds=timeout_seconds,
                retry_after_seconds=retry_after_seconds,
            )
        )

    async def pause(self, seconds: float | None) -> float:
        """Hold every caller of every process for ``seconds`` (CoinGecko's Retry-After).
        None, a negative or a non-finite value means the default; the pause is kept
        between MIN_PAUSE_SECONDS and ``max_pause``. Returns the pause applied."""
        if seconds is None or not math.isfinite(seconds) or seconds < 0:
            seconds = self._default_pause
        seconds = min(max(seconds, MIN_PAUSE_SECONDS), self._max_pause)
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        await self._run(lambda client: _share_pause(client, self.pause_key, seconds))
        return seconds

    async def acquire(self, *, max_wait: float) -> None:
        """Take a slot for one call, waiting for it at most ``max_wait`` seconds.

        Raises UpstreamRateLimited (with ``retry_after``) without waiting when the
        next chance of a slot is past ``max_wait``; a free slot is never refused."""
        deadline = self._clock() + max(max_wait, 0.0)
        while True:
            paused = await self._paused_left()
            if not paused and await self._take():
                return
            wait = paused or await self._until_a_slot()
            if self._clock() + wait > deadline:
                raise _refusal(self.calls_per_minute, wait, paused=bool(paused))
            await self._sleep(wait)

    async def close(self) -> None:
        self._shared = None
        if self._redis is not None:
            await self._redis.close()

    # --- internals -------------------------------------------------------------------

    async def _paused_left(self) -> float:
        """Seconds left of the longest pause seen, here or (through Redis) elsewhere."""
        shared_ms = await self._run(lambda client: client.pttl(self.pause_key))
        if not isinstance(shared_ms, Skipped) and shared_ms > 0:  # -2: no pause
            self._paused_until = max(self._paused_until, self._clock() + shared_ms / 1000)
        return max(self._paused_until - self._clock(), 0.0)

    async def _take(self) -> bool:
        shared = await self._run(lambda client: self._window(client).hit(self._item, CALLS))
        if isinstance(shared, Skipped):
            return await self._own.hit(self._item, CALLS)
        if shared:
            await self._own.hit(self._item, CALLS)  # so that an outage starts from it
        return shared

    async def _until_a_slot(self) -> float:
        stats = await self._run(
            lambda client: self._window(client).get_window_stats(self._item, CALLS)
        )
        if isinstance(stats, Skipped):
            stats = await self._own.get_window_stats(self._item, CALLS)
        if stats.remaining > 0:
            return RETRY_SECONDS
        return max(stats.reset_time - self._clock(), RETRY_SECONDS)

    def _window(self, client: Redis) -> MovingWindowRateLimiter:
        """The window in Redis through ``client``, made again when the guard makes a
        new client (a new event loop)."""
        if self._shared is None or self._shared[0] is not client:
            storage = limits_storage(client, self._key_prefix)
            self._shared = (client, MovingWindowRateLimiter(storage))
        return self._shared[1]

    async def _run(self, command: Callable[[Redis], Awaitable[T]]) -> T | Skipped:
        """``command(client)`` on Redis, or SKIPPED without Redis or when it fails."""
        if self._redis is None:
            return SKIPPED
        return await self._redis.run(command)


async def _share_pause(client: Redis, key: str, seconds: float) -> None:
    milliseconds = math.ceil(seconds * 1000)
    async with client.pipeline(transaction=True) as transaction:
        transaction.set(key, 1, nx=True, px=milliseconds)  # no pause yet: this one
        transaction.pexpire(key, milliseconds, gt=True)  # a shorter one: lengthened
        await transaction.execute()


def _refusal(calls_per_minute: int, wait: float, *, paused: bool) -> UpstreamRateLimited:
    """The error when no slot is free for ``wait`` seconds: because a 429 paused the
    calls (``paused``) or because the budget is spent."""
    seconds = math.ceil(wait)
    if paused:
        message = f"CoinGecko is rate-limiting us; retry in {seconds} s"
    else:
        message = (
            f"the budget of {calls_per_minute} CoinGecko calls a minute "
            f"is spent; retry in {seconds} s"
        )
    return UpstreamRateLimited(message, retry_after=wait)


def build_call_budget(settings: Settings) -> CallBudget:
    """The budget for this process: shared through Redis when REDIS_URL is set (keys
    under REDIS_KEY_PREFIX + ``coingecko:``), else this process's own."""
    return CallBudget(
        settings.coingecko_calls_per_minute,
        redis_url=settings.redis_url,
        key_prefix=f"{settings.redis_key_prefix}coingecko:",
    )
