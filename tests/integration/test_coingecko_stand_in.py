"""The CoinGecko stand-in's times and precision, as CoinGecko has them, over real HTTP:
what the client's tests lean on."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.fakes.coingecko_server import (
    ABSENT,
    API_PREFIX,
    CONTROL_PREFIX,
    RATES,
    UPDATED_AT,
    FakeCoin,
    FakeCoinGecko,
)

TINY = 0.000012345678912


@pytest.fixture
async def fake():
    async with FakeCoinGecko() as server:
        server.add_coin(FakeCoin("tiny", "tiny", "Tiny", price=TINY, market_cap=1.0))
        yield server


async def get(fake: FakeCoinGecko, path: str, **params: str) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.get(fake.base_url + path, params=params) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


async def simple(fake: FakeCoinGecko, coin_id: str, **params: str) -> dict[str, Any]:
    answer = await get(
        fake, "/simple/price", ids=coin_id, vs_currencies="usd", include_last_updated_at="true",
        **params,
    )  # fmt: skip
    return answer[coin_id]


async def test_a_price_keeps_its_time_until_it_changes(fake):
    fake.clock = lambda: UPDATED_AT + 600.7
    assert (await simple(fake, "bitcoin"))["last_updated_at"] == UPDATED_AT
    fake.set_price("bitcoin", fake.coins["bitcoin"].price)  # the same price: the same time
    assert (await simple(fake, "bitcoin"))["last_updated_at"] == UPDATED_AT
    fake.set_price("bitcoin", 70000.0)
    assert await simple(fake, "bitcoin", precision="full") == {
        "usd": 70000.0,
        "last_updated_at": UPDATED_AT + 600,
    }
    [market] = await get(fake, "/coins/markets", vs_currency="usd", ids="bitcoin")
    assert market["last_updated"] == "2024-03-25T08:55:00.000Z"  # UPDATED_AT + 600


async def test_two_changes_within_one_second_are_two_moments(fake):
    fake.clock = lambda: UPDATED_AT + 10.0
    fake.set_price("bitcoin", 1.0)
    fake.set_price("bitcoin", 2.0)
    assert (await simple(fake, "bitcoin"))["last_updated_at"] == UPDATED_AT + 11


@pytest.mark.parametrize(
    ("params", "price"),
    [({}, 0.0000123457), ({"precision": "full"}, TINY), ({"precision": "7"}, 0.0000123)],
)
async def test_prices_are_rounded_unless_asked_otherwise(fake, params, price):
    assert (await simple(fake, "tiny", **params))["usd"] == price
    [market] = await get(fake, "/coins/markets", vs_currency="usd", ids="tiny", **params)
    assert market["current_price"] == price


async def test_the_control_api_sets_a_price_and_its_time(fake):
    control = fake.base_url.removesuffix(API_PREFIX) + CONTROL_PREFIX
    async with aiohttp.ClientSession() as session:
        body = {"price": 1.5, "updated_at": 0}
        async with session.put(f"{control}/coins/bitcoin", json=body) as response:
            assert response.status == 200
    assert await simple(fake, "bitcoin") == {"usd": 1.5, "last_updated_at": 0}


# --- currencies ------------------------------------------------------------------------

BTC_USD = 67187.3358936566


async def prices_in(fake: FakeCoinGecko, vs_currencies: str, ids: str = "bitcoin") -> Any:
    return await get(fake, "/simple/price", ids=ids, vs_currencies=vs_currencies, precision="full")


async def test_every_asked_supported_currency_is_answered_and_unknown_ones_ignored(fake):
    answer = await prices_in(fake, "usd,EUR,btc,eth,xyz", ids="bitcoin,ethereum")
    assert answer["bitcoin"] == {
        "usd": BTC_USD,
        "eur": BTC_USD * RATES["eur"],
        "btc": 1.0,  # btc follows bitcoin's usd price
        "eth": BTC_USD / 3421.1,
    }
    assert answer["ethereum"]["eth"] == 1.0
    fake.set_price("bitcoin", 70000.0)
    assert await prices_in(fake, "gbp,btc") == {
        "bitcoin": {"gbp": 70000.0 * RATES["gbp"], "btc": 1.0}
    }


async def test_a_price_set_in_a_currency_overrides_the_derived_one(fake):
    fake.clock = lambda: UPDATED_AT + 100.0
    fake.set_price("bitcoin", 61000.5, currency="eur")
    fake.set_price("bitcoin", ABSENT, currency="gbp")  # left out of the coin's answer
    fake.set_price("bitcoin", None, currency="jpy")
    answer = await get(
        fake, "/simple/price", ids="bitcoin", vs_currencies="usd,eur,gbp,jpy",
        include_last_updated_at="true",
    )  # fmt: skip
    assert answer["bitcoin"] == {
        "usd": round(BTC_USD, 10),
        "eur": 61000.5,
        "jpy": None,
        "last_updated_at": UPDATED_AT + 102,  # one time per coin: three changes, three moments
    }
    fake.set_price("bitcoin", 70000.0)  # the override stays
    assert (await prices_in(fake, "eur"))["bitcoin"] == {"eur": 61000.5}
    fake.reset()
    assert (await prices_in(fake, "eur"))["bitcoin"] == {"eur": BTC_USD * RATES["eur"]}


async def test_markets_answer_any_supported_currency_and_400_for_others(fake):
    [bitcoin] = await get(
        fake, "/coins/markets", vs_currency="EUR", ids="bitcoin", precision="full"
    )
    assert bitcoin["current_price"] == BTC_USD * RATES["eur"]
    assert bitcoin["market_cap"] == 1.32e12 * RATES["eur"]
    fake.set_price("bitcoin", ABSENT, currency="btc")
    [bitcoin] = await get(fake, "/coins/markets", vs_currency="btc", ids="bitcoin")
    assert bitcoin["current_price"] is None
    fake.supported = ["usd"]
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            fake.base_url + "/coins/markets", params={"vs_currency": "eur", "ids": "bitcoin"}
        ) as response,
    ):
        assert response.status == 400
        assert "vs_currency" in (await response.json())["error"]


async def test_supported_currencies_are_listed_and_steered_over_http(fake):
    assert await get(fake, "/simple/supported_vs_currencies") == list(RATES)
    control = fake.base_url.removesuffix(API_PREFIX) + CONTROL_PREFIX
    async with aiohttp.ClientSession() as session:
        body = {"supported_vs_currencies": ["usd", "EUR"]}
        async with session.post(f"{control}/config", json=body) as response:
            assert (await response.json())["supported_vs_currencies"] == ["usd", "eur"]
        failure = {"kind": "server_error", "path": "/simple/supported_vs_currencies", "times": 1}
        async with session.post(f"{control}/fail", json=failure) as response:
            assert response.status == 200
        async with session.get(fake.base_url + "/simple/supported_vs_currencies") as response:
            assert response.status == 503
    assert await get(fake, "/simple/supported_vs_currencies") == ["usd", "eur"]
    assert await prices_in(fake, "usd,gbp") == {"bitcoin": {"usd": BTC_USD}}  # gbp unsupported now


async def test_the_control_api_sets_a_price_in_a_currency(fake):
    control = fake.base_url.removesuffix(API_PREFIX) + CONTROL_PREFIX
    async with aiohttp.ClientSession() as session:
        body = {"price": 1.25, "currency": "EUR", "updated_at": 5}
        async with session.put(f"{control}/coins/bitcoin", json=body) as response:
            assert (await response.json())["prices"] == {"eur": 1.25}
        async with session.put(
            f"{control}/coins/bitcoin", json={"absent": True, "currency": "gbp"}
        ) as response:
            assert (await response.json())["prices"] == {"eur": 1.25, "gbp": None}
    assert await prices_in(fake, "usd,eur,gbp") == {"bitcoin": {"usd": BTC_USD, "eur": 1.25}}
    assert fake.coins["bitcoin"].updated_at > 5  # the second change moved it on to now
