"""An in-process ticker cache, standing in for Redis when REDIS_URL is not set."""

from __future__ import annotations

import time
from collections.abc import Callable

from domain.model import CoinRef, Ticker
from infrastructure.metrics import observe_cache_lookup

DEFAULT_TTL_SECONDS = 24 * 60 * 60
DEFAULT_MAX_ENTRIES = 10_000


class MemoryTickerCache:
    """Ticker to CoinRef in a dict, each entry kept ``ttl_seconds``.

    Per process: with several workers each one has its own. Bounded by
    ``max_entries``; when full, expired entries go first, then the oldest.
    """

    def __init__(
        self,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[CoinRef, float]] = {}

    async def get(self, symbol: Ticker) -> CoinRef | None:
        ref = self._lookup(symbol.value)
        observe_cache_lookup("memory", hit=ref is not None)
        return ref

    def _lookup(self, key: str) -> CoinRef | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        ref, expires_at = entry
        if self._clock() >= expires_at:
            del self._entries[key]
            return None
        return ref

    async def set(self, symbol: Ticker, ref: CoinRef) -> None:
        key = symbol.value
        self._entries.pop(key, None)  # re-inserted last: the dict stays in insertion order
        if len(self._entries) >= self._max_entries:
            self._make_room()
        self._entries[key] = (ref, self._clock() + self._ttl)

    def _make_room(self) -> None:
        now = self._clock()
        for key in [k for k, (_, expires_at) in self._entries.items() if now >= expires_at]:
            del self._entries[key]
        while len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
