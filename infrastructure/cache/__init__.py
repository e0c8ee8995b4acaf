"""Ticker to CoinGecko id caches: Redis when REDIS_URL is set, process memory otherwise."""

from __future__ import annotations

from typing import Protocol

from domain.ports import CandidateCache, TickerCache
from infrastructure.cache.memory_cache import MemoryTickerCache
from infrastructure.cache.redis_cache import (
    DEFAULT_KEY_PREFIX,
    DEFAULT_TTL_SECONDS,
    RedisTickerCache,
)

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "DEFAULT_TTL_SECONDS",
    "ManagedTickerCache",
    "MemoryTickerCache",
    "RedisTickerCache",
]


class ManagedTickerCache(TickerCache, CandidateCache, Protocol):
    """A ticker cache the app owns (which keeps the coins of each ticker too): it
    reports its health and is closed on shutdown."""

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...
