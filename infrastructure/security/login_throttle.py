"""Login throttling (domain.ports.LoginThrottle) on the ``limits`` library's moving windows.

Two windows of ``window_seconds``: the failed logins of one username (in any case)
and those from one client address. When either is full, attempts are refused with
TooManyAttempts until its oldest failure leaves the window, even with the right
password; a successful login clears the username's window (never the address's:
an attacker's own account would otherwise wipe their address's count).

A burst of concurrent guesses all pass the first check before any of them fails, so
the answer is decided again after the password check (see domain.ports.LoginThrottle):
once the window is full, wrong and right passwords alike are refused, and the burst
learns no more than the guesses that completed before it filled.

Keys never hold what the client typed: a username is hashed (any length, any
characters; and no names in Redis), an address is the IP address (an IPv6 address's
/64 network, which one subscriber holds whole), or a hash of whatever else it is.

``WindowLoginThrottle`` works on one ``limits`` storage (MemoryStorage: this process
only). ``SharedLoginThrottle`` keeps the windows in Redis, shared by every replica
(keys ``<key_prefix>LIMITER/...``); while Redis is down (RedisGuard: bounded
calls, a circuit breaker, one WARNING per outage) each process decides with a
WindowLoginThrottle of its own, which also counts what this process saw while Redis
was up, so an outage starts from that. ``limits`` stamps the Redis windows with the
caller's clock: the replicas' clocks must agree (NTP) to within a few seconds.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from domain.errors import TooManyAttempts
from domain.ports import LoginThrottle
from infrastructure.redis_guard import (
    DEFAULT_RETRY_AFTER_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    RedisGuard,
    Skipped,
    limits_storage,
)

if TYPE_CHECKING:
    from infrastructure.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_KEY_PREFIX = "cps:login:"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LoginLimits:
    per_username: int = 10
    per_address: int = 50
    window_seconds: int = 600

    def __post_init__(self) -> None:
        if min(self.per_username, self.per_address, self.window_seconds) < 1:
            raise ValueError("login limits and their window must be at least 1")


def _digest(text: str) -> str:
    # surrogatepass: a lone surrogate in a login name must not crash the throttle.
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def username_key(username: str) -> str:
    return _digest(username.lower())


def address_key(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address.strip("[]"))  # Sanic brackets IPv6 from proxies
    except ValueError:  # a unix socket, or whatever a trusted proxy wrote
        return _digest(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip.exploded}/64", strict=False))
    return str(ip)


class ManagedLoginThrottle(LoginThrottle, Protocol):
    """A throttle the app owns: closed on shutdown."""

    async def close(self) -> None: ...


class WindowLoginThrottle:
    """Implements domain.ports.LoginThrottle on one ``limits`` storage with moving-window
    support. ``clock`` (time.time's scale, the one ``limits`` stamps windows with)
    turns a window's reset time into seconds to wait."""

    def __init__(
        self,
        storage: Storage,
        limits: LoginLimits,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limits = limits
        self._windows = MovingWindowRateLimiter(storage)
        self._username = RateLimitItemPerSecond(limits.per_username, limits.window_seconds)
        self._address = RateLimitItemPerSecond(limits.per_address, limits.window_seconds)
        self._clock = clock

    async def check(self, username: str, address: str) -> None:
        refuse(await self.full(username, address))

    async def record_failure(self, username: str, address: str) -> None:
        refuse(await self.count_failure(username, address))

    async def reset(self, username: str) -> None:
        await self._windows.clear(self._username, "username", username_key(username))

    async def close(self) -> None:
        return None

    async def full(self, username: str, address: str) -> int | None:
        """None while both windows have room; else the seconds until they have."""
        waits = [
            await self._retry_after(item, identifiers)
            for item, identifiers in self._windows_of(username, address)
            if not await self._windows.test(item, *identifiers)
        ]
        return max(waits, default=None)

    async def count_failure(self, username: str, address: str) -> int | None:
        """Count a failure in both windows: None when both had room for it; else the
        seconds until they have (a full window does not count it)."""
        waits = [
            await self._retry_after(item, identifiers)
            for item, identifiers in self._windows_of(username, address)
            if not await self._windows.hit(item, *identifiers)
        ]
        return max(waits, default=None)

    def _windows_of(
        self, username: str, address: str
    ) -> list[tuple[RateLimitItem, tuple[str, str]]]:
        return [
            (self._address, ("address", address_key(address))),
            (self._username, ("username", username_key(username))),
        ]

    async def _retry_after(self, item: RateLimitItem, identifiers: tuple[str, str]) -> int:
        stats = await self._windows.get_window_stats(item, *identifiers)
        return max(1, math.ceil(stats.reset_time - self._clock()))


def refuse(retry_after: int | None) -> None:
    if retry_after is not None:
        raise TooManyAttempts(retry_after)


class SharedLoginThrottle:
    """Implements domain.ports.LoginThrottle in Redis at ``url``, for every process that
    uses it with the same ``key_prefix``; per process (``fallback``) while Redis is down.

    Build one per process, before or inside the event loop (the Redis client is made
    on first use in the running loop); ``close()`` it on shutdown."""

    def __init__(
        self,
        url: str,
        limits: LoginLimits,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        fallback: WindowLoginThrottle | None = None,
        clock: Callable[[], float] = time.time,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        retry_after_seconds: float = DEFAULT_RETRY_AFTER_SECONDS,
    ) -> None:
        self.limits = limits
        self.fallback = fallback or WindowLoginThrottle(MemoryStorage(), limits, clock=clock)
        self._redis = RedisGuard(
            url,
            logger=log,
            meanwhile="failed logins are counted per process",
            back="failed logins are counted for every process again",
            timeout_seconds=timeout_seconds,
            retry_after_seconds=retry_after_seconds,
        )
        self._key_prefix = key_prefix.removesuffix(":")  # limits adds the ':' itself
        self._clock = clock
        self._shared: tuple[Redis, WindowLoginThrottle] | None = None

    async def check(self, username: str, address: str) -> None:
        wait = await self._run(lambda shared: shared.full(username, address))
        if isinstance(wait, Skipped):
            wait = await self.fallback.full(username, address)
        refuse(wait)

    async def record_failure(self, username: str, address: str) -> None:
        wait = await self._run(lambda shared: shared.count_failure(username, address))
        own = await self.fallback.count_failure(username, address)  # kept for an outage
        refuse(own if isinstance(wait, Skipped) else wait)

    async def reset(self, username: str) -> None:
        await self._run(lambda shared: shared.reset(username))
        await self.fallback.reset(username)

    async def close(self) -> None:
        self._shared = None
        await self._redis.close()

    def _on(self, client: Redis) -> WindowLoginThrottle:
        """The windows in Redis through ``client``, made again when the guard makes a
        new client (a new event loop)."""
        if self._shared is None or self._shared[0] is not client:
            storage = limits_storage(client, self._key_prefix)
            self._shared = (client, WindowLoginThrottle(storage, self.limits, clock=self._clock))
        return self._shared[1]

    async def _run(self, command: Callable[[WindowLoginThrottle], Awaitable[T]]) -> T | Skipped:
        return await self._redis.run(lambda client: command(self._on(client)))


def build_login_throttle(settings: Settings) -> WindowLoginThrottle | SharedLoginThrottle:
    """The throttle for this process: shared through Redis when REDIS_URL is set (keys
    under REDIS_KEY_PREFIX + ``login:``), else this process's own."""
    limits = LoginLimits(
        settings.login_failures_per_username,
        settings.login_failures_per_address,
        settings.login_window_seconds,
    )
    if settings.redis_url is None:
        return WindowLoginThrottle(MemoryStorage(), limits)
    return SharedLoginThrottle(
        settings.redis_url, limits, key_prefix=f"{settings.redis_key_prefix}login:"
    )
