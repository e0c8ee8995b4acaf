"""Quote currencies: the configured list, the choice a request makes, and the use cases
that store one observation's prices in every currency together."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from application.add_crypto import AddCrypto
from application.check_quote_currencies import CheckQuoteCurrencies
from application.list_coins import FindCandidates
from application.poll_cycle import PollCycle
from application.price_history import PriceHistory
from application.price_stats import PriceStatistics
from application.refresh_crypto import RefreshCrypto
from application.resolve_ticker import ResolveTicker
from domain.errors import InvalidInput, UnknownCurrency, UpstreamError
from domain.model import (
    CoinCandidate,
    CoinMatch,
    CoinRef,
    QuoteCurrencies,
    Ticker,
    usable_prices,
)
from tests.unit.fakes import (
    DictTickerCache,
    FakeClock,
    FakePriceSource,
    InMemoryCryptoRepository,
)

FOUR = QuoteCurrencies.parse("usd,eur,gbp,btc")
BITCOIN = CoinRef("bitcoin", "Bitcoin")
BTC_PRICES = {"usd": 45000.5, "eur": 41400.0, "gbp": 35500.25, "btc": 1.0}


# The configured list.


def test_the_first_code_is_the_default_and_the_list_is_normalised() -> None:
    currencies = QuoteCurrencies.parse(" USD, eur ,Btc")
    assert currencies.codes == ("usd", "eur", "btc")
    assert currencies.default == "usd"
    assert str(currencies) == "usd,eur,btc"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty item"),
        ("usd,", "empty item"),
        ("usd,,eur", "empty item"),
        ("usd,usd", "named twice"),
        ("usd,USD", "named twice"),
        ("us-d", "not a currency code"),
        ("€", "not a currency code"),
        ("1inch", "not a currency code"),
        ("averyveryverylongcode", "not a currency code"),
        ("usd;eur", "not a currency code"),
    ],
)
def test_a_malformed_list_is_refused(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        QuoteCurrencies.parse(raw)


# A request's choice.


@pytest.mark.parametrize(("raw", "chosen"), [(None, "usd"), ("eur", "eur"), ("EUR", "eur")])
def test_a_request_chooses_a_configured_currency_in_any_case(raw: str | None, chosen: str) -> None:
    assert FOUR.choose(raw) == chosen


@pytest.mark.parametrize("raw", ["", " ", "jpy", "usd,eur", "eur ", ["usd", "eur"], 7])
def test_anything_else_is_refused_naming_the_configured_ones(raw: object) -> None:
    with pytest.raises(UnknownCurrency, match="currency must be one of usd, eur, gbp, btc"):
        FOUR.choose(raw)
    assert issubclass(UnknownCurrency, InvalidInput)  # answered with 400


def test_a_long_unknown_value_is_cut_short_in_the_message() -> None:
    with pytest.raises(UnknownCurrency) as raised:
        FOUR.choose("x" * 10_000)
    assert len(raised.value.message) < 120


def test_usable_prices_keep_only_the_asked_currencies_with_a_usable_price() -> None:
    raw = {"usd": 1.5, "eur": "1.4", "gbp": float("nan"), "btc": True, "jpy": 200.0}
    assert usable_prices(raw, FOUR.codes) == {"usd": 1.5}


# The use cases.


@dataclass
class World:
    currencies: QuoteCurrencies = FOUR
    repo: InMemoryCryptoRepository = field(default_factory=InMemoryCryptoRepository)
    source: FakePriceSource = field(default_factory=FakePriceSource)
    cache: DictTickerCache = field(default_factory=DictTickerCache)
    clock: FakeClock = field(default_factory=FakeClock)

    def add(self) -> AddCrypto:
        return AddCrypto(
            self.repo,
            ResolveTicker(self.cache, self.source),
            FindCandidates(self.cache, self.source),
            self.source,
            self.clock,
            self.currencies,
        )


async def test_an_add_asks_every_currency_when_the_lookup_priced_only_one() -> None:
    world = World()
    world.source.coins["BTC"] = CoinMatch(BITCOIN, {"usd": 45000.0})  # /coins/markets: one
    world.source.quote("bitcoin", BTC_PRICES)
    crypto = await world.add()("BTC")
    assert crypto.prices == BTC_PRICES
    assert world.source.price_calls == [(["bitcoin"], False)]  # one call, every currency
    for code, price in BTC_PRICES.items():
        assert [p.price for p in await world.repo.history(Ticker("BTC"), 10, code)] == [price]


async def test_an_add_with_one_currency_spares_the_price_call() -> None:
    world = World(currencies=QuoteCurrencies.parse("eur"))
    world.source.coins["BTC"] = CoinMatch(BITCOIN, {"eur": 41400.0})
    crypto = await world.add()("BTC")
    assert (crypto.price_in("eur"), crypto.price_in("usd")) == (41400.0, None)
    assert world.source.price_calls == []


async def test_an_add_keeps_the_lookup_price_when_the_price_call_has_none() -> None:
    world = World()
    world.source.coins["BTC"] = CoinMatch(BITCOIN, {"usd": 45000.0})
    crypto = await world.add()("BTC")  # no quote for bitcoin: what the lookup gave is kept
    assert crypto.prices == {"usd": 45000.0}


async def test_a_chosen_coin_is_looked_up_in_the_default_currency() -> None:
    world = World(currencies=QuoteCurrencies.parse("eur,usd"))
    world.source.candidates["BTC"] = [CoinCandidate(BITCOIN, 1, 41400.0)]
    world.source.quote("bitcoin", {"usd": 45000.0, "eur": 41400.0})
    crypto = await world.add()("BTC", coin_id="bitcoin")
    assert world.source.candidate_calls == [("BTC", "eur")]
    assert crypto.prices == {"usd": 45000.0, "eur": 41400.0}


async def test_a_poll_and_a_refresh_store_every_currency_in_one_observation() -> None:
    world = World()
    world.source.coins["BTC"] = CoinMatch(BITCOIN, {})
    world.source.quote("bitcoin", BTC_PRICES)
    await world.add()("BTC")
    world.source.quote("bitcoin", {"usd": 46000.0, "eur": 42000.0})  # gbp, btc missing
    await PollCycle(world.repo, world.source, world.clock, history_limit=3)()
    world.source.quote("bitcoin", {"usd": 47000.0, "eur": 43000.0, "gbp": 36000.0})
    refreshed = await RefreshCrypto(world.repo, world.source, world.clock, 3)("BTC")
    assert refreshed.prices == {"usd": 47000.0, "eur": 43000.0, "gbp": 36000.0}
    history = PriceHistory(world.repo, 3)
    assert [p.price for p in (await history("BTC", "eur"))[1]] == [41400.0, 42000.0, 43000.0]
    assert [p.price for p in (await history("BTC", "gbp"))[1]] == [35500.25, 36000.0]
    assert [p.price for p in (await history("BTC", "btc"))[1]] == [1.0]
    _, stats = await PriceStatistics(world.repo, 3)("BTC", "eur")
    assert (stats.current_price, stats.records_count) == (43000.0, 3)
    assert stats.price_change == Decimal("1600")
    assert stats.price_change_percent == Decimal("3.86")  # 1600 / 41400
    _, btc_stats = await PriceStatistics(world.repo, 3)("BTC", "btc")
    assert (btc_stats.current_price, btc_stats.records_count) == (None, 1)


async def test_the_history_limit_counts_observations_not_prices_in_a_currency() -> None:
    world = World()
    world.source.coins["BTC"] = CoinMatch(BITCOIN, {})
    world.source.quote("bitcoin", {"usd": 1.0, "gbp": 0.8})
    await world.add()("BTC")
    for price in (2.0, 3.0, 4.0):
        world.source.quote("bitcoin", {"usd": price})
        await PollCycle(world.repo, world.source, world.clock, history_limit=3)()
    # the gbp price belonged to the first observation, which the limit let go
    assert (await PriceHistory(world.repo, 3)("BTC", "gbp"))[1] == []
    assert [p.price for p in (await PriceHistory(world.repo, 3)("BTC", "usd"))[1]] == [
        2.0,
        3.0,
        4.0,
    ]


async def test_the_check_reports_the_codes_coingecko_does_not_list(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = FakePriceSource(supported={"usd", "eur"})
    caplog.set_level(logging.ERROR)
    check = CheckQuoteCurrencies(source, QuoteCurrencies.parse("usd,eur,xyz,abc"))
    assert await check() == ["xyz", "abc"]
    assert [r.getMessage() for r in caplog.records] == [
        "QUOTE_CURRENCIES: CoinGecko lists no xyz, abc (of usd,eur,xyz,abc); no price will be "
        "stored in them until the setting names a code of /simple/supported_vs_currencies"
    ]


async def test_the_check_is_quiet_when_every_code_is_listed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    assert await CheckQuoteCurrencies(FakePriceSource(), FOUR)() == []
    assert caplog.records == []


async def test_the_check_raises_when_coingecko_cannot_say() -> None:
    source = FakePriceSource(fail=UpstreamError("CoinGecko answered 503"))
    with pytest.raises(UpstreamError):
        await CheckQuoteCurrencies(source, FOUR)()
