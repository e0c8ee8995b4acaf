"""Fetch a fresh price for one crypto now."""

from __future__ import annotations

from dataclasses import dataclass, replace

from domain.errors import CryptoNotFound, UpstreamError
from domain.model import Crypto, PriceUpdate, Ticker
from domain.ports import Clock, CryptoRepository, PriceSource


@dataclass(frozen=True, slots=True)
class RefreshCrypto:
    cryptos: CryptoRepository
    source: PriceSource
    clock: Clock
    history_limit: int

    async def __call__(self, raw_symbol: str) -> Crypto:
        symbol = Ticker.parse(raw_symbol)
        crypto = await self.cryptos.get(symbol)
        if crypto is None or crypto.id is None:
            raise CryptoNotFound(symbol)
        price = (await self.source.prices([crypto.coin_id])).get(crypto.coin_id)
        if price is None:
            raise UpstreamError(
                f"CoinGecko has no usable price for {symbol} ({crypto.coin_id}) right now; "
                "the stored price is unchanged"
            )
        update = PriceUpdate(crypto_id=crypto.id, price=price, at=self.clock())
        if crypto.id not in await self.cryptos.record_prices([update], keep=self.history_limit):
            raise CryptoNotFound(symbol)  # deleted while we asked CoinGecko
        return replace(crypto, current_price=price, last_updated=update.at)
