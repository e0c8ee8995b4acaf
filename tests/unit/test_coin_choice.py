"""Choosing the coin behind a shared ticker: ListCoins and AddCrypto's coin_id."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from application.add_crypto import AddCrypto
from application.list_coins import FindCandidates, ListCoins
from application.resolve_ticker import ResolveTicker
from domain.errors import InvalidInput, InvalidTicker, UnknownCoin
from domain.model import (
    CoinCandidate,
    CoinMatch,
    CoinRef,
    Quote,
    QuoteCurrencies,
    Ticker,
    best_rank_first,
)
from tests.unit.fakes import DictTickerCache, FakeClock, FakePriceSource, InMemoryCryptoRepository

USD = QuoteCurrencies.parse("usd")
UNISWAP = CoinCandidate(CoinRef("uniswap", "Uniswap"), 22, 7.42)
WORMHOLE = CoinCandidate(CoinRef("uniswap-wormhole", "Uniswap (Wormhole)"), 3410, 7.39)
UNICORN = CoinCandidate(CoinRef("unicorn-token", "Unicorn Token"), None, 0.0000412)


@pytest.fixture
def world():
    class World:
        repo = InMemoryCryptoRepository()
        source = FakePriceSource(
            coins={"UNI": CoinMatch(UNISWAP.ref, {"usd": 7.42})},
            quotes={
                "uniswap-wormhole": Quote({"usd": 7.5}, None),
                "unicorn-token": Quote({"usd": 0.00005}, None),
            },
            candidates={"UNI": [UNISWAP, WORMHOLE, UNICORN]},
        )
        cache = DictTickerCache()
        clock = FakeClock()

    w = World()
    find = FindCandidates(w.cache, w.source)
    w.list = ListCoins(find)
    w.add = AddCrypto(w.repo, ResolveTicker(w.cache, w.source), find, w.source, w.clock, USD)
    return w


def test_best_rank_first_puts_the_unranked_last_and_keeps_ties_in_order():
    tied = CoinCandidate(CoinRef("uni-2", "Uni 2"), 22, 1.0)
    other = CoinCandidate(CoinRef("uni-ai", "UNI AI"), None, 0.0031)
    ordered = best_rank_first([UNICORN, WORMHOLE, UNISWAP, other, tied])
    assert ordered == [UNISWAP, tied, WORMHOLE, UNICORN, other]


async def test_list_coins_asks_once_then_answers_from_the_cache(world):
    first = await world.list("uni", "usd")
    assert (first.symbol, first.coins, first.fresh) == (
        Ticker("UNI"),
        [UNISWAP, WORMHOLE, UNICORN],
        True,
    )
    again = await world.list("UNI", "usd")
    assert (again.coins, again.fresh) == (first.coins, False)
    assert world.source.candidate_calls == [("UNI", "usd")]


async def test_list_coins_refuses_a_bad_ticker_without_asking(world):
    with pytest.raises(InvalidTicker):
        await world.list("u-n-i", "usd")
    assert world.source.candidate_calls == []


async def test_add_a_chosen_coin_with_the_price_of_the_fresh_list(world):
    crypto = await world.add("uni", "uniswap-wormhole")
    assert (crypto.symbol, crypto.coin_id, crypto.name, crypto.price_in("usd")) == (
        Ticker("UNI"),
        "uniswap-wormhole",
        "Uniswap (Wormhole)",
        7.39,
    )
    assert world.source.price_calls == []
    assert world.source.find_calls == []  # the best-ranked coin is not looked up
    assert "UNI" not in world.cache.refs  # nor cached as what UNI means


async def test_a_chosen_coin_is_stamped_with_coingeckos_time_of_its_price(world):
    told = datetime(2024, 1, 1, 11, 59, 31, 736000, tzinfo=UTC)  # before the fake clock's now
    world.source.candidates["UNI"] = [UNISWAP, replace(WORMHOLE, price_at=told)]
    crypto = await world.add("UNI", "uniswap-wormhole")
    assert crypto.last_updated == datetime(2024, 1, 1, 11, 59, 31, tzinfo=UTC)


async def test_add_a_chosen_coin_from_a_cached_list_asks_a_fresh_price(world):
    await world.list("UNI", "usd")
    crypto = await world.add("UNI", "unicorn-token")
    assert (crypto.coin_id, crypto.price_in("usd")) == ("unicorn-token", 0.00005)
    assert world.source.candidate_calls == [("UNI", "usd")]
    assert world.source.price_calls == [(["unicorn-token"], False)]


@pytest.mark.parametrize("coin_id", ["bitcoin", "Uniswap", "uniswap "])
async def test_add_refuses_a_coin_that_has_not_the_ticker(world, coin_id):
    with pytest.raises(UnknownCoin, match=f"no coin '{coin_id}' with the symbol UNI"):
        await world.add("UNI", coin_id)
    assert await world.repo.list() == []


async def test_add_refuses_an_overlong_coin_id_without_asking(world):
    with pytest.raises(InvalidInput, match="at most 255"):
        await world.add("UNI", "u" * 256)
    assert world.source.candidate_calls == []
