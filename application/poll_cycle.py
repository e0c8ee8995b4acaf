"""One cycle of the poller: refresh every tracked price once (``poll_schedule`` runs
it on a schedule)."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from domain.model import PriceUpdate
from domain.ports import Clock, CryptoRepository, PriceSource

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PollResult:
    tracked: int
    updated: int

    @property
    def skipped(self) -> int:
        return self.tracked - self.updated


@dataclass(frozen=True, slots=True)
class PollCycle:
    cryptos: CryptoRepository
    source: PriceSource
    clock: Clock
    history_limit: int

    async def __call__(self) -> PollResult:
        """Ask for every tracked coin's price in batches and store what came back,
        one history row per crypto, in one transaction. UpstreamError propagates
        when nothing could be fetched; the caller logs it and tries next cycle."""
        tracked = await self.cryptos.tracked_coins()
        if not tracked:
            return PollResult(tracked=0, updated=0)
        by_coin: dict[str, list[int]] = defaultdict(list)
        for coin in tracked:
            by_coin[coin.coin_id].append(coin.crypto_id)
        prices = await self.source.prices(list(by_coin), wait=True)
        at = self.clock()
        updates = [
            PriceUpdate(crypto_id=crypto_id, price=price, at=at)
            for coin_id, price in prices.items()
            for crypto_id in by_coin.get(coin_id, ())
        ]
        updated = (
            await self.cryptos.record_prices(updates, keep=self.history_limit) if updates else set()
        )
        result = PollResult(tracked=len(tracked), updated=len(updated))
        if result.skipped:
            log.warning(
                "poll: %d of %d cryptos got no usable price this cycle",
                result.skipped,
                result.tracked,
            )
        return result
