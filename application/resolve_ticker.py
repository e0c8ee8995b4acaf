"""Ticker to CoinGecko coin: from the cache when it knows, else from CoinGecko."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import UnknownTicker
from domain.model import CoinMatch, Ticker
from domain.ports import PriceSource, TickerCache


@dataclass(frozen=True, slots=True)
class ResolveTicker:
    cache: TickerCache
    source: PriceSource

    async def __call__(self, symbol: Ticker) -> CoinMatch:
        """The coin users mean by ``symbol``. A cached mapping carries no price."""
        ref = await self.cache.get(symbol)
        if ref is not None:
            return CoinMatch(ref=ref, prices={})
        match = await self.source.find_coin(symbol)
        if match is None:
            raise UnknownTicker(f"CoinGecko lists no coin with the symbol {symbol}")
        await self.cache.set(symbol, match.ref)
        return match
