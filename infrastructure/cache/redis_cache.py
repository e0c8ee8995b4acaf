"""The ticker cache on Redis. Redis is only a cache: when it fails, lookups read as misses.

Failure handling, in short:

* every command is bounded: socket connect and read timeouts of ``timeout_seconds``
  (0.5 s), no client-side retries, and a hard ``asyncio.timeout`` of the same length
  around the whole call, so one cache call never costs a request more than ~0.5 s;
* a circuit breaker: after a failure the cache is bypassed (get answers None, set does
  nothing) for ``retry_after_seconds`` (5 s). Without it, a Redis that hangs instead of
  refusing connections would cost *every* request the full timeout, twice (get, then
  set). When the pause is over, one caller probes Redis while the others keep
  bypassing it; a success closes the breaker, a failure starts another pause;
* one WARNING when an outage starts and one INFO "Redis is back" when it ends, not a
  line per call; the same client reconnects by itself, no restart needed;
* a value that is not the JSON this module writes is a miss (logged).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from domain.model import CoinRef, Ticker
from infrastructure.cache.memory_cache import DEFAULT_TTL_SECONDS

log = logging.getLogger(__name__)

DEFAULT_KEY_PREFIX = "cps:ticker:"
DEFAULT_TIMEOUT_SECONDS = 0.5
DEFAULT_RETRY_AFTER_SECONDS = 5.0

T = TypeVar("T")


class _Skipped:
    """Marks a command that was not run or did not answer usefully."""


_SKIPPED: Final = _Skipped()


def _where(url: str) -> str:
    """The URL without its credentials, for log lines."""
    parts = urlsplit(url)
    if parts.hostname is None:  # unix:///path/to/redis.sock
        return f"{parts.scheme}://{parts.path}"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"no answer within {timeout:g} s"
    return f"{type(exc).__name__}: {exc}"


def encode_ref(ref: CoinRef) -> str:
    return json.dumps({"coin_id": ref.coin_id, "name": ref.name}, separators=(",", ":"))


def decode_ref(raw: bytes | str) -> CoinRef | None:
    """The CoinRef in a cached value, or None when the value is not one."""
    try:
        data = json.loads(raw)
    except ValueError:  # also UnicodeDecodeError
        return None
    if not isinstance(data, dict):
        return None
    coin_id, name = data.get("coin_id"), data.get("name")
    if not isinstance(coin_id, str) or not coin_id or not isinstance(name, str) or not name:
        return None
    return CoinRef(coin_id=coin_id, name=name)


class RedisTickerCache:
    """Implements domain.ports.TickerCache on Redis (redis.asyncio).

    Keys are ``key_prefix + ticker`` (``cps:ticker:BTC``), values
    ``{"coin_id": "bitcoin", "name": "Bitcoin"}``, kept ``ttl_seconds``.

    The Redis client is made on first use in the running event loop (and made
    again if a later call runs in another loop), so the cache can be built before
    the server's loop starts.
    """

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        retry_after_seconds: float = DEFAULT_RETRY_AFTER_SECONDS,
    ) -> None:
        if ttl_seconds < 1:
            raise ValueError("ttl_seconds must be at least 1")
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        if retry_after_seconds < 0:
            raise ValueError("retry_after_seconds must not be negative")
        parse_url(url)  # a URL redis-py cannot read fails now (ValueError), not on first use
        self._url = url
        self._where = _where(url)
        self._prefix = key_prefix
        self._ttl = int(ttl_seconds)
        self._timeout = timeout_seconds
        self._retry_after = retry_after_seconds
        self._client: Redis | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._down = False
        self._bypass_until = 0.0  # time.monotonic() before which Redis is not tried

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisTickerCache:
        return cls(url, **options)

    @property
    def available(self) -> bool:
        """False from the moment a call fails until one succeeds again."""
        return not self._down

    def key(self, symbol: Ticker) -> str:
        return f"{self._prefix}{symbol.value}"

    async def get(self, symbol: Ticker) -> CoinRef | None:
        key = self.key(symbol)
        raw = await self._run(lambda client: client.get(key))
        if raw is None or isinstance(raw, _Skipped):
            return None
        ref = decode_ref(raw)
        if ref is None:
            log.warning("ignoring a malformed ticker cache entry at %s: %.80r", key, raw)
        return ref

    async def set(self, symbol: Ticker, ref: CoinRef) -> None:
        key, value = self.key(symbol), encode_ref(ref)
        await self._run(lambda client: client.set(key, value, ex=self._ttl))

    async def ping(self) -> bool:
        """Whether Redis answers now. Ignores the breaker's pause, within the same timeout."""
        answer = await self._run(lambda client: client.ping(), probe=True)
        return answer is True

    async def close(self) -> None:
        client, self._client, self._client_loop = self._client, None, None
        if client is not None:
            try:
                await client.aclose()
            except (RedisError, OSError, RuntimeError) as exc:
                log.debug("closing the Redis client: %s", exc)

    def _current_client(self) -> Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            # A client from a loop that is gone cannot be closed from this one; drop it.
            self._client = Redis.from_url(
                self._url,
                socket_connect_timeout=self._timeout,
                socket_timeout=self._timeout,
                retry=Retry(NoBackoff(), 0),  # redis-py retries 3 times by default
                decode_responses=False,
            )
            self._client_loop = loop
        return self._client

    async def _run(
        self, command: Callable[[Redis], Awaitable[T]], *, probe: bool = False
    ) -> T | _Skipped:
        now = time.monotonic()
        if not probe and now < self._bypass_until:
            return _SKIPPED
        if self._down:
            # Half-open: this caller probes; the others keep bypassing Redis meanwhile.
            self._bypass_until = now + self._retry_after
        try:
            async with asyncio.timeout(self._timeout):
                result = await command(self._current_client())
        except ResponseError as exc:
            # Redis answered, but refused the command (wrong type, read-only, ACL...).
            self._answered()
            log.warning("Redis at %s refused a ticker cache command: %s", self._where, exc)
            return _SKIPPED
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return _SKIPPED
        self._answered()
        return result

    def _failed(self, exc: BaseException) -> None:
        self._bypass_until = time.monotonic() + self._retry_after
        if not self._down:
            self._down = True
            log.warning(
                "Redis at %s is unavailable (%s): the ticker cache is bypassed and "
                "lookups go to CoinGecko until Redis answers again (retried every %g s)",
                self._where,
                _describe(exc, self._timeout),
                self._retry_after,
            )

    def _answered(self) -> None:
        if self._down:
            self._down = False
            self._bypass_until = 0.0
            log.info("Redis is back at %s: the ticker cache is in use again", self._where)
