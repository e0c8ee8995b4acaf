"""Get one tracked crypto."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import CryptoNotFound
from domain.model import Crypto, Ticker
from domain.ports import CryptoRepository


@dataclass(frozen=True, slots=True)
class GetCrypto:
    cryptos: CryptoRepository

    async def __call__(self, raw_symbol: str) -> Crypto:
        symbol = Ticker.parse(raw_symbol)
        crypto = await self.cryptos.get(symbol)
        if crypto is None:
            raise CryptoNotFound(symbol)
        return crypto
