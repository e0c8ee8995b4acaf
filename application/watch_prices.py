"""Watch the tracked set live: its state now, then every change as it commits."""

from __future__ import annotations

from dataclasses import dataclass

from domain.model import Crypto
from domain.ports import CryptoRepository, PriceFeed, Subscription


@dataclass(frozen=True, slots=True)
class WatchPrices:
    cryptos: CryptoRepository
    feed: PriceFeed

    async def __call__(self) -> tuple[list[Crypto], Subscription]:
        """The snapshot and the subscription to what follows it. Subscribed before the
        snapshot is read, so a change committed in between is never missed (it may
        come again after a snapshot that shows it already). Raises TooManyStreams."""
        subscription = self.feed.subscribe()
        try:
            return await self.cryptos.list(), subscription
        except BaseException:
            subscription.close()
            raise
