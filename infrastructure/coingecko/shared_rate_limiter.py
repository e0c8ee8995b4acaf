"""One budget of CoinGecko calls for every worker of every replica, kept in Redis.

``RedisRateLimiter`` is a drop-in for ``RateLimiter`` (same ``acquire``, ``pause`` and
``paused_for``) whose state lives in Redis, which every process shares:

* ``<key_prefix>calls``: a sorted set of call start times (made or reserved), the same
  sliding window as RateLimiter's, pruned as it slides;
* ``<key_prefix>paused``: until when a 429 holds every caller.

Times are Redis's own (``TIME``, in microseconds), read inside Lua scripts that check
and reserve in one step, so processes never race for a slot and the clocks of the
replicas never matter. When the window is full the script reserves the slot that
frees first, if it frees within ``max_wait``, and the caller sleeps until it (then
checks that no 429 came in meanwhile); otherwise the caller is refused at once with
UpstreamRateLimited, worded as RateLimiter words it.

``pause`` stays synchronous, like RateLimiter's: it pauses this process's fallback
limiter at once (so this process holds off immediately) and writes the shared pause
to Redis in the background (a pause never shortens a longer one). ``flush()`` waits
for those writes; ``close()`` does too.

Redis is only a helper (infrastructure.redis_guard.RedisGuard). Every Redis call is
bounded by ``timeout_seconds`` (0.5 s). When it fails, a circuit breaker skips Redis for
``retry_after_seconds``, and calls are counted by ``fallback``, a per-process
RateLimiter, meanwhile: one WARNING when an outage starts, one INFO when Redis is
back. That fallback also records every call this process makes through Redis and
every shared pause it sees, so an outage starts from what this process knows. During
an outage each process has the whole budget to itself (pass a smaller ``fallback``
to change that), and a pause set then stays in its process.

On Redis Cluster both keys must share a slot: give a key prefix with a hash tag,
such as ``{cps:coingecko}:``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from redis.asyncio import Redis

from domain.errors import UpstreamRateLimited
from infrastructure.coingecko.rate_limiter import MIN_PAUSE_SECONDS, RateLimiter, refusal
from infrastructure.redis_guard import (
    DEFAULT_RETRY_AFTER_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    RedisGuard,
    Skipped,
)

if TYPE_CHECKING:
    from infrastructure.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_KEY_PREFIX = "cps:coingecko:"
MICROS = 1_000_000

T = TypeVar("T")

# Redis TIME in microseconds: integers below 2**53, so Lua's doubles hold them exactly.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local paused = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
"""

# KEYS: calls, paused. ARGV: calls a window, window (us), max wait (us), this process's
# own pause left (us; its write to Redis may still be on the way), member to add.
# Returns {1 reserved | 0 refused, wait until the slot (us), pause left (us)}.
ACQUIRE_SCRIPT = (
    _NOW
    + """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local paused_until = math.max(paused, now + tonumber(ARGV[4]))
local slot = math.max(now, paused_until)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local kth = redis.call('ZRANGE', KEYS[1], -limit, -limit, 'WITHSCORES')
  slot = math.max(slot, tonumber(kth[2]) + window)
end
local paused_left = math.max(paused_until - now, 0)
if slot - now > tonumber(ARGV[3]) then
  return {0, slot - now, paused_left}
end
redis.call('ZADD', KEYS[1], string.format('%.0f', slot), ARGV[5])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(last[2]) + window - now) / 1000) + 1000)
return {1, slot - now, paused_left}
"""
)

# After sleeping until a reserved slot: KEYS calls, paused; ARGV member. A 429 that came
# in meanwhile gives the slot back. Returns the pause left (us), 0 when there is none.
CONFIRM_SCRIPT = (
    _NOW
    + """
if paused > now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return paused - now
end
return 0
"""
)

# KEYS: calls (unused), paused. ARGV: the pause (us). Never shortens a longer pause.
# Returns the pause left (us).
PAUSE_SCRIPT = (
    _NOW
    + """
local wanted = now + tonumber(ARGV[1])
if wanted > paused then
  local ttl = math.ceil(tonumber(ARGV[1]) / 1000) + 1000
  redis.call('SET', KEYS[2], string.format('%.0f', wanted), 'PX', ttl)
  paused = wanted
end
return paused - now
"""
)


class _Scripts:
    """The Lua scripts on one client (EVALSHA; loaded again after NOSCRIPT)."""

    def __init__(self, client: Redis, calls_key: str, paused_key: str) -> None:
        self.client = client
        self._calls_key = calls_key
        self._keys = [calls_key, paused_key]
        self._acquire = client.register_script(ACQUIRE_SCRIPT)
        self._confirm = client.register_script(CONFIRM_SCRIPT)
        self._pause = client.register_script(PAUSE_SCRIPT)

    async def acquire(
        self, limit: int, window_us: int, max_wait_us: int, own_pause_us: int, member: str
    ) -> tuple[bool, int, int]:
        answer = await self._acquire(
            keys=self._keys, args=(limit, window_us, max_wait_us, own_pause_us, member)
        )
        reserved, wait_us, paused_us = (int(value) for value in answer)
        return bool(reserved), wait_us, paused_us

    async def confirm(self, member: str) -> int:
        return int(await self._confirm(keys=self._keys, args=(member,)))

    async def pause(self, pause_us: int) -> int:
        return int(await self._pause(keys=self._keys, args=(pause_us,)))

    async def give_back(self, member: str) -> None:
        await self.client.zrem(self._calls_key, member)


class RedisRateLimiter:
    """RateLimiter's budget (``calls_per_minute`` per ``window_seconds``) shared by
    every process that uses the same Redis and ``key_prefix``.

    Build one per process, before or inside the event loop (the Redis client is made
    on first use in the running loop, and made again if the loop changes);
    ``close()`` it on shutdown. ``clock`` and ``sleep`` are this process's time (its
    deadlines, the breaker, the fallback, the wait for a reserved slot); the window
    itself runs on Redis's TIME."""

    def __init__(
        self,
        url: str,
        calls_per_minute: int,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        window_seconds: float = 60.0,
        fallback: RateLimiter | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        retry_after_seconds: float = DEFAULT_RETRY_AFTER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if calls_per_minute < 1:
            raise ValueError("calls_per_minute must be at least 1")
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        self.calls_per_minute = calls_per_minute
        self.fallback = fallback or RateLimiter(
            calls_per_minute, window_seconds=window_seconds, clock=clock, sleep=sleep
        )
        self._clock = clock
        self._sleep = sleep
        self._redis = RedisGuard(
            url,
            logger=log,
            meanwhile=(
                "CoinGecko calls are counted per process "
                f"(a budget of {self.fallback.calls_per_minute} a minute each)"
            ),
            back="the CoinGecko call budget is shared again",
            timeout_seconds=timeout_seconds,
            retry_after_seconds=retry_after_seconds,
            clock=clock,
        )
        self.calls_key = f"{key_prefix}calls"
        self.paused_key = f"{key_prefix}paused"
        self._window_us = round(window_seconds * MICROS)
        self._scripts: _Scripts | None = None
        self._shared_pause_until = -math.inf  # clock() when the pause seen ends
        self._background: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> RedisRateLimiter:
        """The limiter on ``REDIS_URL`` (which must be set), keys under
        ``REDIS_KEY_PREFIX`` + ``coingecko:``."""
        if settings.redis_url is None:
            raise ValueError("a shared rate limiter needs REDIS_URL")
        options.setdefault("key_prefix", f"{settings.redis_key_prefix}coingecko:")
        return cls(settings.redis_url, settings.coingecko_calls_per_minute, **options)

    @property
    def shared(self) -> bool:
        """False from the moment a Redis call fails until one succeeds again."""
        return self._redis.available

    @property
    def paused_for(self) -> float:
        """Seconds left of the pause a 429 asked for, here or in another process, as
        last seen (0 when there is none)."""
        seen = self._shared_pause_until - self._clock()
        return max(self.fallback.paused_for, seen, 0.0)

    def pause(self, seconds: float | None) -> float:
        """Hold every caller of every process for ``seconds`` (CoinGecko's
        Retry-After), kept between 1 s and the fallback's ``max_pause`` (60 s when
        None or unusable), as RateLimiter does. This process holds off at once; the
        others as soon as the background write reaches Redis. Returns the pause."""
        applied = self.fallback.pause(seconds)
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop to write it from: this process only
            return applied
        self._in_background(self._share_pause(applied))
        return applied

    async def flush(self) -> None:
        """Wait for the background writes (pauses, slots given back) of this loop."""
        loop = asyncio.get_running_loop()
        while pending := [task for task in self._background if task.get_loop() is loop]:
            await asyncio.gather(*pending, return_exceptions=True)

    async def acquire(self, *, max_wait: float) -> None:
        """Take a slot of the shared budget for one call, waiting for it at most
        ``max_wait`` seconds; raises UpstreamRateLimited (with ``retry_after``) at
        once, without waiting, when no slot frees up in time. Without Redis, the
        fallback limiter decides."""
        deadline = self._clock() + max(max_wait, 0.0)
        while True:
            remaining = max(deadline - self._clock(), 0.0)
            member = uuid.uuid4().hex
            answer = await self._run(
                _Scripts.acquire,
                self.calls_per_minute,
                self._window_us,
                math.floor(remaining * MICROS),
                math.ceil(self.fallback.paused_for * MICROS),
                member,
            )
            if isinstance(answer, Skipped):  # the time Redis took counts against max_wait
                await self.fallback.acquire(max_wait=max(deadline - self._clock(), 0.0))
                return
            reserved, wait_us, paused_us = answer
            self._saw_pause(paused_us)
            if not reserved:
                raise refusal(self.calls_per_minute, wait_us / MICROS, paused=paused_us >= wait_us)
            if wait_us > 0 and await self._wait_for_slot(member, wait_us):
                continue  # a 429 came in while we waited: queue again
            await self._record_locally()
            return

    async def close(self) -> None:
        await self.flush()
        self._scripts = None
        await self._redis.close()

    # --- internals -------------------------------------------------------------------

    async def _wait_for_slot(self, member: str, wait_us: int) -> bool:
        """Sleep until the reserved slot; True when a 429 paused everyone meanwhile
        (the slot is given back then)."""
        try:
            await self._sleep(wait_us / MICROS)
        except BaseException:  # cancelled: give the slot back
            self._in_background(self._give_back(member))
            raise
        paused = await self._run(_Scripts.confirm, member)
        if isinstance(paused, Skipped):
            return False  # Redis went away while we waited: keep the slot we waited for
        self._saw_pause(paused)
        return paused > 0

    async def _give_back(self, member: str) -> None:
        await self._run(_Scripts.give_back, member)

    async def _share_pause(self, seconds: float) -> None:
        answer = await self._run(_Scripts.pause, math.ceil(seconds * MICROS))
        if not isinstance(answer, Skipped):
            self._saw_pause(answer)

    async def _record_locally(self) -> None:
        """Count the call in the fallback too, so an outage starts from this process's
        real recent calls. It cannot be over budget (its calls are a part of the shared
        ones) save for a few ms of clock difference, when it is not counted."""
        with contextlib.suppress(UpstreamRateLimited):
            await self.fallback.acquire(max_wait=0)

    def _saw_pause(self, paused_us: int) -> None:
        """Remember a shared pause (for paused_for), and hold the fallback to it too."""
        if paused_us <= 0:
            return
        seconds = paused_us / MICROS
        self._shared_pause_until = max(self._shared_pause_until, self._clock() + seconds)
        if seconds >= MIN_PAUSE_SECONDS and seconds > self.fallback.paused_for:
            self.fallback.pause(seconds)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)  # keep a reference until it is done
        task.add_done_callback(self._background.discard)

    def _scripts_on(self, client: Redis) -> _Scripts:
        """The scripts on ``client``, registered again when the guard makes a new
        client (a new event loop)."""
        if self._scripts is None or self._scripts.client is not client:
            self._scripts = _Scripts(client, self.calls_key, self.paused_key)
        return self._scripts

    async def _run(self, command: Callable[..., Awaitable[T]], *args: int | str) -> T | Skipped:
        """``command(scripts, *args)`` within the timeout, or SKIPPED when Redis is
        bypassed or fails (a refused command too)."""
        return await self._redis.run(lambda client: command(self._scripts_on(client), *args))


def build_rate_limiter(settings: Settings) -> RateLimiter | RedisRateLimiter:
    """The limiter for this process: shared through Redis when REDIS_URL is set."""
    if settings.redis_url is None:
        return RateLimiter(settings.coingecko_calls_per_minute)
    return RedisRateLimiter.from_settings(settings)
