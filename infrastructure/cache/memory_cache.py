"""An in-process ticker cache (and the coins of each ticker), standing in for Redis
when REDIS_URL is not set."""

from __future__ import annotations

import time
from collections.abc import Callable

from cachetools import TTLCache

from domain.model import CoinCandidate, CoinRef, Ticker
from infrastructure.metrics import observe_cache_lookup

DEFAULT_TTL_SECONDS = 24 * 60 * 60
DEFAULT_MAX_ENTRIES = 10_000
# The coins of a ticker carry prices, which a picker may show a few minutes old (an add
# asks for a fresh price): long enough to spare CoinGecko the calls of a person who
# looks, then chooses.
CANDIDATES_TTL_SECONDS = 5 * 60


class MemoryTickerCache:
    """Ticker to CoinRef, each entry kept ``ttl_seconds`` after it was set.

    Per process. Bounded by ``max_entries``; when full, expired entries go first,
    then the least recently used. The coins of each ticker (CandidateCache) are kept
    alike, ``candidates_ttl_seconds``, apart for each currency they are priced in.
    """

    def __init__(
        self,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        candidates_ttl_seconds: float = CANDIDATES_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds <= 0 or candidates_ttl_seconds <= 0:
            raise ValueError("ttl_seconds and candidates_ttl_seconds must be positive")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._entries: TTLCache[str, CoinRef] = TTLCache(max_entries, ttl_seconds, timer=clock)
        self._candidates: TTLCache[tuple[str, str], list[CoinCandidate]] = TTLCache(
            max_entries, candidates_ttl_seconds, timer=clock
        )

    async def get(self, symbol: Ticker) -> CoinRef | None:
        ref = self._entries.get(symbol.value)
        observe_cache_lookup("memory", hit=ref is not None)
        return ref

    async def set(self, symbol: Ticker, ref: CoinRef) -> None:
        self._entries[symbol.value] = ref

    async def get_candidates(self, symbol: Ticker, currency: str) -> list[CoinCandidate] | None:
        found = self._candidates.get((symbol.value, currency))
        return None if found is None else list(found)

    async def set_candidates(
        self, symbol: Ticker, currency: str, candidates: list[CoinCandidate]
    ) -> None:
        self._candidates[symbol.value, currency] = list(candidates)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._entries.clear()
        self._candidates.clear()

    def __len__(self) -> int:
        return len(self._entries)
