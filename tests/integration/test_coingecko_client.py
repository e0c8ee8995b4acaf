"""The real CoinGecko client against the local fake CoinGecko, over real HTTP."""

from __future__ import annotations

import json
import logging
import math
import time
from datetime import UTC, datetime

import aiohttp
import pytest

from domain.errors import UpstreamError, UpstreamRateLimited
from domain.model import CoinRef, Quote, QuoteCurrencies, Ticker
from infrastructure.coingecko import CallBudget, CoinGeckoClient, CoinGeckoUnreachable
from infrastructure.settings import Settings
from tests.fakes.coingecko_server import (
    ABSENT,
    RATES,
    UPDATED_AT,
    Failure,
    FakeCoin,
    FakeCoinGecko,
)
from tests.support.clock import ManualClock
from tests.support.limits_clock import follow
from tests.support.ports import refusing_port

PRICES = "/simple/price"
MARKETS = "/coins/markets"
SUPPORTED = "/simple/supported_vs_currencies"
BTC_USD = 67187.3358936566


@pytest.fixture
async def fake():
    async with FakeCoinGecko() as server:
        yield server


@pytest.fixture
def clock(monkeypatch) -> ManualClock:
    fake = ManualClock()
    follow(monkeypatch, fake)
    return fake


@pytest.fixture
def limiter(clock):
    """The budget's waits go on a manual clock: recorded, not slept."""
    return CallBudget(calls_per_minute=1000, clock=clock, sleep=clock.sleep)


async def paused_for(budget: CallBudget) -> float:
    """Seconds the budget holds every call off for (it refuses a caller who may not wait)."""
    with pytest.raises(UpstreamRateLimited, match="rate-limiting us") as refused:
        await budget.acquire(max_wait=0)
    return refused.value.retry_after


@pytest.fixture
async def make_client(fake, limiter):
    clients: list[CoinGeckoClient] = []

    def make(**kwargs) -> CoinGeckoClient:
        kwargs.setdefault("limiter", limiter)
        kwargs.setdefault("timeout_seconds", 2.0)
        client = CoinGeckoClient(kwargs.pop("base_url", fake.base_url), **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
def client(make_client):
    return make_client()


def add_coins(fake: FakeCoinGecko, count: int) -> list[str]:
    ids = [f"coin-{n:04d}" for n in range(count)]
    for n, coin_id in enumerate(ids):
        fake.add_coin(FakeCoin(coin_id, f"c{n}", f"Coin {n}", price=n + 1.5))
    return ids


def usd(quotes: dict[str, Quote]) -> dict[str, float]:
    """The usd prices of ``prices()``'s quotes, without their times (each quote of a
    usd-only client has that one price and no other)."""
    assert all(set(quote.prices) == {"usd"} for quote in quotes.values())
    return {coin_id: quote.prices["usd"] for coin_id, quote in quotes.items()}


def sent_ids(fake: FakeCoinGecko) -> list[list[str]]:
    return [call.query["ids"].split(",") for call in fake.calls(PRICES)]


# --- find_coin -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ticker", "coin_id", "name"),
    [
        ("BTC", "bitcoin", "Bitcoin"),
        ("eth", "ethereum", "Ethereum"),
        ("DOGE", "dogecoin", "Dogecoin"),
    ],
)
async def test_a_ticker_shared_by_several_coins_resolves_to_the_famous_one(
    fake, client, ticker, coin_id, name
):
    match = await client.find_coin(Ticker.parse(ticker))
    assert match is not None
    assert match.ref == CoinRef(coin_id=coin_id, name=name)
    assert match.prices == {"usd": fake.coins[coin_id].price}
    [call] = fake.requests
    assert call.path == MARKETS
    assert call.query["symbols"] == ticker.lower()
    assert call.query["include_tokens"] == "top"
    assert call.query["vs_currency"] == "usd"
    assert call.query["precision"] == "full"


async def test_the_famous_coin_wins_even_when_the_answer_lists_every_coin_of_the_symbol(
    fake, client
):
    def entry(coin_id: object, symbol: str, price: float, rank: int | None) -> dict:
        return {"id": coin_id, "symbol": symbol, "name": str(coin_id).title(),
                "current_price": price, "market_cap_rank": rank}  # fmt: skip

    entries = [
        entry("batcat", "btc", 0.1, None),
        entry("wrapped", "wbtc", 9.0, 1),
        entry("bitcoin", "BTC", 67000, 1),
        entry("bitcoin-bridged", "btc", 2, 99),
        "junk",
        entry(None, "btc", 3, 0),
    ]
    fake.fail(Failure.json(200, entries), path=MARKETS)
    match = await client.find_coin(Ticker("BTC"))
    assert match is not None
    assert (match.ref.coin_id, match.prices) == ("bitcoin", {"usd": 67000.0})


async def test_an_unknown_ticker_is_none(fake, client):
    assert await client.find_coin(Ticker("NOSUCHCOIN42")) is None
    assert len(fake.calls(MARKETS)) == 1  # one call, no /search fallback


async def test_a_resolved_coin_without_a_usable_price_comes_without_one(fake, client):
    fake.set_price("solana", None)
    match = await client.find_coin(Ticker("SOL"))
    assert match is not None
    assert (match.ref.coin_id, match.prices) == ("solana", {})


async def test_find_coin_refuses_an_answer_that_is_not_a_list(fake, client):
    fake.fail(Failure.json(200, {"bitcoin": {"usd": 1}}), path=MARKETS)
    with pytest.raises(UpstreamError, match="unexpected answer to /coins/markets"):
        await client.find_coin(Ticker("BTC"))


# --- prices ----------------------------------------------------------------------------


async def test_prices_asks_once_for_distinct_ids(fake, client):
    prices = await client.prices(["bitcoin", "ethereum", "bitcoin", "ethereum"])
    assert usd(prices) == {"bitcoin": BTC_USD, "ethereum": 3421.1}
    [call] = fake.calls(PRICES)
    assert call.query == {
        "ids": "bitcoin,ethereum",
        "vs_currencies": "usd",
        "include_last_updated_at": "true",
        "precision": "full",
    }


async def test_prices_come_with_coingeckos_times_which_move_only_with_the_price(fake, client):
    first = await client.prices(["bitcoin"])
    at = datetime.fromtimestamp(UPDATED_AT, UTC)
    assert first == {"bitcoin": Quote({"usd": BTC_USD}, at)}
    fake.set_price("ethereum", 3421.1)  # the same price: the same time
    fake.set_price("bitcoin", 67190.0, updated_at=UPDATED_AT + 45)
    again = await client.prices(["bitcoin", "ethereum"])
    assert again["bitcoin"].at == datetime.fromtimestamp(UPDATED_AT + 45, UTC)
    assert again["ethereum"].at == datetime.fromtimestamp(UPDATED_AT, UTC)


@pytest.mark.parametrize("sent", [None, "soon", True, 1e300, float("nan")])
async def test_a_price_with_no_usable_time_comes_without_one(fake, client, sent):
    entry: dict = {"usd": 5.5} if sent is None else {"usd": 5.5, "last_updated_at": sent}
    fake.fail(Failure(200, json.dumps({"bitcoin": entry}).encode()), path=PRICES)
    assert await client.prices(["bitcoin"]) == {"bitcoin": Quote({"usd": 5.5}, None)}


async def test_a_sub_cent_price_is_asked_and_kept_whole(fake, client):
    fake.add_coin(FakeCoin("tiny", "tiny", "Tiny", price=0.000012345678912, market_cap=1.0))
    # Without precision=full, CoinGecko rounds it (the stand-in as it does).
    async with aiohttp.ClientSession() as session:
        params = {"ids": "tiny", "vs_currencies": "usd"}
        async with session.get(fake.base_url + PRICES, params=params) as response:
            assert (await response.json())["tiny"]["usd"] == 0.0000123457
    assert usd(await client.prices(["tiny"])) == {"tiny": 0.000012345678912}
    match = await client.find_coin(Ticker("TINY"))
    assert match is not None and match.prices == {"usd": 0.000012345678912}


async def test_a_resolved_coin_comes_with_coingeckos_time_of_its_price(fake, client):
    fake.set_price("bitcoin", 67190.0, updated_at=UPDATED_AT + 45)
    match = await client.find_coin(Ticker("BTC"))
    assert match is not None and match.at == datetime.fromtimestamp(UPDATED_AT + 45, UTC)


async def test_no_ids_no_call(fake, client):
    assert usd(await client.prices([])) == {}
    assert fake.requests == []


async def test_prices_come_in_batches_of_100(fake, client):
    ids = add_coins(fake, 250)
    prices = await client.prices(ids)
    assert usd(prices) == {coin_id: n + 1.5 for n, coin_id in enumerate(ids)}
    batches = sent_ids(fake)
    assert [len(batch) for batch in batches] == [100, 100, 50]
    assert [i for batch in batches for i in batch] == ids


async def test_a_414_halves_the_batch_for_this_call_and_the_next(fake, client):
    ids = add_coins(fake, 250)
    fake.max_url_length = 700  # 100 ids make a URL of about 980 characters, 50 of about 530
    prices = await client.prices(ids)
    assert len(prices) == 250
    assert [len(batch) for batch in sent_ids(fake)] == [100, 50, 50, 50, 50, 50]
    assert client.batch_size == 50
    fake.clear_requests()
    assert len(await client.prices(ids[:120])) == 120
    assert [len(batch) for batch in sent_ids(fake)] == [50, 50, 20]


async def test_a_414_even_for_one_id_is_an_upstream_error(fake, client):
    fake.max_url_length = 20
    with pytest.raises(UpstreamError, match="414"):
        await client.prices(["bitcoin", "ethereum"])
    assert [len(batch) for batch in sent_ids(fake)] == [2, 1, 1]


async def test_missing_null_and_unusable_prices_are_skipped_and_logged(fake, client, caplog):
    fake.set_price("ethereum", ABSENT)
    fake.set_price("solana", None)
    fake.set_price("tether", "1.00")
    fake.set_price("dogecoin", -0.16)
    fake.set_price("batcat", True)
    fake.add_coin(FakeCoin("zero-coin", "zero", "Zero", price=0))
    fake.add_coin(FakeCoin("nan-coin", "nan", "NaN", price=math.nan))
    ids = ["bitcoin", "ethereum", "solana", "tether", "dogecoin", "batcat", "zero-coin"]
    ids += ["nan-coin", "no-such-coin"]
    with caplog.at_level(logging.WARNING, logger="infrastructure.coingecko"):
        prices = await client.prices(ids)
    assert usd(prices) == {"bitcoin": BTC_USD}
    logged = caplog.text
    for coin_id in ids[1:]:
        assert coin_id in logged


@pytest.mark.parametrize(
    "absurd", [1.7e308, 1e16, 1e-13, 5e-324, pytest.param(10**400, id="10**400")]
)
async def test_absurd_prices_are_skipped_and_logged_like_missing_ones(fake, client, caplog, absurd):
    fake.set_price("ethereum", absurd)
    with caplog.at_level(logging.WARNING, logger="infrastructure.coingecko"):
        prices = await client.prices(["bitcoin", "ethereum"])
        match = await client.find_coin(Ticker("ETH"))
    assert usd(prices) == {"bitcoin": BTC_USD}
    assert "unusable prices (left out): ethereum.usd=" in caplog.text
    assert match is not None and match.prices == {}


async def test_a_failed_batch_leaves_the_others_standing(fake, client, caplog):
    ids = add_coins(fake, 250)
    fake.fail(Failure.server_error(502, "Bad Gateway"), path=PRICES, times=1)
    with caplog.at_level(logging.WARNING, logger="infrastructure.coingecko"):
        prices = await client.prices(ids)
    assert set(prices) == set(ids[100:])
    assert len(fake.calls(PRICES)) == 3
    assert "1 of 3 price batches failed" in caplog.text


async def test_a_timeout_stops_the_remaining_batches(fake, make_client):
    client = make_client(timeout_seconds=0.3)
    ids = add_coins(fake, 250)
    fake.fail(Failure.hang(), path=PRICES, times=1)
    with pytest.raises(CoinGeckoUnreachable, match=r"did not answer within 0\.3 s"):
        await client.prices(ids)
    assert len(fake.calls(PRICES)) == 1


async def test_prices_refuse_an_answer_that_is_not_an_object(fake, client):
    fake.fail(Failure.json(200, [{"usd": 1}]), path=PRICES)
    with pytest.raises(UpstreamError, match="unexpected answer to /simple/price"):
        await client.prices(["bitcoin"])


# --- quote currencies ------------------------------------------------------------------

USD_EUR_BTC = QuoteCurrencies(("usd", "eur", "btc"))


class Month:
    """MonthlyCalls that records each call's ``polling``."""

    budget = 10_000

    def __init__(self) -> None:
        self.taken: list[bool] = []

    async def take(self, *, polling: bool) -> None:
        self.taken.append(polling)

    async def used(self) -> int:
        return len(self.taken)


async def test_prices_ask_every_currency_in_one_call_and_quote_each(fake, make_client):
    client = make_client(currencies=USD_EUR_BTC)
    prices = await client.prices(["bitcoin", "ethereum"])
    [call] = fake.calls(PRICES)
    assert call.query["vs_currencies"] == "usd,eur,btc"  # configured order
    assert prices["bitcoin"].prices == {"usd": BTC_USD, "eur": BTC_USD * RATES["eur"], "btc": 1.0}
    assert prices["ethereum"].prices == pytest.approx(
        {"usd": 3421.1, "eur": 3421.1 * RATES["eur"], "btc": 3421.1 / BTC_USD}
    )
    assert prices["bitcoin"].at == datetime.fromtimestamp(UPDATED_AT, UTC)


async def test_a_currency_missing_or_unusable_for_a_coin_is_left_out_of_it_alone(
    fake, make_client, caplog
):
    client = make_client(currencies=USD_EUR_BTC)
    fake.set_price("ethereum", None, currency="eur")
    fake.set_price("solana", ABSENT, currency="btc")
    fake.set_price("tether", "1.00")  # usd, and so eur and btc: nothing usable
    fake.set_price("dogecoin", ABSENT)  # not in the answer at all
    with caplog.at_level(logging.WARNING, logger="infrastructure.coingecko"):
        prices = await client.prices(["bitcoin", "ethereum", "solana", "tether", "dogecoin"])
    assert {coin_id: set(quote.prices) for coin_id, quote in prices.items()} == {
        "bitcoin": {"usd", "eur", "btc"},
        "ethereum": {"usd", "btc"},
        "solana": {"usd", "eur"},
    }
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "CoinGecko sent no price for 1 ids (skipped): dogecoin",
        "CoinGecko sent no price in some currencies (left out): solana.btc",
        "CoinGecko sent unusable prices (left out): ethereum.eur=None, tether.usd='1.00', "
        "tether.eur='1.00', tether.btc='1.00'",
    ]


async def test_a_code_coingecko_does_not_answer_leaves_the_others(fake, make_client, caplog):
    client = make_client(currencies=QuoteCurrencies(("usd", "xyz")))
    with caplog.at_level(logging.WARNING, logger="infrastructure.coingecko"):
        prices = await client.prices(["bitcoin", "ethereum"])
        again = await client.prices(["bitcoin"])
    assert fake.calls(PRICES)[0].query["vs_currencies"] == "usd,xyz"
    assert prices["bitcoin"].prices == again["bitcoin"].prices == {"usd": BTC_USD}
    # said once, not once per coin and batch
    assert [r.getMessage() for r in caplog.records] == [
        "CoinGecko sent no price in xyz for any coin; is it one of its vs_currencies?"
    ]


async def test_a_coin_is_resolved_with_its_price_in_the_default_currency(fake, make_client):
    client = make_client(currencies=QuoteCurrencies(("eur", "usd")))
    match = await client.find_coin(Ticker("BTC"))
    assert match is not None
    assert match.prices == {"eur": BTC_USD * RATES["eur"]}
    assert fake.calls(MARKETS)[0].query["vs_currency"] == "eur"
    fake.set_price("bitcoin", None, currency="eur")
    match = await client.find_coin(Ticker("BTC"))
    assert match is not None and match.prices == {}


@pytest.mark.parametrize("currency", ["usd", "eur", "btc"])
async def test_the_coins_of_a_ticker_are_priced_in_the_currency_asked(fake, client, currency):
    coins = await client.coins_with_symbol(Ticker("BTC"), currency)
    assert [c.ref.coin_id for c in coins] == ["bitcoin", "bitcoin-bridged-zksync", "batcat"]
    [call] = fake.calls(MARKETS)
    assert call.query["vs_currency"] == currency
    assert call.query["include_tokens"] == "all"
    bitcoin = {"usd": BTC_USD, "eur": BTC_USD * RATES["eur"], "btc": 1.0}[currency]
    assert coins[0].current_price == bitcoin
    assert coins[0].price_at == datetime.fromtimestamp(UPDATED_AT, UTC)


async def test_supported_currencies_are_coingeckos_list_in_lower_case(fake, client):
    assert await client.supported_currencies() == set(RATES)
    fake.supported = ["USD", "eur"]
    assert await client.supported_currencies() == {"usd", "eur"}
    assert [call.query for call in fake.calls(SUPPORTED)] == [{}, {}]


@pytest.mark.parametrize(
    "body", [{"usd": True}, ["usd", 1], "usd", None], ids=["object", "number", "string", "null"]
)
async def test_supported_currencies_refuse_an_answer_that_is_not_a_list_of_codes(
    fake, client, body
):
    fake.fail(Failure.json(200, body), path=SUPPORTED)
    with pytest.raises(UpstreamError, match=f"unexpected answer to {SUPPORTED}"):
        await client.supported_currencies()


async def test_supported_currencies_fail_like_any_call(fake, client):
    fake.fail(Failure.server_error(503), path=SUPPORTED)
    with pytest.raises(UpstreamError, match="CoinGecko answered 503"):
        await client.supported_currencies()


async def test_supported_currencies_are_a_poller_call_that_never_waits_long(
    fake, make_client, clock
):
    month = Month()
    client = make_client(month=month, limiter=CallBudget(1, clock=clock, sleep=clock.sleep))
    await client.supported_currencies()
    assert month.taken == [True]  # out of the polls' share, not the adds'
    with pytest.raises(UpstreamRateLimited):
        await client.supported_currencies()  # no slot within a request's wait
    assert clock.sleeps == [] and len(fake.calls(SUPPORTED)) == 1
    assert month.taken == [True]  # a call refused a slot is not counted


# --- rate limits -----------------------------------------------------------------------


async def test_a_429_pauses_every_caller_for_its_retry_after(fake, client, limiter, clock):
    fake.fail(Failure.rate_limited(119), path=PRICES, times=1)
    with pytest.raises(UpstreamRateLimited) as limited:
        await client.prices(["bitcoin"])
    assert limited.value.retry_after == 119
    assert limited.value.message == "CoinGecko is rate-limiting us; retry in 119 s"
    assert await paused_for(limiter) == 119
    calls = len(fake.requests)
    clock.advance(1)
    with pytest.raises(UpstreamRateLimited, match="retry in 118 s"):
        await client.find_coin(Ticker("ETH"))  # another path, the same pause
    assert clock.sleeps == []  # refused at once, without waiting
    assert len(fake.requests) == calls  # and without asking CoinGecko


@pytest.mark.parametrize("retry_after", [None, "soon"])
async def test_a_429_without_a_usable_retry_after_pauses_for_a_minute(
    fake, client, limiter, retry_after
):
    fake.fail(Failure.rate_limited(retry_after), times=1)
    with pytest.raises(UpstreamRateLimited) as limited:
        await client.find_coin(Ticker("BTC"))
    assert limited.value.retry_after == 60
    assert await paused_for(limiter) == 60


async def test_a_429_in_a_later_batch_keeps_the_earlier_ones_and_stops(
    fake, client, limiter, caplog
):
    ids = add_coins(fake, 250)
    fake.fail(Failure.rate_limited(30), path=PRICES, times=1, after=1)
    with caplog.at_level(logging.WARNING, logger="infrastructure.coingecko"):
        prices = await client.prices(ids)
    assert set(prices) == set(ids[:100])
    assert len(fake.calls(PRICES)) == 2  # the third batch is not asked for
    assert await paused_for(limiter) == 30
    assert "50 ids not asked" in caplog.text


async def test_a_429_on_the_first_batch_stops_at_once(fake, client):
    ids = add_coins(fake, 250)
    fake.fail(Failure.rate_limited(30), path=PRICES, times=1)
    with pytest.raises(UpstreamRateLimited):
        await client.prices(ids, wait=True)
    assert len(fake.calls(PRICES)) == 1


async def test_the_poller_waits_out_a_429_while_requests_fail_fast(fake, make_client, clock):
    client = make_client(request_max_wait=0.1)
    fake.fail(Failure.rate_limited(1), path=PRICES, times=1)
    with pytest.raises(UpstreamRateLimited):
        await client.prices(["bitcoin"])
    with pytest.raises(UpstreamRateLimited, match="retry in 1 s"):
        await client.prices(["bitcoin"], wait=False)
    assert clock.sleeps == []
    assert usd(await client.prices(["bitcoin"], wait=True)) == {"bitcoin": BTC_USD}
    assert clock.sleeps == [1]  # the poller waited out the Retry-After
    assert len(fake.calls(PRICES)) == 2


async def test_our_own_budget_refuses_before_coingecko_is_asked(fake, make_client):
    client = make_client(limiter=CallBudget(calls_per_minute=2))
    await client.prices(["bitcoin"])
    await client.find_coin(Ticker("BTC"))
    with pytest.raises(UpstreamRateLimited, match="budget of 2 CoinGecko calls a minute"):
        await client.prices(["bitcoin"])
    assert len(fake.requests) == 2


# --- failures --------------------------------------------------------------------------


async def test_a_5xx_with_an_html_page_is_an_upstream_error(fake, client):
    fake.fail(Failure.server_error(503))
    with pytest.raises(UpstreamError) as failed:
        await client.prices(["bitcoin"])
    assert not isinstance(failed.value, UpstreamRateLimited)
    assert failed.value.message == (
        "CoinGecko answered 503 (503 Service Temporarily Unavailable); try again later"
    )


async def test_malformed_json_with_200_is_an_upstream_error(fake, client):
    fake.fail(Failure.malformed_json())
    with pytest.raises(UpstreamError, match=r"malformed answer \(not JSON\) to /simple/price"):
        await client.prices(["bitcoin"])
    with pytest.raises(UpstreamError, match="malformed answer"):
        await client.find_coin(Ticker("BTC"))


async def test_a_missing_key_is_reported_with_its_code_and_a_hint(fake, client, caplog):
    fake.fail(Failure.key_missing())
    with (
        caplog.at_level(logging.WARNING, logger="infrastructure.coingecko"),
        pytest.raises(UpstreamError) as failed,
    ):
        await client.find_coin(Ticker("BTC"))
    assert failed.value.message.startswith("CoinGecko answered 401 (error 10002: API Key Missing")
    assert "set COINGECKO_API_KEY" in failed.value.message
    assert "error_code=10002" in caplog.text


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (
            Failure.json(
                403, {"error": {"status": {"error_code": 10005, "error_message": "Nope"}}}
            ),
            "CoinGecko answered 403 (error 10005: Nope); this endpoint is not part of",
        ),
        (Failure.json(404, {"error": "coin not found"}), "CoinGecko answered 404 (coin not found)"),
        (Failure.json(400, [1, 2]), "CoinGecko answered 400 ([1, 2])"),
        (Failure.json(500, "oops"), 'CoinGecko answered 500 ("oops"); try again later'),
        (Failure(502, b""), "CoinGecko answered 502; try again later"),
        (Failure(500, b"{not json", "application/json"), "CoinGecko answered 500 ({not json)"),
        (
            Failure(403, b"<html><body>error code: 1020 Access denied</body></html>", "text/html"),
            "CoinGecko answered 403 (error 1020: error code: 1020 Access denied); "
            "CoinGecko's CDN denied access",
        ),
        (Failure(301, b"", headers={"Location": "http://elsewhere/"}), "CoinGecko answered 301"),
    ],
)
async def test_error_bodies_of_every_shape_give_a_readable_message(fake, client, failure, message):
    fake.fail(failure)
    with pytest.raises(UpstreamError) as failed:
        await client.prices(["bitcoin"])
    assert failed.value.message.startswith(message)
    assert len(fake.requests) == 1  # a redirect is not followed (the key would go along)


async def test_a_hang_costs_about_the_timeout(fake, make_client):
    client = make_client(timeout_seconds=0.5)
    fake.fail(Failure.hang(30))
    started = time.monotonic()
    with pytest.raises(CoinGeckoUnreachable) as failed:
        await client.find_coin(Ticker("BTC"))
    elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 10  # the 0.5 s timeout, not the 30 s hang
    assert failed.value.message == "CoinGecko did not answer within 0.5 s; try again later"


async def test_a_slow_answer_within_the_timeout_is_fine(fake, make_client):
    client = make_client(timeout_seconds=2)
    fake.fail(Failure.hang(0.2), times=1)
    assert usd(await client.prices(["solana"])) == {"solana": 172.45}


async def test_a_refused_connection_is_an_upstream_error(make_client):
    with refusing_port() as port:
        client = make_client(base_url=f"http://127.0.0.1:{port}/api/v3")
        with pytest.raises(
            CoinGeckoUnreachable, match=f"cannot connect to CoinGecko at 127.0.0.1:{port}"
        ):
            await client.prices(["bitcoin"])


# --- keys and plans --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "header"), [("demo", "x-cg-demo-api-key"), ("pro", "x-cg-pro-api-key")]
)
async def test_the_key_goes_in_the_header_of_its_plan_never_in_the_query(
    fake, make_client, plan, header
):
    fake.plan, fake.api_key = plan, "CG-secret"
    client = make_client(plan=plan, api_key="CG-secret")
    assert usd(await client.prices(["bitcoin"])) == {"bitcoin": BTC_USD}
    assert (await client.find_coin(Ticker("ETH"))) is not None
    for call in fake.requests:
        assert call.headers[header] == "CG-secret"
        other = {"x-cg-demo-api-key", "x-cg-pro-api-key"} - {header}
        assert not other & {h.lower() for h in call.headers}
        assert not any("CG-secret" in value for value in call.query.values())
        assert not any(name.startswith("x_cg_") for name in call.query)


async def test_the_public_plan_sends_no_key(fake, client):
    await client.prices(["bitcoin"])
    [call] = fake.requests
    assert not {h.lower() for h in call.headers} & {"x-cg-demo-api-key", "x-cg-pro-api-key"}


async def test_a_wrong_key_or_no_key_on_a_keyed_host_is_reported(fake, make_client):
    fake.plan, fake.api_key = "demo", "CG-right"
    with pytest.raises(UpstreamError, match="error 10002"):
        await make_client(plan="demo", api_key="CG-wrong").prices(["bitcoin"])
    with pytest.raises(UpstreamError, match="error 10002"):
        await make_client().prices(["bitcoin"])


async def test_a_pro_key_on_the_public_host_gets_a_hint_to_fix_the_plan(fake, make_client):
    client = make_client(plan="pro", api_key="CG-secret")
    with pytest.raises(UpstreamError, match=r"error 10010.*set COINGECKO_API_PLAN=pro"):
        await client.prices(["bitcoin"])


async def test_from_settings_uses_the_plan_key_and_timeout(fake, limiter):
    fake.plan, fake.api_key = "pro", "CG-pro"
    settings = Settings.from_env(
        {
            "COINGECKO_BASE_URL": fake.base_url,
            "COINGECKO_API_KEY": "CG-pro",
            "COINGECKO_API_PLAN": "pro",
            "COINGECKO_TIMEOUT_SECONDS": "0.4",
            "QUOTE_CURRENCIES": "usd,EUR",
        }
    )
    client = CoinGeckoClient.from_settings(settings, limiter)
    try:
        quotes = await client.prices(["bitcoin"])
        assert quotes["bitcoin"].prices == {"usd": BTC_USD, "eur": BTC_USD * RATES["eur"]}
        assert fake.requests[0].headers["x-cg-pro-api-key"] == "CG-pro"
        assert fake.requests[0].query["vs_currencies"] == "usd,eur"
        fake.fail(Failure.hang())
        with pytest.raises(CoinGeckoUnreachable, match=r"within 0\.4 s"):
            await client.ping()
    finally:
        await client.close()


@pytest.mark.parametrize(("plan", "key"), [("demo", None), ("pro", ""), ("gold", "CG-x")])
def test_a_plan_without_its_key_or_an_unknown_plan_is_refused(limiter, plan, key):
    with pytest.raises(ValueError, match="plan"):
        CoinGeckoClient("http://127.0.0.1:1", plan=plan, api_key=key, limiter=limiter)


# --- session ---------------------------------------------------------------------------


async def test_a_given_session_is_used_and_left_open(fake, limiter):
    async with aiohttp.ClientSession() as session:
        client = CoinGeckoClient(fake.base_url, limiter=limiter, session=session)
        await client.ping()
        await client.close()
        assert not session.closed
        assert [call.path for call in fake.requests] == ["/ping"]


async def test_the_client_works_again_after_close(fake, client):
    await client.ping()
    await client.close()
    await client.ping()
    assert len(fake.calls("/ping")) == 2
