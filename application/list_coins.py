"""The coins that share a ticker: for a person choosing which one to track."""

from __future__ import annotations

from dataclasses import dataclass

from domain.model import CoinCandidate, Ticker
from domain.ports import CandidateCache, PriceSource


@dataclass(frozen=True, slots=True)
class Candidates:
    """``coins_with_symbol``'s answer; ``fresh`` when it came from CoinGecko just now
    (a cached one's prices may be minutes old)."""

    symbol: Ticker
    coins: list[CoinCandidate]
    fresh: bool


@dataclass(frozen=True, slots=True)
class FindCandidates:
    """Every coin of a ticker, from the cache when it knows, else from one CoinGecko call."""

    cache: CandidateCache
    source: PriceSource

    async def __call__(self, symbol: Ticker, currency: str) -> Candidates:
        cached = await self.cache.get_candidates(symbol, currency)
        if cached is not None:
            return Candidates(symbol, cached, fresh=False)
        coins = await self.source.coins_with_symbol(symbol, currency)
        await self.cache.set_candidates(symbol, currency, coins)
        return Candidates(symbol, coins, fresh=True)


@dataclass(frozen=True, slots=True)
class ListCoins:
    find: FindCandidates

    async def __call__(self, raw_symbol: object, currency: str) -> Candidates:
        """Every CoinGecko coin with the ticker ``raw_symbol``, priced in ``currency``
        (a configured one), best market-cap rank first, unranked last (none: an empty
        list). Raises InvalidTicker, UpstreamError."""
        return await self.find(Ticker.parse(raw_symbol), currency)
