"""Start tracking a crypto by its ticker, and the coin of that ticker the person chose."""

from __future__ import annotations

from dataclasses import dataclass

from application.list_coins import FindCandidates
from application.resolve_ticker import ResolveTicker
from domain.errors import CryptoAlreadyTracked, InvalidInput, UnknownCoin, UpstreamError
from domain.model import CoinMatch, Crypto, QuoteCurrencies, Ticker
from domain.ports import Clock, CryptoRepository, PriceSource
from domain.rules import PriceMoment

MAX_COIN_ID_LENGTH = 255  # the stored column's; CoinGecko's ids are far shorter


@dataclass(frozen=True, slots=True)
class AddCrypto:
    cryptos: CryptoRepository
    resolve: ResolveTicker
    candidates: FindCandidates
    source: PriceSource
    clock: Clock
    currencies: QuoteCurrencies

    async def __call__(self, raw_symbol: object, coin_id: str | None = None) -> Crypto:
        """Track ``coin_id`` under ``raw_symbol``; without it, the ticker's best-ranked coin."""
        symbol = Ticker.parse(raw_symbol)
        if await self.cryptos.get(symbol) is not None:
            raise CryptoAlreadyTracked(symbol)  # spare CoinGecko a call; add() settles races
        if coin_id is None:
            match = await self.resolve(symbol)
        else:
            match = await self._chosen(symbol, coin_id)
        prices, at = match.prices, match.at
        if not self.currencies.covered_by(prices):
            # /coins/markets quotes one currency: /simple/price gives them all at once
            quote = (await self.source.prices([match.ref.coin_id])).get(match.ref.coin_id)
            if quote is not None:
                prices, at = quote.prices, quote.at
        if not prices:
            raise UpstreamError(
                f"CoinGecko has no usable price for {symbol} ({match.ref.coin_id}) right now; "
                "nothing was stored, try again later"
            )
        crypto = Crypto(
            symbol=symbol,
            coin_id=match.ref.coin_id,
            name=match.ref.name,
            prices=prices,
            last_updated=PriceMoment(at, self.clock()).moment(),
        )
        return await self.cryptos.add(crypto)

    async def _chosen(self, symbol: Ticker, coin_id: str) -> CoinMatch:
        """The coin ``coin_id`` when CoinGecko lists it under ``symbol``."""
        if len(coin_id) > MAX_COIN_ID_LENGTH:
            raise InvalidInput(f"coin_id must be at most {MAX_COIN_ID_LENGTH} characters")
        found = await self.candidates(symbol, self.currencies.default)
        coin = next((c for c in found.coins if c.ref.coin_id == coin_id), None)
        if coin is None:
            raise UnknownCoin(
                f"CoinGecko lists no coin {coin_id!r} with the symbol {symbol} "
                f"(GET /coins?symbol={symbol} lists those it has)"
            )
        # a cached list's price may be minutes old: then a fresh one is asked for
        if not found.fresh or coin.current_price is None:
            return CoinMatch(ref=coin.ref, prices={})
        return CoinMatch(
            ref=coin.ref, prices={self.currencies.default: coin.current_price}, at=coin.price_at
        )
