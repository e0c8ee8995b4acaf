"""The price feed of the server process: each commit's events, fanned out to its subscribers.

Each batch is handed to every subscriber as the same tuple, so whoever renders it
(the SSE route) can render it once for all. A subscriber that falls ``max_backlog``
batches behind (a client that stopped reading) is ended rather than buffered for
ever."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence

from domain.errors import FeedClosed, TooManyStreams
from domain.events import PriceEvent

DEFAULT_MAX_BACKLOG = 1_000


class _Subscription:
    def __init__(self, feed: BroadcastFeed, max_backlog: int) -> None:
        self._feed = feed
        self._backlog: deque[tuple[PriceEvent, ...]] = deque()
        self._max_backlog = max_backlog
        self._arrived = asyncio.Event()
        self.closed_because: str | None = None

    def push(self, batch: tuple[PriceEvent, ...]) -> None:
        if len(self._backlog) >= self._max_backlog:
            self.end("the stream fell too far behind")
            return
        self._backlog.append(batch)
        self._arrived.set()

    def end(self, reason: str) -> None:
        if self.closed_because is None:
            self.closed_because = reason
            self._feed.forget(self)
            self._arrived.set()

    async def next(self, within: float) -> Sequence[PriceEvent] | None:
        if not self._backlog and self.closed_because is None:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(within):
                    await self._arrived.wait()
        if self._backlog:
            return self._backlog.popleft()
        if self.closed_because is not None:
            raise FeedClosed(self.closed_because)
        return None

    def close(self) -> None:
        self.end("closed by its subscriber")


class BroadcastFeed:
    """Implements ``domain.ports.PriceFeed``; ``publish`` is what the read model calls."""

    def __init__(self, max_subscribers: int, *, max_backlog: int = DEFAULT_MAX_BACKLOG) -> None:
        self.max_subscribers = max_subscribers
        self._max_backlog = max_backlog
        self._subscribers: set[_Subscription] = set()

    def __len__(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> _Subscription:
        if len(self._subscribers) >= self.max_subscribers:
            raise TooManyStreams(self.max_subscribers)
        subscription = _Subscription(self, self._max_backlog)
        self._subscribers.add(subscription)
        return subscription

    def publish(self, events: Sequence[PriceEvent]) -> None:
        batch = tuple(events)
        for subscription in list(self._subscribers):
            subscription.push(batch)

    def close_all(self, reason: str) -> None:
        """End every subscription (the server is stopping)."""
        for subscription in list(self._subscribers):
            subscription.end(reason)

    def forget(self, subscription: _Subscription) -> None:
        self._subscribers.discard(subscription)
