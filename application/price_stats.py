"""Statistics over a crypto's stored price history."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import CryptoNotFound
from domain.model import PriceStats, Ticker
from domain.ports import CryptoRepository


@dataclass(frozen=True, slots=True)
class PriceStatistics:
    cryptos: CryptoRepository
    history_limit: int  # over the history GET /crypto/{symbol}/history shows

    async def __call__(self, raw_symbol: str, currency: str) -> tuple[Ticker, PriceStats]:
        """Over the prices in ``currency`` (a configured one, ``QuoteCurrencies.choose``'s)."""
        symbol = Ticker.parse(raw_symbol)
        stats = await self.cryptos.stats(symbol, self.history_limit, currency)
        if stats is None:
            raise CryptoNotFound(symbol)
        return symbol, stats
