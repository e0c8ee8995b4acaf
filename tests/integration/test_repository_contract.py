"""The storage ports' contract: every case runs against the in-memory fakes the use
case tests rely on (tests/unit/fakes.py) and against the PostgreSQL repositories, so
the fakes cannot drift from the rules the real ones keep. What only PostgreSQL can
show (races, locks, statement counts, lost connections) is in test_repositories.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from domain.errors import CryptoAlreadyTracked, UsernameTaken
from domain.model import PricePoint, PriceUpdate, QuoteCurrencies, Ticker, TrackedCoin
from domain.ports import CryptoRepository, UserRepository
from infrastructure.db.repositories import (
    TortoiseCryptoRepository,
    TortoiseUserRepository,
    notify_change,
)
from infrastructure.read_model.repository import ReadModelCryptoRepository
from tests.support.cryptos import T0, at, crypto
from tests.support.database import tortoise_session, truncate_tables
from tests.support.read_models import live_read_model
from tests.unit.fakes import InMemoryCryptoRepository, InMemoryUserRepository

KEEP = 100
BTC, ETH = Ticker("BTC"), Ticker("ETH")
USD, EUR, GBP = "usd", "eur", "gbp"
# What the read model is configured with (the database stores whatever it is given).
CURRENCIES = QuoteCurrencies((USD, EUR))


@dataclass
class Store:
    cryptos: CryptoRepository
    users: UserRepository


@pytest.fixture(
    params=[
        pytest.param("memory"),
        pytest.param("postgres", marks=pytest.mark.integration),
        pytest.param("read model", marks=pytest.mark.integration),
    ]
)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield Store(InMemoryCryptoRepository(), InMemoryUserRepository())
        return
    # What the db fixture does (an async fixture cannot be asked for from here).
    url = request.getfixturevalue("database_url")
    await truncate_tables(url)
    async with tortoise_session(url), backend(request.param, url) as found:
        yield found
    await truncate_tables(url)


@asynccontextmanager
async def backend(kind: str, url: str) -> AsyncIterator[Store]:
    if kind == "postgres":
        yield Store(TortoiseCryptoRepository(), TortoiseUserRepository())
        return
    # Reads from a process's read model: each write returns once the model has it.
    async with live_read_model(url, KEEP, CURRENCIES, notify=notify_change) as model:
        repository = ReadModelCryptoRepository(TortoiseCryptoRepository(), model)
        yield Store(repository, TortoiseUserRepository())
        assert model.live, "the read model went down during the test: reads were not its"


async def track(store: Store, symbol: str, price: float = 100.0) -> int:
    """Add a crypto (its first price at T0); return its id."""
    stored = await store.cryptos.add(crypto(symbol, price))
    assert stored.id is not None
    return stored.id


async def history(
    store: Store, symbol: Ticker = BTC, currency: str = USD
) -> list[tuple[float, datetime]]:
    points = await store.cryptos.history(symbol, KEEP, currency)
    assert points is not None
    return [(p.price, p.timestamp) for p in points]


async def current(
    store: Store, symbol: Ticker = BTC, currency: str = USD
) -> tuple[float | None, datetime]:
    found = await store.cryptos.get(symbol)
    assert found is not None
    return found.price_in(currency), found.last_updated


async def record(store: Store, *updates: PriceUpdate, keep: int = KEEP) -> set[int]:
    return await store.cryptos.record_prices(list(updates), keep=keep)


# --- add, get, list, tracked_coins ----------------------------------------------------


async def test_nothing_is_tracked_at_first(store: Store) -> None:
    assert await store.cryptos.list() == []
    assert await store.cryptos.tracked_coins() == []
    assert await store.cryptos.get(BTC) is None


async def test_add_stores_the_crypto_and_its_first_price(store: Store) -> None:
    stored = await store.cryptos.add(crypto("BTC", 45000.5))

    assert stored.id is not None
    assert stored == replace(crypto("BTC", 45000.5), id=stored.id)
    fetched = await store.cryptos.get(BTC)
    assert fetched == stored
    assert fetched is not None and fetched.last_updated.utcoffset() == timedelta(0)
    assert await current(store) == (45000.5, T0)
    assert await history(store) == [(45000.5, T0)]


async def test_adding_a_tracked_symbol_raises_and_changes_nothing(store: Store) -> None:
    first = await store.cryptos.add(crypto("ETH", 2000.0))
    with pytest.raises(CryptoAlreadyTracked, match="ETH"):
        await store.cryptos.add(crypto("ETH", 9999.0, at(5)))

    assert await store.cryptos.list() == [first]
    assert await history(store, ETH) == [(2000.0, T0)]


async def test_list_is_ordered_by_symbol_and_tracked_coins_by_id(store: Store) -> None:
    for symbol in ("SOL", "ADA", "BTC"):
        await store.cryptos.add(crypto(symbol))

    listed = await store.cryptos.list()
    assert [c.symbol.value for c in listed] == ["ADA", "BTC", "SOL"]
    ids = {c.symbol.value: c.id or 0 for c in listed}
    assert await store.cryptos.tracked_coins() == [
        TrackedCoin(crypto_id=ids[symbol], coin_id=f"{symbol.lower()}-coin")
        for symbol in ("SOL", "ADA", "BTC")  # the order they were added in
    ]


# --- record_prices ---------------------------------------------------------------------


async def test_a_new_price_becomes_current_and_joins_the_history(store: Store) -> None:
    btc = await track(store, "BTC", 100.0)
    eth = await track(store, "ETH", 10.0)

    assert await record(store, PriceUpdate(btc, {"usd": 101.5}, at(30))) == {btc}

    assert await current(store) == (101.5, at(30))
    assert await history(store) == [(100.0, T0), (101.5, at(30))]
    assert await current(store, ETH) == (10.0, T0)
    assert await history(store, ETH) == [(10.0, T0)]
    assert eth not in await record(store)


async def test_an_older_price_stores_nothing(store: Store) -> None:
    btc = await track(store, "BTC", 100.0)
    await record(store, PriceUpdate(btc, {"usd": 120.0}, at(20)))

    # A slower batch with an older price: neither the current price nor history.
    assert await record(store, PriceUpdate(btc, {"usd": 110.0}, at(10))) == set()

    assert await current(store) == (120.0, at(20))
    assert await history(store) == [(100.0, T0), (120.0, at(20))]


async def test_a_price_of_the_same_moment_stores_nothing(store: Store) -> None:
    # No two history rows of a crypto share a moment: CoinGecko's time is the same,
    # so it is the same observation, whatever the price says.
    btc = await track(store, "BTC", 100.0)
    assert await record(store, PriceUpdate(btc, {"usd": 101.0}, T0)) == set()

    assert await current(store) == (100.0, T0)
    assert await history(store) == [(100.0, T0)]


async def test_the_same_observation_polled_four_times_is_one_point(store: Store) -> None:
    btc = await track(store, "BTC", 100.0)
    eth = await track(store, "ETH", 10.0)
    recorded = [
        await record(
            store, PriceUpdate(btc, {"usd": 101.0}, at(30)), PriceUpdate(eth, {"usd": 10.0}, T0)
        )
        for _ in range(4)
    ]

    assert recorded == [{btc}, set(), set(), set()]
    assert await history(store) == [(100.0, T0), (101.0, at(30))]
    assert await history(store, ETH) == [(10.0, T0)]


async def test_several_updates_for_one_crypto_in_one_batch_keep_the_latest(store: Store) -> None:
    btc = await track(store, "BTC", 100.0)
    eth = await track(store, "ETH", 10.0)

    updated = await record(
        store,
        PriceUpdate(btc, {"usd": 103.0}, at(3)),
        PriceUpdate(eth, {"usd": 11.0}, at(1)),
        PriceUpdate(btc, {"usd": 101.0}, at(1)),
        PriceUpdate(eth, {"usd": 12.0}, at(1)),  # a tie: the later one in the batch
    )

    assert updated == {btc, eth}
    assert await current(store) == (103.0, at(3))
    assert await history(store) == [(100.0, T0), (103.0, at(3))]
    assert await current(store, ETH) == (12.0, at(1))
    assert await history(store, ETH) == [(10.0, T0), (12.0, at(1))]


async def test_history_is_trimmed_to_the_newest_keep_rows_by_time(store: Store) -> None:
    btc = await track(store, "BTC", 1.0)
    for second in (10, 20, 30):
        await record(store, PriceUpdate(btc, {"usd": float(second)}, at(second)), keep=3)
    assert await history(store) == [(10.0, at(10)), (20.0, at(20)), (30.0, at(30))]

    # A late price older than all that is kept stores nothing.
    assert await record(store, PriceUpdate(btc, {"usd": 5.0}, at(5)), keep=3) == set()
    assert await history(store) == [(10.0, at(10)), (20.0, at(20)), (30.0, at(30))]
    assert await current(store) == (30.0, at(30))


async def test_updates_in_one_second_keep_the_first_of_it(store: Store) -> None:
    btc = await track(store, "BTC", 1.0)
    assert await record(store, PriceUpdate(btc, {"usd": 2.0}, at(1)), keep=5) == {btc}
    for price in range(3, 9):
        assert await record(store, PriceUpdate(btc, {"usd": float(price)}, at(1)), keep=5) == set()

    assert await history(store) == [(1.0, T0), (2.0, at(1))]
    assert await current(store) == (2.0, at(1))


async def test_trimming_touches_only_the_cryptos_in_the_batch(store: Store) -> None:
    btc = await track(store, "BTC", 1.0)
    eth = await track(store, "ETH", 1.0)
    for second in range(1, 5):
        await record(
            store,
            PriceUpdate(btc, {"usd": 1.0 + second}, at(second)),
            PriceUpdate(eth, {"usd": 1.0}, at(second)),
        )

    await record(store, PriceUpdate(btc, {"usd": 9.0}, at(10)), keep=2)

    assert [price for price, _ in await history(store)] == [5.0, 9.0]
    assert len(await history(store, ETH)) == 5


async def test_updates_for_cryptos_not_stored_are_skipped(store: Store) -> None:
    btc = await track(store, "BTC", 100.0)
    gone = await track(store, "ETH", 10.0)
    assert await store.cryptos.delete(ETH)

    updated = await record(
        store, PriceUpdate(gone, {"usd": 11.0}, at(1)), PriceUpdate(btc, {"usd": 101.0}, at(1))
    )

    assert updated == {btc}
    assert await store.cryptos.get(ETH) is None
    assert await history(store) == [(100.0, T0), (101.0, at(1))]
    assert await record(store) == set()
    assert await record(store, PriceUpdate(424242, {"usd": 1.0}, T0)) == set()


async def test_keep_and_limit_below_one_are_refused(store: Store) -> None:
    btc = await track(store, "BTC")
    with pytest.raises(ValueError, match="keep"):
        await record(store, PriceUpdate(btc, {"usd": 1.0}, T0), keep=0)
    with pytest.raises(ValueError, match="limit"):
        await store.cryptos.history(BTC, 0, USD)
    assert await history(store) == [(100.0, T0)]


# --- history ---------------------------------------------------------------------------


async def test_history_is_the_newest_rows_oldest_first(store: Store) -> None:
    btc = await track(store, "BTC", 1.0)
    for second in (1, 3, 5, 7, 9):
        await record(store, PriceUpdate(btc, {"usd": 1.0 + second}, at(second)))

    assert await store.cryptos.history(BTC, 3, USD) == [
        PricePoint(6.0, at(5)),
        PricePoint(8.0, at(7)),
        PricePoint(10.0, at(9)),
    ]
    assert [price for price, _ in await history(store)] == [1.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert await store.cryptos.history(ETH, KEEP, USD) is None


# --- stats -----------------------------------------------------------------------------


async def test_stats_follow_the_timestamps(store: Store) -> None:
    btc = await track(store, "BTC", 10.0)
    for price, second in ((30.0, 10), (20.0, 20), (40.0, 30)):  # not in order of price
        await record(store, PriceUpdate(btc, {"usd": price}, at(second)))

    stats = await store.cryptos.stats(BTC, KEEP, USD)

    assert stats is not None
    assert stats.current_price == 40.0
    assert (stats.min_price, stats.max_price, stats.avg_price) == (10, 40, 25)
    assert (stats.oldest_price, stats.newest_price) == (10, 40)
    assert stats.records_count == 4
    assert (stats.price_change, stats.price_change_percent) == (30, 300)
    assert await store.cryptos.stats(ETH, KEEP, USD) is None


async def test_stats_cover_the_newest_limit_rows_of_the_history(store: Store) -> None:
    btc = await track(store, "BTC", 10.0)
    for price, second in ((30.0, 10), (20.0, 20), (40.0, 30)):
        await record(store, PriceUpdate(btc, {"usd": price}, at(second)))

    stats = await store.cryptos.stats(BTC, 2, USD)

    assert stats is not None
    assert (stats.oldest_price, stats.newest_price, stats.records_count) == (20, 40, 2)
    assert (stats.min_price, stats.max_price, stats.avg_price) == (20, 40, 30)


@pytest.mark.parametrize(
    ("prices", "expected"),
    [
        # (min, max, avg, change, change %): 8 places, 2 for the percentage, ties away from 0
        ((1.0, 2.0, 2.0), ("1", "2", "1.66666667", "1", "100")),
        ((0.1, 0.2, 0.30000000000000004), ("0.1", "0.3", "0.2", "0.2", "200")),
        ((0.0012345, 0.0012344), ("0.0012344", "0.0012345", "0.00123445", "-1E-7", "-0.01")),
        ((3.0, 1.000000005), ("1.00000001", "3", "2.00000000", "-2", "-66.67")),
        # a double's digits past the 15th are not kept (float8::numeric)
        (
            (123456789.12345679, 1.0),
            ("1", "123456789.123457", "61728395.0617285", "-123456788.123457", "-100"),
        ),
    ],
)
async def test_stats_are_exact_decimals_rounded_by_the_domain_rules(
    store: Store, prices: tuple[float, ...], expected: tuple[str, ...]
) -> None:
    btc = await track(store, "BTC", prices[0])
    for second, price in enumerate(prices[1:], start=1):
        await record(store, PriceUpdate(btc, {"usd": price}, at(second)))

    stats = await store.cryptos.stats(BTC, KEEP, USD)

    assert stats is not None
    found = (
        stats.min_price,
        stats.max_price,
        stats.avg_price,
        stats.price_change,
        stats.price_change_percent,
    )
    assert found == tuple(Decimal(value) for value in expected)
    assert stats.records_count == len(prices)


async def test_stats_leave_out_stored_prices_outside_the_sane_range(store: Store) -> None:
    # Rows written before prices were checked on the way in: stats must stay finite.
    btc = await track(store, "BTC", 10.0)
    for second, price in enumerate((1.7e308, 20.0, 5e-324, 30.0), start=1):
        await record(store, PriceUpdate(btc, {"usd": price}, at(second)))

    stats = await store.cryptos.stats(BTC, KEEP, USD)

    assert stats is not None
    assert (stats.min_price, stats.max_price, stats.avg_price) == (10, 30, 20)
    assert (stats.oldest_price, stats.newest_price, stats.records_count) == (10, 30, 3)


# --- delete ----------------------------------------------------------------------------


async def test_delete_removes_the_crypto_and_its_history(store: Store) -> None:
    btc = await track(store, "BTC", 1.0)
    eth = await store.cryptos.add(crypto("ETH", 1.0))
    await record(store, PriceUpdate(btc, {"usd": 2.0}, at(1)))

    assert await store.cryptos.delete(BTC) is True

    assert await store.cryptos.get(BTC) is None
    assert await store.cryptos.history(BTC, KEEP, USD) is None
    assert await store.cryptos.stats(BTC, KEEP, USD) is None
    assert await store.cryptos.list() == [eth]
    assert await store.cryptos.delete(BTC) is False


async def test_a_deleted_symbol_can_be_added_again_with_a_fresh_history(store: Store) -> None:
    first = await track(store, "BTC", 1.0)
    await record(store, PriceUpdate(first, {"usd": 2.0}, at(1)))
    await store.cryptos.delete(BTC)

    again = await store.cryptos.add(crypto("BTC", 3.0, at(5)))

    assert again.id is not None and again.id != first
    assert await history(store) == [(3.0, at(5))]


# --- quote currencies ------------------------------------------------------------------


async def test_an_observation_holds_its_price_in_every_currency(store: Store) -> None:
    stored = await store.cryptos.add(crypto("BTC", prices={USD: 100.0, EUR: 90.0}))
    assert stored.id is not None
    update = PriceUpdate(stored.id, {USD: 101.0, EUR: 91.0}, at(1))
    assert await record(store, update) == {stored.id}

    fetched = await store.cryptos.get(BTC)
    assert fetched is not None and fetched.prices == {USD: 101.0, EUR: 91.0}
    assert await history(store, currency=USD) == [(100.0, T0), (101.0, at(1))]
    assert await history(store, currency=EUR) == [(90.0, T0), (91.0, at(1))]
    stats = await store.cryptos.stats(BTC, KEEP, EUR)
    assert stats is not None
    assert (stats.current_price, stats.records_count) == (91.0, 2)
    assert (stats.min_price, stats.max_price, stats.price_change) == (90, 91, 1)


async def test_observations_with_no_price_in_a_currency_are_left_out_of_it(
    store: Store,
) -> None:
    # eur configured after BTC was added: its first observation has no eur price.
    btc = await track(store, "BTC", 100.0)
    await record(store, PriceUpdate(btc, {USD: 101.0, EUR: 91.0}, at(1)))
    await record(store, PriceUpdate(btc, {USD: 102.0}, at(2)))  # eur unusable this time

    assert await history(store, currency=EUR) == [(91.0, at(1))]
    assert await history(store, currency=USD) == [(100.0, T0), (101.0, at(1)), (102.0, at(2))]
    # limit counts observations, then those without an eur price are left out
    assert await store.cryptos.history(BTC, 2, EUR) == [PricePoint(91.0, at(1))]
    assert await store.cryptos.history(BTC, 1, EUR) == []
    assert await current(store, currency=EUR) == (None, at(2))
    stats = await store.cryptos.stats(BTC, KEEP, EUR)
    assert stats is not None
    assert (stats.current_price, stats.records_count, stats.min_price) == (None, 1, 91)
    newest = await store.cryptos.stats(BTC, 1, EUR)
    assert newest is not None and (newest.current_price, newest.records_count) == (None, 0)


async def test_a_currency_with_no_stored_price_has_an_empty_history(store: Store) -> None:
    await track(store, "BTC", 100.0)

    assert await store.cryptos.history(BTC, KEEP, GBP) == []
    stats = await store.cryptos.stats(BTC, KEEP, GBP)
    assert stats is not None
    assert (stats.current_price, stats.records_count, stats.avg_price) == (None, 0, None)


async def test_prices_come_back_as_the_very_doubles_stored(store: Store) -> None:
    exact = [0.1 + 0.2, 1e-12, 1e15, 45000.5, 1 / 3, 67187.33000000001]
    btc = await track(store, "BTC", exact[0])
    for second, price in enumerate(exact[1:], start=1):
        await record(store, PriceUpdate(btc, {USD: price, EUR: price / 7}, at(second)))

    assert [price for price, _ in await history(store, currency=USD)] == exact
    assert [price for price, _ in await history(store, currency=EUR)] == [p / 7 for p in exact[1:]]
    assert await current(store, currency=EUR) == (exact[-1] / 7, at(len(exact) - 1))


# --- users -----------------------------------------------------------------------------


async def test_users_are_added_and_found(store: Store) -> None:
    alice = await store.users.add("alice", "hash-a")
    bob = await store.users.add("bob", "hash-b")

    assert alice.id != bob.id
    assert (alice.username, alice.password_hash) == ("alice", "hash-a")
    assert await store.users.get_by_username("alice") == alice
    assert await store.users.get_by_username("bob") == bob
    assert await store.users.get_by_username("carol") is None


async def test_usernames_are_unique_and_found_in_any_case(store: Store) -> None:
    carol = await store.users.add("Carol", "hash-c")

    with pytest.raises(UsernameTaken, match="username 'carol' is already taken"):
        await store.users.add("carol", "hash-other")
    for spelling in ("Carol", "carol", "CAROL", "cArOl"):
        assert await store.users.get_by_username(spelling) == carol
    assert await store.users.get_by_username("caro") is None
    assert carol.username == "Carol"  # kept as given
