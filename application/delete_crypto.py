"""Stop tracking a crypto; its history goes with it."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import CryptoNotFound
from domain.model import Ticker
from domain.ports import CryptoRepository


@dataclass(frozen=True, slots=True)
class DeleteCrypto:
    cryptos: CryptoRepository

    async def __call__(self, raw_symbol: str) -> Ticker:
        """The ticker deleted (``btc`` deletes ``BTC``)."""
        symbol = Ticker.parse(raw_symbol)
        if not await self.cryptos.delete(symbol):
            raise CryptoNotFound(symbol)
        return symbol
