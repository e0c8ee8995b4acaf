"""Prices in the configured quote currencies (QUOTE_CURRENCIES), over real HTTP: the app
on PostgreSQL and Redis, the real CoinGecko client against the CoinGecko stand-in, which
answers each asked ``vs_currency`` (its usd price times a rate, unless a test sets one)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from infrastructure.db.config import connect_kwargs
from tests.e2e.conftest import Api
from tests.e2e.test_openapi import check_answer, document
from tests.e2e.test_price_stream import STREAM, Event, Stream
from tests.fakes.coingecko_server import ABSENT

pytestmark = pytest.mark.integration

USD_EUR = {"QUOTE_CURRENCIES": "usd,eur"}
SIMPLE_PRICE, MARKETS = "/simple/price", "/coins/markets"


async def add(api: Api, symbol: str, query: str = "") -> dict:
    r = await api.client.post(f"/crypto{query}", json={"symbol": symbol}, headers=api.auth)
    assert r.status_code == 201, r.text
    return r.json()["crypto"]


async def get(api: Api, path: str) -> dict:
    r = await api.client.get(path, headers=api.auth)
    assert r.status_code == 200, (path, r.text)
    return r.json()


async def refresh(api: Api, symbol: str, query: str = "") -> dict:
    r = await api.client.put(f"/crypto/{symbol}/refresh{query}", headers=api.auth)
    assert r.status_code == 200, r.text
    return r.json()["crypto"]


def set_prices(api: Api, coin_id: str, usd: float, eur: object) -> None:
    api.gecko.set_price(coin_id, usd)
    api.gecko.set_price(coin_id, eur, currency="eur")


async def history(api: Api, symbol: str, currency: str | None = None) -> list[float]:
    query = "" if currency is None else f"?currency={currency}"
    body = await get(api, f"/crypto/{symbol}/history{query}")
    return [point["price"] for point in body["history"]]


async def test_every_read_in_eur_gives_the_stand_ins_eur_numbers(make_api):
    async with make_api(**USD_EUR) as api:
        set_prices(api, "bitcoin", 100.0, 90.5)
        added = await add(api, "btc", "?currency=eur")
        assert added["current_price"] == 90.5
        # One /simple/price call asked for both currencies.
        [call] = api.gecko.calls(SIMPLE_PRICE)
        assert call.query["vs_currencies"].split(",") == ["usd", "eur"]

        set_prices(api, "bitcoin", 120.0, 110.25)
        assert (await refresh(api, "BTC", "?currency=EUR"))["current_price"] == 110.25

        usd = await get(api, "/crypto/BTC")
        eur = await get(api, "/crypto/btc?currency=eur")
        assert (usd["current_price"], eur["current_price"]) == (120.0, 110.25)
        assert {k: v for k, v in usd.items() if k != "current_price"} == {
            k: v for k, v in eur.items() if k != "current_price"
        }
        # Kept bodies are per currency: reads alternating between the two never cross.
        for _ in range(3):
            assert (await get(api, "/crypto/BTC?currency=eur"))["current_price"] == 110.25
            assert (await get(api, "/crypto/BTC"))["current_price"] == 120.0
            assert (await get(api, "/crypto?currency=eur")) == {"cryptos": [eur]}
            assert (await get(api, "/crypto?currency=usd")) == {"cryptos": [usd]}
            assert await history(api, "BTC", "eur") == [90.5, 110.25]
            assert await history(api, "BTC") == [100.0, 120.0]
        usd_stamps = [p["timestamp"] for p in (await get(api, "/crypto/BTC/history"))["history"]]
        eur_body = await get(api, "/crypto/BTC/history?currency=eur")
        assert [p["timestamp"] for p in eur_body["history"]] == usd_stamps  # one row each

        r = await api.client.get("/coins?symbol=btc&currency=eur", headers=api.auth)
        assert r.status_code == 200
        assert api.gecko.calls(MARKETS)[-1].query["vs_currency"] == "eur"
        expected = {
            c.id: api.gecko.price_in(c, "eur")
            for c in api.gecko.coins.values()
            if c.symbol == "btc"
        }
        assert {c["coin_id"]: c["current_price"] for c in r.json()["coins"]} == expected
        assert expected["bitcoin"] == 110.25
        # The usd list is kept apart from the eur one.
        r = await api.client.get("/coins?symbol=btc", headers=api.auth)
        bitcoin = next(c for c in r.json()["coins"] if c["coin_id"] == "bitcoin")
        assert bitcoin["current_price"] == 120.0

        spec = await document(api)
        check_answer(
            spec,
            "get",
            "/crypto/{symbol}",
            await api.client.get("/crypto/BTC?currency=eur", headers=api.auth),
        )


async def test_a_derived_price_is_the_stand_ins_rate(make_api):
    async with make_api(QUOTE_CURRENCIES="usd,eur,gbp") as api:
        await add(api, "ETH")
        ethereum = api.gecko.coins["ethereum"]
        for code in ("usd", "eur", "gbp"):
            body = await get(api, f"/crypto/ETH?currency={code}")
            assert body["current_price"] == api.gecko.price_in(ethereum, code), code


async def test_stats_in_eur_are_computed_over_the_eur_prices(make_api):
    async with make_api(**USD_EUR) as api:
        usd = [1.0, 2.0, 3.0]
        eur = [0.0012345, 0.0009876, 0.0007924]
        set_prices(api, "bitcoin", usd[0], eur[0])
        await add(api, "BTC")
        for u, e in zip(usd[1:], eur[1:], strict=True):
            set_prices(api, "bitcoin", u, e)
            await refresh(api, "BTC")
        assert await get(api, "/crypto/BTC/stats?currency=eur") == {
            "symbol": "BTC",
            "current_price": 0.0007924,
            "stats": {
                "min_price": 0.0007924,
                "max_price": 0.0012345,
                "avg_price": 0.00100483,  # 0.00100483333... to 8 places
                "price_change": -0.0004421,  # not float noise
                "price_change_percent": -35.81,
                "records_count": 3,
            },
        }
        assert (await get(api, "/crypto/BTC/stats"))["stats"] == {
            "min_price": 1.0,
            "max_price": 3.0,
            "avg_price": 2.0,
            "price_change": 2.0,
            "price_change_percent": 200.0,
            "records_count": 3,
        }


BAD = {
    "blank": ("currency=", "''"),
    "no value": ("currency", "''"),
    "twice": ("currency=usd&currency=eur", "several values"),
    "twice the same": ("currency=eur&currency=eur", "several values"),
    "a list": ("currency=usd,eur", "'usd,eur'"),
    "not configured": ("currency=gbp", "'gbp'"),
    "spaces": ("currency=%20eur", "' eur'"),
}


def assert_refused(r, got: str) -> None:
    assert r.status_code == 400, r.text
    assert r.json() == {"error": f"currency must be one of usd, eur (got {got})"}


@pytest.mark.parametrize("case", list(BAD))
async def test_a_bad_currency_is_a_400_naming_the_configured_ones_and_changes_nothing(
    make_api, case
):
    query, got = BAD[case]
    async with make_api(**USD_EUR) as api:
        before = await add(api, "BTC")
        history_before = await history(api, "BTC")
        set_prices(api, "bitcoin", 123.0, 111.0)  # a refresh would store these
        calls = len(api.gecko.requests)
        for path in (
            "/crypto",
            "/crypto/BTC",
            "/crypto/BTC/history",
            "/crypto/BTC/stats",
            "/coins?symbol=eth",
        ):
            glue = "&" if "?" in path else "?"
            assert_refused(await api.client.get(f"{path}{glue}{query}", headers=api.auth), got)
        r = await api.client.get(f"/crypto?{query}", headers={**api.auth, **STREAM})
        assert_refused(r, got)  # JSON, not a stream
        r = await api.client.put(f"/crypto/BTC/refresh?{query}", headers=api.auth)
        assert_refused(r, got)
        r = await api.client.post(f"/crypto?{query}", json={"symbol": "ETH"}, headers=api.auth)
        assert_refused(r, got)

        assert len(api.gecko.requests) == calls  # nothing was asked upstream
        assert await get(api, "/crypto") == {"cryptos": [before]}
        assert await history(api, "BTC") == history_before


async def test_currencies_lists_the_configured_codes_and_the_default(make_api):
    async with make_api(QUOTE_CURRENCIES=" EUR,usd , btc") as api:
        r = await api.client.get("/currencies", headers=api.auth)
        assert r.status_code == 200
        assert r.json() == {"currencies": ["eur", "usd", "btc"], "default": "eur"}
        check_answer(await document(api), "get", "/currencies", r)
        r = await api.client.get("/currencies")
        assert r.status_code == 401
        check_answer(await document(api), "get", "/currencies", r)

        # The first is every answer's default.
        set_prices(api, "bitcoin", 100.0, 92.0)
        assert (await add(api, "BTC"))["current_price"] == 92.0
        assert (await get(api, "/crypto/BTC"))["current_price"] == 92.0
        assert (await get(api, "/crypto/BTC?currency=usd"))["current_price"] == 100.0
        assert (await get(api, "/crypto/BTC?currency=BTC"))["current_price"] == 1.0
        r = await api.client.get("/crypto?currency=gbp", headers=api.auth)
        assert r.json() == {"error": "currency must be one of eur, usd, btc (got 'gbp')"}


async def stored_prices(database_url: str, symbol: str) -> tuple[dict, list[dict]]:
    """The crypto's current prices and each history row's, oldest first, as stored."""
    conn = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        current = await conn.fetchval(
            "SELECT current_prices::text FROM cryptos WHERE symbol = $1", symbol
        )
        rows = await conn.fetch(
            "SELECT h.prices::text AS prices FROM price_history h "
            "JOIN cryptos c ON c.id = h.crypto_id WHERE c.symbol = $1 ORDER BY h.ts, h.id",
            symbol,
        )
    finally:
        await conn.close()
    return json.loads(current), [json.loads(r["prices"]) for r in rows]


async def poll(api: Api) -> None:
    """One poll cycle, as the poller runs it (the tests' apps run no poller of their own)."""
    await api.app.ctx.wiring.services.poll_cycle()


async def test_a_currency_added_then_removed_across_restarts(make_api, database_url):
    async with make_api(QUOTE_CURRENCIES="usd") as api:
        api.gecko.set_price("bitcoin", 100.0)
        await add(api, "BTC")
        api.gecko.set_price("bitcoin", 101.0)
        await refresh(api, "BTC")
        r = await api.client.get("/crypto/BTC?currency=eur", headers=api.auth)
        assert r.json() == {"error": "currency must be one of usd (got 'eur')"}

    # Restarted with eur: nothing stored has a price in it yet.
    async with make_api(restart=True, **USD_EUR) as api:
        assert (await get(api, "/crypto/BTC?currency=eur"))["current_price"] is None
        assert (await get(api, "/crypto?currency=eur"))["cryptos"][0]["current_price"] is None
        assert await history(api, "BTC", "eur") == []
        assert await get(api, "/crypto/BTC/stats?currency=eur") == {
            "symbol": "BTC",
            "current_price": None,
            "stats": {
                "min_price": None,
                "max_price": None,
                "avg_price": None,
                "price_change": None,
                "price_change_percent": None,
                "records_count": 0,
            },
        }
        assert await history(api, "BTC") == [100.0, 101.0]
        spec = await document(api)
        for path in ("/crypto/{symbol}", "/crypto/{symbol}/stats"):
            concrete = path.replace("{symbol}", "BTC") + "?currency=eur"
            check_answer(spec, "get", path, await api.client.get(concrete, headers=api.auth))

        await poll(api)  # CoinGecko has nothing newer: still nothing in eur
        assert (await get(api, "/crypto/BTC?currency=eur"))["current_price"] is None

        api.gecko.set_price("bitcoin", 102.0)  # eur follows at the stand-in's rate
        eur_102 = api.gecko.price_in(api.gecko.coins["bitcoin"], "eur")
        await poll(api)
        assert (await get(api, "/crypto/BTC?currency=eur"))["current_price"] == eur_102
        assert await history(api, "BTC", "eur") == [eur_102]
        assert await history(api, "BTC") == [100.0, 101.0, 102.0]
        stats = await get(api, "/crypto/BTC/stats?currency=eur")
        assert (stats["current_price"], stats["stats"]["records_count"]) == (eur_102, 1)

    # Restarted without eur: no longer served, its stored prices stay.
    async with make_api(restart=True, QUOTE_CURRENCIES="usd") as api:
        assert await get(api, "/currencies") == {"currencies": ["usd"], "default": "usd"}
        for path in ("/crypto/BTC", "/crypto/BTC/history", "/crypto"):
            r = await api.client.get(f"{path}?currency=eur", headers=api.auth)
            assert r.json() == {"error": "currency must be one of usd (got 'eur')"}
        api.gecko.set_price("bitcoin", 103.0)
        await poll(api)
        assert await history(api, "BTC") == [100.0, 101.0, 102.0, 103.0]
        current, rows = await stored_prices(database_url, "BTC")
        assert current == {"usd": 103.0}  # the newest observation asked for usd only
        assert [row.get("eur") for row in rows] == [None, None, eur_102, None]

    # And back: its stored prices are served again.
    async with make_api(restart=True, **USD_EUR) as api:
        assert await history(api, "BTC", "eur") == [eur_102]
        # the newest observation has none in eur: null until the next newer one
        assert (await get(api, "/crypto/BTC?currency=eur"))["current_price"] is None
        stats = await get(api, "/crypto/BTC/stats?currency=eur")
        assert stats["stats"]["records_count"] == 1
        assert stats["stats"]["min_price"] == round(eur_102, 8)  # the stats' 8 places


@asynccontextmanager
async def price_stream(api: Api, query: str = "") -> AsyncIterator[Stream]:
    headers = {**api.auth, **STREAM}
    async with api.client.stream("GET", f"/crypto{query}", headers=headers) as response:
        assert response.status_code == 200
        yield Stream(response)


async def test_the_stream_in_eur(make_api):
    async with make_api(**USD_EUR) as api:
        set_prices(api, "bitcoin", 100.0, 90.0)
        await add(api, "BTC")
        async with price_stream(api, "?currency=EUR") as eur, price_stream(api) as usd:
            snapshot = await eur.next_event()
            assert snapshot == Event("snapshot", await get(api, "/crypto?currency=eur"))
            assert snapshot.data["cryptos"][0]["current_price"] == 90.0
            assert (await usd.next_event()).data["cryptos"][0]["current_price"] == 100.0

            api.gecko.set_price("ethereum", 3000.0)
            added = await add(api, "ETH", "?currency=eur")
            assert await eur.next_event() == Event("added", added)
            assert (await usd.next_event()).data["current_price"] == 3000.0

            set_prices(api, "bitcoin", 110.0, 99.5)
            refreshed = await refresh(api, "BTC", "?currency=eur")
            price = await eur.next_event()
            assert price == Event(
                "price", {k: refreshed[k] for k in ("symbol", "current_price", "last_updated")}
            )
            assert price.data["current_price"] == 99.5
            assert (await usd.next_event()).data["current_price"] == 110.0

            # CoinGecko has no usable eur price this time: the eur stream has nothing to
            # tell of it, the usd stream tells it.
            set_prices(api, "bitcoin", 120.0, ABSENT)
            await refresh(api, "BTC")
            assert (await usd.next_event()).data["current_price"] == 120.0
            assert (await get(api, "/crypto/BTC?currency=eur"))["current_price"] is None
            r = await api.client.delete("/crypto/ETH", headers=api.auth)
            assert r.status_code == 200
            assert await eur.next_event() == Event("removed", {"symbol": "ETH"})
            assert await usd.next_event() == Event("removed", {"symbol": "ETH"})
