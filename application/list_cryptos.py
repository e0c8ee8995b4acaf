"""List every tracked crypto."""

from __future__ import annotations

from dataclasses import dataclass

from domain.model import Crypto
from domain.ports import CryptoRepository


@dataclass(frozen=True, slots=True)
class ListCryptos:
    cryptos: CryptoRepository

    async def __call__(self) -> list[Crypto]:
        return await self.cryptos.list()
