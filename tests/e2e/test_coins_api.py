"""The coin you mean: GET /coins lists every coin of a ticker, POST /crypto takes the
one chosen. Over real HTTP, on PostgreSQL and Redis, against the CoinGecko stand-in."""

import pytest
import redis.asyncio as redis

from tests.e2e.test_openapi import check_answer, document
from tests.fakes.coingecko_server import UPDATED_AT, Failure
from tests.support.redis_server import machine_redis_url

pytestmark = pytest.mark.integration

MARKETS = "/coins/markets"
UNI = [
    {"coin_id": "uniswap", "name": "Uniswap", "market_cap_rank": 22, "current_price": 7.42},
    {
        "coin_id": "uniswap-wormhole",
        "name": "Uniswap (Wormhole)",
        "market_cap_rank": 3410,
        "current_price": 7.39,
    },
    # unranked, after the ranked ones, in the order CoinGecko sends them
    {"coin_id": "uni-ai", "name": "UNI AI", "market_cap_rank": None, "current_price": 0.0031},
    {
        "coin_id": "unicorn-token",
        "name": "Unicorn Token",
        "market_cap_rank": None,
        "current_price": 0.0000412,
    },
]


async def coins(api, symbol, **headers):
    return await api.client.get(
        "/coins", params={"symbol": symbol}, headers={**api.auth, **headers}
    )


async def add(api, body):
    return await api.client.post("/crypto", json=body, headers=api.auth)


async def test_every_coin_of_the_ticker_best_rank_first_unranked_last(api):
    r = await coins(api, "uni")
    assert r.status_code == 200
    assert r.json() == {"symbol": "UNI", "coins": UNI}
    calls = api.gecko.calls(MARKETS)
    assert len(calls) == 1
    assert {k: calls[0].query[k] for k in ("symbols", "include_tokens", "vs_currency")} == {
        "symbols": "uni",
        "include_tokens": "all",
        "vs_currency": "usd",
    }


async def test_the_rank_decides_the_order_not_the_market_cap(api):
    # CoinGecko orders by market cap; a bridged token can outweigh the coin's rank
    api.gecko.coins["uniswap-wormhole"].market_cap = 9.9e12
    api.gecko.coins["unicorn-token"].market_cap_rank = 9000
    r = await coins(api, "UNI")
    ids = [c["coin_id"] for c in r.json()["coins"]]
    assert ids == ["uniswap", "uniswap-wormhole", "unicorn-token", "uni-ai"]


async def test_a_ticker_nobody_has_lists_no_coin(api):
    r = await coins(api, "nosuchcoin42")
    assert (r.status_code, r.json()) == (200, {"symbol": "NOSUCHCOIN42", "coins": []})


@pytest.mark.parametrize("redis_url", [machine_redis_url(), ""], ids=["redis", "memory"])
async def test_one_coingecko_call_then_the_cache_answers(make_api, redis_url):
    async with make_api(REDIS_URL=redis_url) as api:
        first = (await coins(api, "ada")).json()
        api.gecko.set_price("cardano", 0.99)  # the cached list does not see it yet
        assert (await coins(api, "ADA")).json() == first
        assert len(api.gecko.calls(MARKETS)) == 1
        assert [c["coin_id"] for c in first["coins"]] == [
            "cardano",
            "binance-peg-cardano",
            "ada-the-dog",
        ]
        if redis_url:
            client = redis.Redis.from_url(redis_url)
            try:
                key = f"{api.app.ctx.wiring.settings.redis_key_prefix}ticker:ADA:coins:usd"
                assert 0 < await client.ttl(key) <= 300
            finally:
                await client.aclose()


@pytest.mark.parametrize(
    "query, message",
    [
        ({}, "symbol is required"),
        ({"symbol": ""}, "symbol is required"),
        ({"symbol": "u-n-i"}, "1 to 20 letters or digits"),
        ({"symbol": "U" * 21}, "1 to 20 letters or digits"),
        ({"symbol": "ünï"}, "1 to 20 letters or digits"),
        ([("symbol", "uni"), ("symbol", "grt")], "give one symbol"),
    ],
)
async def test_coins_refuses_a_missing_or_bad_symbol(api, query, message):
    r = await api.client.get("/coins", params=query, headers=api.auth)
    assert r.status_code == 400
    assert message in r.json()["error"]
    assert api.gecko.calls(MARKETS) == []


async def test_coins_needs_a_token(api):
    r = await api.client.get("/coins", params={"symbol": "uni"})
    assert r.status_code == 401
    assert api.gecko.calls(MARKETS) == []


async def test_coingecko_failing_is_a_500_and_nothing_is_cached(api):
    api.gecko.fail(Failure.server_error(503), path=MARKETS, times=1)
    r = await coins(api, "grt")
    assert r.status_code == 500 and "CoinGecko answered 503" in r.json()["error"]
    assert [c["coin_id"] for c in (await coins(api, "grt")).json()["coins"]] == [
        "the-graph",
        "golden-ratio-token",
    ]
    assert len(api.gecko.calls(MARKETS)) == 2


async def test_coingecko_rate_limiting_is_a_500_with_retry_after(api):
    api.gecko.fail(Failure.rate_limited(30), path=MARKETS, times=1)
    r = await coins(api, "grt")
    assert r.status_code == 500 and "rate-limiting" in r.json()["error"]
    assert 1 <= int(r.headers["Retry-After"]) <= 30


async def test_add_tracks_the_chosen_coin_under_the_ticker(api):
    r = await add(api, {"symbol": "uni", "coin_id": "uniswap-wormhole"})
    assert r.status_code == 201, r.text
    crypto = r.json()["crypto"]
    assert set(crypto) == {"symbol", "name", "current_price", "last_updated"}
    assert (crypto["symbol"], crypto["name"], crypto["current_price"]) == (
        "UNI",
        "Uniswap (Wormhole)",
        7.39,
    )
    api.gecko.set_price("uniswap-wormhole", 7.55)
    api.gecko.set_price("uniswap", 8.0)
    refreshed = await api.client.put("/crypto/UNI/refresh", headers=api.auth)
    assert refreshed.json()["crypto"]["current_price"] == 7.55  # that coin, for good
    # the ticker still means its best-ranked coin for whoever names no coin
    assert (await add(api, {"symbol": "SOL"})).json()["crypto"]["name"] == "Solana"


async def test_a_chosen_coin_carries_coingeckos_time_and_unrounded_price(api):
    api.gecko.set_price("uniswap-wormhole", 7.390000012345, updated_at=UPDATED_AT + 45)
    r = await add(api, {"symbol": "uni", "coin_id": "uniswap-wormhole"})
    assert r.status_code == 201, r.text
    crypto = r.json()["crypto"]
    assert (crypto["current_price"], crypto["last_updated"]) == (
        7.390000012345,
        "2024-03-25T08:45:45Z",  # UPDATED_AT + 45 s
    )
    assert [c.query["precision"] for c in api.gecko.calls(MARKETS)] == ["full"]


async def test_add_after_listing_asks_coingecko_the_price_not_the_list(api):
    await coins(api, "sol")
    api.gecko.set_price("wrapped-solana", 175.0)
    r = await add(api, {"symbol": "SOL", "coin_id": "wrapped-solana"})
    assert r.status_code == 201
    assert r.json()["crypto"]["current_price"] == 175.0  # not the listed 172.31
    assert len(api.gecko.calls(MARKETS)) == 1
    assert api.gecko.calls("/simple/price")[-1].query["ids"] == "wrapped-solana"


async def test_a_null_coin_id_is_the_best_ranked_coin(api):
    r = await add(api, {"symbol": "grt", "coin_id": None})
    assert (r.status_code, r.json()["crypto"]["name"]) == (201, "The Graph")


@pytest.mark.parametrize(
    "coin_id, message",
    [
        ("bitcoin", "CoinGecko lists no coin 'bitcoin' with the symbol UNI"),
        ("no-such-coin", "CoinGecko lists no coin 'no-such-coin' with the symbol UNI"),
        (5, "coin_id must be a string"),
        ("", "coin_id must not be empty"),
        ("uni\x00swap", "coin_id must not contain NUL"),
        ("u" * 256, "coin_id must be at most 255 characters"),
    ],
)
async def test_add_refuses_a_coin_that_does_not_exist_or_has_another_ticker(api, coin_id, message):
    r = await add(api, {"symbol": "UNI", "coin_id": coin_id})
    assert r.status_code == 400
    assert message in r.json()["error"]
    assert (await api.client.get("/crypto", headers=api.auth)).json() == {"cryptos": []}


async def test_the_answers_validate_against_the_openapi_document(api):
    spec = await document(api)
    answers = [
        await coins(api, "uni"),
        await coins(api, "nosuchcoin42"),
        await coins(api, "u-n-i"),
        await api.client.get("/coins", headers=api.auth),
        await api.client.get("/coins", params={"symbol": "uni"}),
    ]
    assert [r.status_code for r in answers] == [200, 200, 400, 400, 401]
    for response in answers:
        check_answer(spec, "get", "/coins", response)
    chosen = await add(api, {"symbol": "UNI", "coin_id": "unicorn-token"})
    refused = await add(api, {"symbol": "ADA", "coin_id": "uniswap"})
    assert (chosen.status_code, refused.status_code) == (201, 400)
    for response in (chosen, refused):
        check_answer(spec, "post", "/crypto", response)
    body = spec["components"]["schemas"]["SymbolBody"]
    assert body["required"] == ["symbol"] and body["properties"]["coin_id"]["nullable"] is True
