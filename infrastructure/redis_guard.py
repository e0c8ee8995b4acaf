"""Redis as a helper that may fail: bounded calls behind a circuit breaker.

``RedisGuard`` owns one redis.asyncio client and runs commands on it so that a Redis
that is down or hangs never costs a caller more than a short timeout:

* the client is made on first use in the running event loop, and made again if a
  later call runs in another loop (so the owner can be built before the server's
  loop starts);
* every command is bounded: socket connect and read timeouts of ``timeout_seconds``
  (0.5 s), no client-side retries, and a hard ``asyncio.timeout`` of the same length
  around the whole call;
* a circuit breaker: after a failure Redis is skipped (``run`` answers ``SKIPPED``)
  for ``retry_after_seconds`` (5 s). When the pause is over, one caller probes Redis
  while the others keep skipping it; a success closes the breaker, a failure starts
  another pause;
* one WARNING when an outage starts and one INFO "Redis is back" when it ends, on the
  owner's logger, with the URL stripped of its credentials; not a line per call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar
from urllib.parse import urlsplit

from limits.aio.storage import RedisStorage
from redis.asyncio import Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

DEFAULT_TIMEOUT_SECONDS = 0.5
DEFAULT_RETRY_AFTER_SECONDS = 5.0

T = TypeVar("T")


class Skipped:
    """Marks a Redis command that was not run (breaker open) or failed."""


SKIPPED: Final = Skipped()


def _redacted(url: str) -> str:
    """The URL without its credentials, for log lines."""
    parts = urlsplit(url)
    if parts.hostname is None:  # unix:///path/to/redis.sock
        return f"{parts.scheme}://{parts.path}"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def _describe(exc: BaseException, timeout: float) -> str:
    """A failure, for log lines; a bare timeout reads as ``no answer within 0.5 s``."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"no answer within {timeout:g} s"
    return f"{type(exc).__name__}: {exc}"


def limits_storage(client: Redis, key_prefix: str) -> RedisStorage:
    """A ``limits`` storage (keys ``<key_prefix>:...``) on ``client``'s connections, so
    that its commands get the guard's timeouts and no retries."""
    return RedisStorage(
        "async+redis://",
        implementation="redispy",
        key_prefix=key_prefix,
        connection_pool=client.connection_pool,
    )


class RedisGuard:
    """Runs commands on the Redis at ``url`` within ``timeout_seconds``, skipping it
    for ``retry_after_seconds`` after a failure.

    ``meanwhile`` says in the outage WARNING what the owner does without Redis
    ("... is unavailable (...): <meanwhile> until Redis answers again"), ``back`` in
    the INFO when it ends ("Redis is back at ...: <back>"); both go to ``logger``.
    ``clock`` (seconds, monotonic) times the breaker's pause. Raises ValueError at once
    for bad timeouts or a URL redis-py cannot read.
    """

    def __init__(
        self,
        url: str,
        *,
        logger: logging.Logger,
        meanwhile: str,
        back: str,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        retry_after_seconds: float = DEFAULT_RETRY_AFTER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        if retry_after_seconds < 0:
            raise ValueError("retry_after_seconds must not be negative")
        parse_url(url)  # a URL redis-py cannot read fails now (ValueError), not on first use
        self.where = _redacted(url)
        self.timeout = timeout_seconds
        self.retry_after = retry_after_seconds
        self._url = url
        self._log = logger
        self._meanwhile = meanwhile
        self._back = back
        self._clock = clock
        self._client: Redis | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._down = False
        self._bypass_until = 0.0  # clock() before which Redis is not tried

    @property
    def available(self) -> bool:
        """False from the moment a command fails until one succeeds again."""
        return not self._down

    async def run(
        self, command: Callable[[Redis], Awaitable[T]], *, probe: bool = False
    ) -> T | Skipped:
        """``command(client)`` within the timeout, or SKIPPED when Redis is skipped
        or fails (a refused command, ResponseError, counts as a failure: catch it in
        ``command`` to treat it otherwise). ``probe`` tries Redis even while the
        breaker is open."""
        now = self._clock()
        if not probe and now < self._bypass_until:
            return SKIPPED
        if self._down:
            # Half-open: this caller probes; the others keep skipping Redis meanwhile.
            self._bypass_until = now + self.retry_after
        try:
            async with asyncio.timeout(self.timeout):
                result = await command(self._current_client())
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return SKIPPED
        if self._down:
            self._down = False
            self._bypass_until = 0.0
            self._log.info("Redis is back at %s: %s", self.where, self._back)
        return result

    async def close(self) -> None:
        client, self._client, self._client_loop = self._client, None, None
        if client is not None:
            try:
                await client.aclose()
            except (RedisError, OSError, RuntimeError) as exc:
                self._log.debug("closing the Redis client: %s", exc)

    def _current_client(self) -> Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            # A client from a loop that is gone cannot be closed from this one; drop it.
            self._client = Redis.from_url(
                self._url,
                socket_connect_timeout=self.timeout,
                socket_timeout=self.timeout,
                retry=Retry(NoBackoff(), 0),  # redis-py retries 3 times by default
                decode_responses=False,
            )
            self._client_loop = loop
        return self._client

    def _failed(self, exc: BaseException) -> None:
        self._bypass_until = self._clock() + self.retry_after
        if self._down:
            return
        self._down = True
        self._log.warning(
            "Redis at %s is unavailable (%s): %s until Redis answers again (retried every %g s)",
            self.where,
            _describe(exc, self.timeout),
            self._meanwhile,
            self.retry_after,
        )
