"""A price that makes no sense is never stored, and one stored before that rule (or
written by hand) never breaks the stats."""

import json
import logging
import math

import asyncpg
import pytest

from infrastructure.db.config import connect_kwargs

pytestmark = pytest.mark.integration

ABSURD = 1.7e308  # what CoinGecko once answered for a coin


def strict_json(text: str) -> object:
    """JSON as RFC 8259 has it: Infinity and NaN are not numbers there."""

    def refuse(constant: str) -> object:
        raise ValueError(f"{constant} in a JSON answer")

    return json.loads(text, parse_constant=refuse)


async def test_adding_at_an_absurd_price_stores_nothing(api, caplog):
    api.gecko.set_price("bitcoin", ABSURD)
    with caplog.at_level(logging.WARNING, logger="infrastructure.coingecko"):
        r = await api.client.post("/crypto", json={"symbol": "BTC"}, headers=api.auth)
    assert r.status_code == 500 and "no usable price" in r.json()["error"]
    assert "unusable prices (left out): bitcoin.usd=1.7e+308" in caplog.text
    assert (await api.client.get("/crypto", headers=api.auth)).json() == {"cryptos": []}


async def test_a_refresh_at_an_absurd_price_changes_nothing_and_stats_stay_200(api):
    api.gecko.set_price("bitcoin", 100.0)
    assert (await api.client.post("/crypto", json={"symbol": "BTC"}, headers=api.auth)).is_success
    api.gecko.set_price("bitcoin", ABSURD)
    r = await api.client.put("/crypto/BTC/refresh", headers=api.auth)
    assert r.status_code == 500 and "no usable price" in r.json()["error"]
    assert (await api.client.get("/crypto/BTC", headers=api.auth)).json()["current_price"] == 100.0
    history = (await api.client.get("/crypto/BTC/history", headers=api.auth)).json()["history"]
    assert [p["price"] for p in history] == [100.0]
    r = await api.client.get("/crypto/BTC/stats", headers=api.auth)
    assert r.status_code == 200 and r.json()["stats"]["max_price"] == 100.0


async def test_stats_leave_out_absurd_rows_stored_before_the_rule(api, database_url):
    api.gecko.set_price("bitcoin", 100.0)
    assert (await api.client.post("/crypto", json={"symbol": "BTC"}, headers=api.auth)).is_success
    api.gecko.set_price("bitcoin", 120.0)
    assert (await api.client.put("/crypto/BTC/refresh", headers=api.auth)).is_success

    conn = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        # Older than the two good rows, and newer: neither the oldest nor the newest
        # price the change is computed from may be one of these.
        for price, hours in [
            (math.inf, -1),
            (5e-324, -2),
            (ABSURD, 1),
            (math.nan, 2),
            (-math.inf, 3),
            (ABSURD, 4),
        ]:
            await conn.execute(
                "INSERT INTO price_history (crypto_id, prices, ts) "
                "SELECT id, jsonb_build_object('usd', $1::float8), "
                "now() + make_interval(hours => $2) "
                "FROM cryptos WHERE symbol = 'BTC'",
                price,
                hours,
            )
    finally:
        await conn.close()

    r = await api.client.get("/crypto/BTC/stats", headers=api.auth)
    assert r.status_code == 200, r.text
    assert strict_json(r.text)["stats"] == {
        "min_price": 100.0,
        "max_price": 120.0,
        "avg_price": 110.0,
        "price_change": 20.0,
        "price_change_percent": 20.0,
        "records_count": 2,
    }
