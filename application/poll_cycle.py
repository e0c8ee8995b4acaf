"""One cycle of the poller: refresh every tracked price once (``poll_schedule`` runs
it on a schedule)."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from domain.model import PriceUpdate
from domain.ports import Clock, CryptoRepository, PriceSource
from domain.rules import PriceMoment

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PollResult:
    """``priced``: cryptos CoinGecko gave a usable price for; ``updated``: those whose
    price was newer than the stored one, and recorded."""

    tracked: int
    updated: int
    priced: int

    @property
    def skipped(self) -> int:
        """Cryptos that got no usable price (an unchanged one is not skipped)."""
        return self.tracked - self.priced


@dataclass(frozen=True, slots=True)
class PollCycle:
    cryptos: CryptoRepository
    source: PriceSource
    clock: Clock
    history_limit: int

    async def __call__(self) -> PollResult:
        """Ask for every tracked coin's price in batches and store what came back,
        stamped with CoinGecko's time of it, one history row per crypto whose price is
        newer than the stored one, in one transaction. UpstreamError propagates when
        nothing could be fetched; the caller logs it and tries next cycle."""
        tracked = await self.cryptos.tracked_coins()
        if not tracked:
            return PollResult(tracked=0, updated=0, priced=0)
        by_coin: dict[str, list[int]] = defaultdict(list)
        for coin in tracked:
            by_coin[coin.coin_id].append(coin.crypto_id)
        quotes = await self.source.prices(list(by_coin), wait=True)
        fetched_at = self.clock()
        updates = [
            PriceUpdate(
                crypto_id=crypto_id,
                prices=quote.prices,
                at=PriceMoment(quote.at, fetched_at).moment(),
            )
            for coin_id, quote in quotes.items()
            for crypto_id in by_coin.get(coin_id, ())
        ]
        updated = (
            await self.cryptos.record_prices(updates, keep=self.history_limit) if updates else set()
        )
        result = PollResult(tracked=len(tracked), updated=len(updated), priced=len(updates))
        if result.skipped:
            log.warning(
                "poll: %d of %d cryptos got no usable price this cycle",
                result.skipped,
                result.tracked,
            )
        return result
