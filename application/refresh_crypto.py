"""Fetch a fresh price for one crypto now."""

from __future__ import annotations

from dataclasses import dataclass, replace

from domain.errors import CryptoNotFound, UpstreamError
from domain.model import Crypto, PriceUpdate, Ticker
from domain.ports import Clock, CryptoRepository, PriceSource
from domain.rules import OnlyNewerPricesAreRecorded, PriceMoment


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
        quote = (await self.source.prices([crypto.coin_id])).get(crypto.coin_id)
        if quote is None:
            raise UpstreamError(
                f"CoinGecko has no usable price for {symbol} ({crypto.coin_id}) right now; "
                "the stored price is unchanged"
            )
        at = PriceMoment(quote.at, self.clock()).moment()
        if OnlyNewerPricesAreRecorded(crypto.last_updated, at).is_broken():
            return crypto  # nothing newer than what is stored: nothing to write
        update = PriceUpdate(crypto_id=crypto.id, prices=quote.prices, at=at)
        if crypto.id in await self.cryptos.record_prices([update], keep=self.history_limit):
            return replace(crypto, prices=quote.prices, last_updated=at)
        # A newer price got in first (a poll), or the crypto was deleted meanwhile.
        stored = await self.cryptos.get(symbol)
        if stored is None:
            raise CryptoNotFound(symbol)
        return stored
