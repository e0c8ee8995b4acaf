"""Get one tracked crypto."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import CryptoNotFound
from domain.model import Crypto, Ticker
from domain.ports import CryptoRepository


def not_tracked(symbol: Ticker) -> CryptoNotFound:
    return CryptoNotFound(f"crypto {symbol} is not tracked")


@dataclass(frozen=True, slots=True)
class GetCrypto:
    cryptos: CryptoRepository

    async def __call__(self, raw_symbol: str) -> Crypto:
        symbol = Ticker.parse(raw_symbol)
        crypto = await self.cryptos.get(symbol)
        if crypto is None:
            raise not_tracked(symbol)
        return crypto
