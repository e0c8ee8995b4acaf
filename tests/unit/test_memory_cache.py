from __future__ import annotations

import pytest

from domain.model import CoinCandidate, CoinRef, Ticker
from infrastructure.cache import MemoryTickerCache
from tests.support.clock import ManualClock

BTC, ETH = Ticker("BTC"), Ticker("ETH")
BITCOIN = CoinRef("bitcoin", "Bitcoin")
ETHEREUM = CoinRef("ethereum", "Ethereum")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def test_round_trip_and_miss(clock):
    cache = MemoryTickerCache(clock=clock)
    await cache.set(BTC, BITCOIN)

    assert await cache.get(BTC) == BITCOIN
    assert await cache.get(Ticker.parse("btc")) == BITCOIN
    assert await cache.get(ETH) is None


async def test_set_overwrites(clock):
    cache = MemoryTickerCache(clock=clock)
    await cache.set(BTC, CoinRef("batcat", "Batcat"))
    await cache.set(BTC, BITCOIN)

    assert await cache.get(BTC) == BITCOIN
    assert len(cache) == 1


async def test_entries_expire_after_the_ttl_which_defaults_to_a_day(clock):
    cache = MemoryTickerCache(clock=clock)
    await cache.set(BTC, BITCOIN)

    clock.now += 24 * 3600 - 1
    assert await cache.get(BTC) == BITCOIN
    clock.now += 1
    assert await cache.get(BTC) is None
    assert len(cache) == 0


async def test_ttl_is_configurable_and_a_new_set_renews_it(clock):
    cache = MemoryTickerCache(ttl_seconds=60, clock=clock)
    await cache.set(BTC, BITCOIN)
    clock.now += 50
    await cache.set(BTC, BITCOIN)
    clock.now += 50
    assert await cache.get(BTC) == BITCOIN
    clock.now += 10
    assert await cache.get(BTC) is None


async def test_a_full_cache_drops_expired_entries_then_the_least_recently_used(clock):
    cache = MemoryTickerCache(ttl_seconds=60, max_entries=3, clock=clock)
    await cache.set(Ticker("OLD"), BITCOIN)
    clock.now += 30
    await cache.set(Ticker("A"), BITCOIN)
    await cache.set(Ticker("B"), BITCOIN)
    clock.now += 40  # OLD has expired, A and B have not
    await cache.set(Ticker("C"), BITCOIN)
    assert len(cache) == 3
    assert await cache.get(Ticker("A")) == BITCOIN  # read: B is now the least recently used

    await cache.set(Ticker("D"), ETHEREUM)  # nothing expired: B goes
    assert len(cache) == 3
    assert await cache.get(Ticker("B")) is None
    assert [await cache.get(Ticker(t)) for t in "ACD"] == [BITCOIN, BITCOIN, ETHEREUM]


BTC_COINS = [
    CoinCandidate(BITCOIN, 1, 67187.33),
    CoinCandidate(CoinRef("batcat", "batcat"), None, None),
]


async def test_the_coins_of_a_ticker_are_kept_apart_for_each_currency_for_five_minutes(clock):
    cache = MemoryTickerCache(clock=clock)
    await cache.set_candidates(BTC, "usd", BTC_COINS)
    in_eur = [CoinCandidate(BITCOIN, 1, 62148.28)]
    await cache.set_candidates(BTC, "eur", in_eur)

    assert await cache.get_candidates(BTC, "usd") == BTC_COINS
    assert await cache.get_candidates(BTC, "eur") == in_eur
    assert await cache.get_candidates(BTC, "gbp") is None
    assert await cache.get_candidates(ETH, "usd") is None
    clock.now += 5 * 60
    assert await cache.get_candidates(BTC, "usd") is None


async def test_ping_and_close(clock):
    cache = MemoryTickerCache(clock=clock)
    await cache.set(BTC, BITCOIN)
    assert await cache.ping() is True
    await cache.close()
    assert await cache.get(BTC) is None


@pytest.mark.parametrize("options", [{"ttl_seconds": 0}, {"max_entries": 0}])
def test_rejects_nonsense_settings(options):
    with pytest.raises(ValueError):
        MemoryTickerCache(**options)
