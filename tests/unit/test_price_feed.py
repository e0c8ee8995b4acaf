"""The per-worker price feed: fan-out, its limit, slow subscribers, shutdown."""

from __future__ import annotations

import pytest

from domain.errors import FeedClosed, TooManyStreams
from domain.events import CryptoRemoved
from domain.model import Ticker
from infrastructure.read_model.feed import BroadcastFeed

GONE = (CryptoRemoved(Ticker("BTC")),)


async def test_every_subscriber_gets_each_batch_as_the_same_object():
    feed = BroadcastFeed(10)
    first, second = feed.subscribe(), feed.subscribe()
    feed.publish(list(GONE))
    one, two = await first.next(within=1), await second.next(within=1)
    assert one == GONE and one is two


async def test_a_quiet_feed_answers_none_after_the_wait():
    feed = BroadcastFeed(10)
    assert await feed.subscribe().next(within=0.01) is None


async def test_past_the_limit_subscribing_is_refused_until_one_closes():
    feed = BroadcastFeed(2)
    first, _ = feed.subscribe(), feed.subscribe()
    with pytest.raises(TooManyStreams):
        feed.subscribe()
    first.close()
    feed.subscribe()
    assert len(feed) == 2


async def test_a_subscriber_too_far_behind_is_ended_after_what_it_has():
    feed = BroadcastFeed(10, max_backlog=2)
    slow = feed.subscribe()
    for _ in range(3):
        feed.publish(GONE)
    assert await slow.next(within=1) == GONE
    assert await slow.next(within=1) == GONE
    with pytest.raises(FeedClosed, match="fell too far behind"):
        await slow.next(within=1)
    assert len(feed) == 0


async def test_close_all_ends_every_subscription():
    feed = BroadcastFeed(10)
    subscription = feed.subscribe()
    feed.close_all("the server is stopping")
    with pytest.raises(FeedClosed, match="stopping"):
        await subscription.next(within=5)
