"""A crypto's stored price history."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import CryptoNotFound
from domain.model import PricePoint, Ticker
from domain.ports import CryptoRepository


@dataclass(frozen=True, slots=True)
class PriceHistory:
    cryptos: CryptoRepository
    history_limit: int

    async def __call__(self, raw_symbol: str, currency: str) -> tuple[Ticker, list[PricePoint]]:
        """The prices in ``currency`` (a configured one, ``QuoteCurrencies.choose``'s)."""
        symbol = Ticker.parse(raw_symbol)
        points = await self.cryptos.history(symbol, self.history_limit, currency)
        if points is None:
            raise CryptoNotFound(symbol)
        return symbol, points
