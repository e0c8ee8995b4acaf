"""The ticker cache (and the coins of each ticker) on Redis. Redis is only a cache:
when it fails, lookups read as misses.

Failure handling (infrastructure.redis_guard.RedisGuard), in short:

* every command is bounded by ``timeout_seconds`` (0.5 s), so one cache call never
  costs a request more than ~0.5 s;
* a circuit breaker: after a failure the cache is bypassed (get answers None, set does
  nothing) for ``retry_after_seconds`` (5 s). Without it, a Redis that hangs instead of
  refusing connections would cost *every* request the full timeout, twice (get, then
  set). When the pause is over, one caller probes Redis while the others keep
  bypassing it; a success closes the breaker, a failure starts another pause;
* one WARNING when an outage starts and one INFO "Redis is back" when it ends, not a
  line per call; the same client reconnects by itself, no restart needed;
* a command Redis refuses (wrong type, read-only...) is a miss, logged, and no outage;
* a value that is not the JSON this module writes is a miss (logged).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.exceptions import ResponseError

from domain.model import CoinCandidate, CoinRef, Ticker, valid_price
from infrastructure.cache.memory_cache import CANDIDATES_TTL_SECONDS, DEFAULT_TTL_SECONDS
from infrastructure.metrics import observe_cache_lookup
from infrastructure.redis_guard import (
    DEFAULT_RETRY_AFTER_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    RedisGuard,
    Skipped,
)

log = logging.getLogger(__name__)

DEFAULT_KEY_PREFIX = "cps:ticker:"
T = TypeVar("T")


def encode_ref(ref: CoinRef) -> str:
    return json.dumps({"coin_id": ref.coin_id, "name": ref.name}, separators=(",", ":"))


def decode_ref(raw: bytes | str) -> CoinRef | None:
    """The CoinRef in a cached value, or None when the value is not one."""
    try:
        data = json.loads(raw)
    except ValueError:  # also UnicodeDecodeError
        return None
    return _ref_of(data)


def _ref_of(data: object) -> CoinRef | None:
    if not isinstance(data, dict):
        return None
    coin_id, name = data.get("coin_id"), data.get("name")
    if not isinstance(coin_id, str) or not coin_id or not isinstance(name, str) or not name:
        return None
    return CoinRef(coin_id=coin_id, name=name)


def encode_candidates(candidates: list[CoinCandidate]) -> str:
    return json.dumps(
        [
            {
                "coin_id": c.ref.coin_id,
                "name": c.ref.name,
                "market_cap_rank": c.market_cap_rank,
                "current_price": c.current_price,
            }
            for c in candidates
        ],
        separators=(",", ":"),
    )


def decode_candidates(raw: bytes | str) -> list[CoinCandidate] | None:
    """The candidates in a cached value, or None when the value is not a list of them."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, list):
        return None
    found: list[CoinCandidate] = []
    for item in data:
        ref = _ref_of(item)
        if ref is None or not isinstance(item, dict):
            return None
        rank, price = item.get("market_cap_rank"), item.get("current_price")
        if rank is not None and (type(rank) is not int or rank < 1):
            return None
        if price is not None and valid_price(price) is None:
            return None
        found.append(CoinCandidate(ref=ref, market_cap_rank=rank, current_price=price))
    return found


class RedisTickerCache:
    """Implements domain.ports.TickerCache on Redis (redis.asyncio).

    Keys are ``key_prefix + ticker`` (``cps:ticker:BTC``), values
    ``{"coin_id": "bitcoin", "name": "Bitcoin"}``, kept ``ttl_seconds``. The coins of
    a ticker (CandidateCache), priced in a currency, are at ``cps:ticker:BTC:coins:eur``
    (no ticker holds a colon), a JSON list of ``{"coin_id", "name", "market_cap_rank",
    "current_price"}``, kept ``candidates_ttl_seconds``.

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
        candidates_ttl_seconds: int = CANDIDATES_TTL_SECONDS,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        retry_after_seconds: float = DEFAULT_RETRY_AFTER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds < 1 or candidates_ttl_seconds < 1:
            raise ValueError("ttl_seconds and candidates_ttl_seconds must be at least 1")
        self._redis = RedisGuard(
            url,
            logger=log,
            meanwhile="the ticker cache is bypassed and lookups go to CoinGecko",
            back="the ticker cache is in use again",
            timeout_seconds=timeout_seconds,
            retry_after_seconds=retry_after_seconds,
            clock=clock,
        )
        self._prefix = key_prefix
        self._ttl = int(ttl_seconds)
        self._candidates_ttl = int(candidates_ttl_seconds)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisTickerCache:
        return cls(url, **options)

    @property
    def available(self) -> bool:
        """False from the moment a call fails until one succeeds again."""
        return self._redis.available

    def key(self, symbol: Ticker) -> str:
        return f"{self._prefix}{symbol.value}"

    async def get(self, symbol: Ticker) -> CoinRef | None:
        ref = await self._lookup(self.key(symbol))
        observe_cache_lookup("redis", hit=ref is not None)
        return ref

    async def _lookup(self, key: str) -> CoinRef | None:
        return await self._read(key, decode_ref)

    async def _read(self, key: str, decode: Callable[[bytes | str], T | None]) -> T | None:
        raw = await self._redis.run(lambda client: self._unless_refused(client.get(key)))
        if raw is None or isinstance(raw, Skipped):
            return None
        value = decode(raw)
        if value is None:
            log.warning("ignoring a malformed ticker cache entry at %s: %.80r", key, raw)
        return value

    async def _write(self, key: str, value: str, ttl: int) -> None:
        await self._redis.run(lambda client: self._unless_refused(client.set(key, value, ex=ttl)))

    async def set(self, symbol: Ticker, ref: CoinRef) -> None:
        await self._write(self.key(symbol), encode_ref(ref), self._ttl)

    def candidates_key(self, symbol: Ticker, currency: str) -> str:
        return f"{self.key(symbol)}:coins:{currency}"

    async def get_candidates(self, symbol: Ticker, currency: str) -> list[CoinCandidate] | None:
        return await self._read(self.candidates_key(symbol, currency), decode_candidates)

    async def set_candidates(
        self, symbol: Ticker, currency: str, candidates: list[CoinCandidate]
    ) -> None:
        value = encode_candidates(candidates)
        await self._write(self.candidates_key(symbol, currency), value, self._candidates_ttl)

    async def ping(self) -> bool:
        """Whether Redis answers now. Ignores the breaker's pause, within the same timeout."""
        answer = await self._redis.run(
            lambda client: self._unless_refused(client.ping()), probe=True
        )
        return answer is True

    async def close(self) -> None:
        await self._redis.close()

    async def _unless_refused(self, reply: Awaitable[T]) -> T | None:
        """The reply, or None when Redis refused the command (wrong type, read-only,
        ACL...): Redis answered, so that is a miss, logged, not an outage."""
        try:
            return await reply
        except ResponseError as exc:
            log.warning("Redis at %s refused a ticker cache command: %s", self._redis.where, exc)
            return None
