"""The CoinGecko stand-in's times and precision, as CoinGecko has them, over real HTTP:
what the client's tests lean on."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.fakes.coingecko_server import (
    API_PREFIX,
    CONTROL_PREFIX,
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
