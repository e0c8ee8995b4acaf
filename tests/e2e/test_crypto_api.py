"""The /crypto routes over real HTTP, on the real PostgreSQL and Redis, with the real
CoinGecko client talking to the local CoinGecko stand-in."""

import asyncio
import re

import pytest

from tests.fakes.coingecko_server import Failure

pytestmark = pytest.mark.integration

ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


async def add(api, symbol):
    return await api.client.post("/crypto", json={"symbol": symbol}, headers=api.auth)


async def test_list_starts_empty(api):
    r = await api.client.get("/crypto", headers=api.auth)
    assert (r.status_code, r.json()) == (200, {"cryptos": []})


async def test_add_resolves_the_famous_coin_of_a_shared_ticker(api):
    r = await add(api, "btc")
    assert r.status_code == 201
    crypto = r.json()["crypto"]
    assert set(crypto) == {"symbol", "name", "current_price", "last_updated"}
    assert (crypto["symbol"], crypto["name"]) == ("BTC", "Bitcoin")
    assert crypto["current_price"] == api.gecko.coins["bitcoin"].price
    assert ISO_Z.fullmatch(crypto["last_updated"])
    history = (await api.client.get("/crypto/BTC/history", headers=api.auth)).json()
    assert [p["price"] for p in history["history"]] == [crypto["current_price"]]
    eth = (await add(api, "ETH")).json()["crypto"]
    assert eth["name"] == "Ethereum"


async def test_list_is_ordered_by_symbol(api):
    for symbol in ("eth", "BTC", "doge"):
        assert (await add(api, symbol)).status_code == 201
    r = await api.client.get("/crypto", headers=api.auth)
    assert [c["symbol"] for c in r.json()["cryptos"]] == ["BTC", "DOGE", "ETH"]


@pytest.mark.parametrize(
    "body, message",
    [
        ({}, "symbol is required"),
        ({"symbol": 5}, "symbol must be a string"),
        ({"symbol": ""}, "symbol must not be empty"),
        ({"symbol": "BT C"}, "1 to 20 letters or digits"),
        ({"symbol": "B" * 21}, "1 to 20 letters or digits"),
        ({"symbol": "btc-usd"}, "1 to 20 letters or digits"),
        ({"symbol": "NOSUCHCOIN"}, "no coin with the symbol NOSUCHCOIN"),
    ],
)
async def test_add_refuses_bad_symbols(api, body, message):
    r = await api.client.post("/crypto", json=body, headers=api.auth)
    assert r.status_code == 400
    assert message in r.json()["error"]
    assert (await api.client.get("/crypto", headers=api.auth)).json() == {"cryptos": []}


@pytest.mark.parametrize("raw", [b"", b"nope", b"[]", b"{"])
async def test_add_refuses_bodies_that_are_not_objects(api, raw):
    headers = {**api.auth, "content-type": "application/json"}
    r = await api.client.post("/crypto", content=raw, headers=headers)
    assert r.status_code == 400 and "JSON" in r.json()["error"]


async def test_add_twice_is_409_in_any_case(api):
    assert (await add(api, "BTC")).status_code == 201
    r = await add(api, "btc")
    assert r.status_code == 409
    assert r.json() == {"error": "crypto BTC is already tracked"}


async def test_twenty_concurrent_adds_one_wins(api):
    responses = await asyncio.gather(*(add(api, "eth") for _ in range(20)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 19
    history = (await api.client.get("/crypto/ETH/history", headers=api.auth)).json()
    assert len(history["history"]) == 1


FAILURES = {
    "rate_limit": Failure.rate_limited(30),
    "server_error": Failure.server_error(),
    "malformed": Failure.malformed_json(),
    "hang": Failure.hang(),
    "key_missing": Failure.key_missing(),
}


@pytest.mark.parametrize("failure", list(FAILURES))
async def test_add_upstream_failure_is_500_and_stores_nothing(api, failure):
    api.gecko.fail(FAILURES[failure])
    r = await add(api, "BTC")
    assert r.status_code == 500
    assert "CoinGecko" in r.json()["error"]
    api.gecko.clear_failures()
    assert (await api.client.get("/crypto", headers=api.auth)).json() == {"cryptos": []}


async def test_rate_limit_says_when_to_retry(api):
    api.gecko.fail(Failure.rate_limited(119))
    r = await add(api, "BTC")
    assert r.status_code == 500
    assert r.headers["retry-after"] == "119"
    assert "retry" in r.json()["error"].lower()


async def test_get_one_answers_the_crypto_itself(api):
    added = (await add(api, "BTC")).json()["crypto"]
    for path in ("/crypto/BTC", "/crypto/btc"):
        r = await api.client.get(path, headers=api.auth)
        assert r.status_code == 200
        assert r.json() == added  # not wrapped in {"crypto": ...}
    r = await api.client.get("/crypto/ETH", headers=api.auth)
    assert (r.status_code, r.json()) == (404, {"error": "crypto ETH is not tracked"})


async def test_refresh_stores_a_new_price(api):
    await add(api, "BTC")
    api.gecko.set_price("bitcoin", 50123.25)
    r = await api.client.put("/crypto/btc/refresh", headers=api.auth)
    assert r.status_code == 200
    assert r.json()["crypto"]["current_price"] == 50123.25
    got = (await api.client.get("/crypto/BTC", headers=api.auth)).json()
    assert got["current_price"] == 50123.25
    history = (await api.client.get("/crypto/BTC/history", headers=api.auth)).json()["history"]
    assert [p["price"] for p in history][-1] == 50123.25 and len(history) == 2


async def test_refresh_unknown_is_404(api):
    r = await api.client.put("/crypto/BTC/refresh", headers=api.auth)
    assert r.status_code == 404


@pytest.mark.parametrize("failure", [*FAILURES, "null_price"])
async def test_refresh_failure_is_500_and_leaves_the_crypto_as_it_was(api, failure):
    before = (await add(api, "BTC")).json()["crypto"]
    if failure == "null_price":
        api.gecko.set_price("bitcoin", None)
    else:
        api.gecko.fail(FAILURES[failure])
    r = await api.client.put("/crypto/BTC/refresh", headers=api.auth)
    assert r.status_code == 500 and "CoinGecko" in r.json()["error"]
    api.gecko.clear_failures()
    assert (await api.client.get("/crypto/BTC", headers=api.auth)).json() == before
    history = (await api.client.get("/crypto/BTC/history", headers=api.auth)).json()["history"]
    assert len(history) == 1


async def test_105_refreshes_keep_the_last_100(api):
    await add(api, "BTC")
    for i in range(105):
        api.gecko.set_price("bitcoin", 1000.0 + i)
        r = await api.client.put("/crypto/BTC/refresh", headers=api.auth)
        assert r.status_code == 200
    history = (await api.client.get("/crypto/BTC/history", headers=api.auth)).json()["history"]
    assert len(history) == 100
    assert [p["price"] for p in history] == [1000.0 + i for i in range(5, 105)]  # oldest first
    stats = (await api.client.get("/crypto/BTC/stats", headers=api.auth)).json()
    assert stats["stats"]["records_count"] == 100


async def test_history_and_stats(api):
    api.gecko.set_price("bitcoin", 100.0)
    await add(api, "BTC")
    for price in (80.0, 120.0, 110.0):
        api.gecko.set_price("bitcoin", price)
        await api.client.put("/crypto/BTC/refresh", headers=api.auth)
    history = (await api.client.get("/crypto/btc/history", headers=api.auth)).json()
    assert history["symbol"] == "BTC"
    assert [p["price"] for p in history["history"]] == [100.0, 80.0, 120.0, 110.0]
    assert all(ISO_Z.fullmatch(p["timestamp"]) for p in history["history"])
    stamps = [p["timestamp"] for p in history["history"]]
    assert stamps == sorted(stamps)
    r = await api.client.get("/crypto/btc/stats", headers=api.auth)
    assert r.status_code == 200
    assert r.json() == {
        "symbol": "BTC",
        "current_price": 110.0,
        "stats": {
            "min_price": 80.0,
            "max_price": 120.0,
            "avg_price": 102.5,
            "price_change": 10.0,
            "price_change_percent": 10.0,
            "records_count": 4,
        },
    }


async def prices_then_stats(api, coin_id, symbol, prices):
    """Track ``symbol`` at the first price, refresh through the others; its stats."""
    api.gecko.set_price(coin_id, prices[0])
    assert (await add(api, symbol)).status_code == 201
    for price in prices[1:]:
        api.gecko.set_price(coin_id, price)
        r = await api.client.put(f"/crypto/{symbol}/refresh", headers=api.auth)
        assert r.status_code == 200
    r = await api.client.get(f"/crypto/{symbol}/stats", headers=api.auth)
    assert r.status_code == 200
    return r.json()


async def test_stats_carry_no_float_noise(api):
    prices = [0.0012345, 0.0009876, 0.0007924]
    assert prices[2] - prices[0] != -0.0004421  # float arithmetic would answer noise

    body = await prices_then_stats(api, "bitcoin", "BTC", prices)

    assert body == {
        "symbol": "BTC",
        "current_price": 0.0007924,
        "stats": {
            "min_price": 0.0007924,
            "max_price": 0.0012345,
            "avg_price": 0.00100483,  # 0.00100483333... to 8 places
            "price_change": -0.0004421,
            "price_change_percent": -35.81,
            "records_count": 3,
        },
    }


async def test_stats_of_a_satoshi_priced_coin_stay_non_zero(api):
    body = await prices_then_stats(api, "dogecoin", "DOGE", [0.00000001, 0.00000003])

    assert body["current_price"] == 0.00000003
    assert body["stats"] == {
        "min_price": 0.00000001,
        "max_price": 0.00000003,
        "avg_price": 0.00000002,
        "price_change": 0.00000002,
        "price_change_percent": 200.0,
        "records_count": 2,
    }


async def test_history_and_stats_of_untracked_are_404(api):
    for path in ("/crypto/BTC/history", "/crypto/BTC/stats"):
        r = await api.client.get(path, headers=api.auth)
        assert (r.status_code, r.json()) == (404, {"error": "crypto BTC is not tracked"})


async def test_delete_takes_the_history_too(api):
    await add(api, "BTC")
    r = await api.client.delete("/crypto/btc", headers=api.auth)
    assert (r.status_code, r.json()) == (200, {})
    for path in ("/crypto/BTC", "/crypto/BTC/history", "/crypto/BTC/stats"):
        assert (await api.client.get(path, headers=api.auth)).status_code == 404
    r = await api.client.delete("/crypto/BTC", headers=api.auth)
    assert r.status_code == 404
    readded = await add(api, "BTC")
    assert readded.status_code == 201
    history = (await api.client.get("/crypto/BTC/history", headers=api.auth)).json()["history"]
    assert len(history) == 1


async def test_bad_symbol_in_path_is_400(api):
    r = await api.client.get("/crypto/" + "A" * 21, headers=api.auth)
    assert r.status_code == 400 and "1 to 20" in r.json()["error"]


async def test_known_ticker_is_resolved_from_the_cache(api):
    await add(api, "BTC")
    await api.client.delete("/crypto/BTC", headers=api.auth)
    lookups = len(api.gecko.calls("/coins/markets"))
    assert (await add(api, "BTC")).status_code == 201
    assert len(api.gecko.calls("/coins/markets")) == lookups  # no second resolution


async def test_the_default_currency_may_be_named_in_any_case(api):
    added = (await add(api, "BTC")).json()["crypto"]
    for query in ("", "?currency=usd", "?currency=USD", "?currency=uSd"):
        r = await api.client.get(f"/crypto/BTC{query}", headers=api.auth)
        assert (r.status_code, r.json()) == (200, added), query
    r = await api.client.get("/crypto/BTC?currency=eur", headers=api.auth)
    assert (r.status_code, r.json()) == (400, {"error": "currency must be one of usd (got 'eur')"})
