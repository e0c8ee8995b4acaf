"""Watch the tracked set live: its state now, then every change as it commits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from domain.events import UpstreamState
from domain.model import Crypto
from domain.ports import CryptoRepository, PriceFeed, Subscription


@dataclass(frozen=True, slots=True)
class WatchPrices:
    cryptos: CryptoRepository
    feed: PriceFeed
    upstream: Callable[[], UpstreamState | None] = lambda: None

    async def __call__(self) -> tuple[list[Crypto], UpstreamState | None, Subscription]:
        """The snapshot, how the poller fares upstream (None: not known here yet) and
        the subscription to what follows them. Subscribed before the snapshot is read,
        so a change committed in between is never missed (it may come again after a
        snapshot that shows it already). Raises TooManyStreams."""
        subscription = self.feed.subscribe()
        try:
            return await self.cryptos.list(), self.upstream(), subscription
        except BaseException:
            subscription.close()
            raise
