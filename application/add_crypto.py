"""Start tracking a crypto by its ticker."""

from __future__ import annotations

from dataclasses import dataclass

from application.resolve_ticker import ResolveTicker
from domain.errors import CryptoAlreadyTracked, UpstreamError
from domain.model import Crypto, Ticker
from domain.ports import Clock, CryptoRepository, PriceSource


@dataclass(frozen=True, slots=True)
class AddCrypto:
    cryptos: CryptoRepository
    resolve: ResolveTicker
    source: PriceSource
    clock: Clock

    async def __call__(self, raw_symbol: object) -> Crypto:
        symbol = Ticker.parse(raw_symbol)
        if await self.cryptos.get(symbol) is not None:
            raise CryptoAlreadyTracked(symbol)  # spare CoinGecko a call; add() settles races
        match = await self.resolve(symbol)
        price = match.price
        if price is None:
            price = (await self.source.prices([match.ref.coin_id])).get(match.ref.coin_id)
        if price is None:
            raise UpstreamError(
                f"CoinGecko has no usable price for {symbol} ({match.ref.coin_id}) right now; "
                "nothing was stored, try again later"
            )
        crypto = Crypto(
            symbol=symbol,
            coin_id=match.ref.coin_id,
            name=match.ref.name,
            current_price=price,
            last_updated=self.clock(),
        )
        return await self.cryptos.add(crypto)
