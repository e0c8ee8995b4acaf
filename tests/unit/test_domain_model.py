import math
from decimal import Decimal

import pytest

from domain.errors import InvalidPassword, InvalidTicker, InvalidUsername
from domain.model import (
    MAX_PRICE,
    MIN_PRICE,
    PERCENT_DECIMALS,
    PRICE_DECIMALS,
    PriceStats,
    Ticker,
    Username,
    check_new_password,
    valid_price,
)


@pytest.mark.parametrize(
    "raw, value",
    [("btc", "BTC"), ("BTC", "BTC"), ("1inch", "1INCH"), ("a" * 20, "A" * 20), ("x", "X")],
)
def test_ticker_parse_upper_cases(raw, value):
    assert Ticker.parse(raw).value == value


@pytest.mark.parametrize(
    "raw",
    ["", " btc", "btc ", "b-c", "a" * 21, "ÄBC", "bt c", "btc\n", 5, None, ["btc"], "\uff11\uff12"],
)
def test_ticker_parse_refuses_bad_input(raw):
    with pytest.raises(InvalidTicker):
        Ticker.parse(raw)


def test_ticker_is_a_value():
    assert Ticker.parse("eth") == Ticker("ETH")
    assert str(Ticker("ETH")) == "ETH"
    with pytest.raises(InvalidTicker):
        Ticker("eth")  # the constructor takes the canonical form only


@pytest.mark.parametrize("name", ["abc", "a.b-c_d", "A" * 50, "user123"])
def test_username_accepts(name):
    assert Username(name).value == name


@pytest.mark.parametrize("name", ["ab", "a" * 51, "has space", "é" * 5, "semi;colon", ""])
def test_username_refuses(name):
    with pytest.raises(InvalidUsername):
        Username(name)


def test_password_rules_count_utf8_bytes():
    check_new_password("12345678")
    check_new_password("x" * 72)
    check_new_password("é" * 36)  # 72 bytes
    with pytest.raises(InvalidPassword, match="at least 8"):
        check_new_password("1234567")
    with pytest.raises(InvalidPassword, match="at most 72 bytes"):
        check_new_password("x" * 73)
    with pytest.raises(InvalidPassword, match="at most 72 bytes"):
        check_new_password("é" * 37)  # 37 characters, 74 bytes


@pytest.mark.parametrize("password", ["long enough \ud800", "\udcff" * 10])
def test_a_password_utf8_cannot_encode_is_refused_not_a_crash(password):
    with pytest.raises(InvalidPassword, match="Unicode"):
        check_new_password(password)


@pytest.mark.parametrize(
    "raw, ok",
    [
        (1, 1.0),
        (0.5, 0.5),
        (67187.3358936566, 67187.3358936566),
        (0, None),
        (-1, None),
        (None, None),
        ("12", None),
        (True, None),
        (math.nan, None),
        (math.inf, None),
        (-math.inf, None),
        ([1], None),
        (MIN_PRICE, MIN_PRICE),
        (MAX_PRICE, MAX_PRICE),
        (1e-12, 1e-12),
        (1e15, 1e15),
        (0.99e-12, None),
        (1.01e15, None),
        (5e-324, None),  # the smallest double: a change from it is infinite
        (1.7e308, None),  # CoinGecko once said so; a sum of two overflows float8
        (10**15, 1e15),
        (10**15 + 1, None),
        pytest.param(10**400, None, id="10**400"),  # no float holds it
    ],
)
def test_valid_price(raw, ok):
    assert valid_price(raw) == ok


def test_the_price_bounds_keep_every_statistic_finite():
    """A sum of 100 prices, and the change between the extremes in percent, stay
    inside a double (and so float8) by a factor of 1e100 at least."""
    room = 1e100
    assert math.isfinite(MAX_PRICE * 100 * room)
    assert math.isfinite((MAX_PRICE - MIN_PRICE) / MIN_PRICE * 100 * room)
    stats = PriceStats(
        current_price=MAX_PRICE,
        min_price=Decimal(MIN_PRICE),
        max_price=Decimal(MAX_PRICE),
        avg_price=Decimal(MAX_PRICE),
        oldest_price=Decimal(MIN_PRICE),
        newest_price=Decimal(MAX_PRICE),
        records_count=2,
    )
    assert math.isfinite(float(stats.price_change_percent))


def stats(
    oldest: str | None,
    newest: str | None,
    *,
    low: str | None = None,
    high: str | None = None,
    avg: str | None = None,
) -> PriceStats:
    def dec(value: str | None) -> Decimal | None:
        return None if value is None else Decimal(value)

    return PriceStats(
        current_price=1.0,
        min_price=dec(low),
        max_price=dec(high),
        avg_price=dec(avg),
        oldest_price=dec(oldest),
        newest_price=dec(newest),
        records_count=0 if oldest is None else 2,
    )


def test_stats_change_and_percent():
    moved = stats("100", "110.123")
    assert moved.price_change == Decimal("10.123")
    assert moved.price_change_percent == Decimal("10.12")
    empty = stats(None, None)
    assert empty.price_change is None and empty.price_change_percent is None
    assert empty.min_price is empty.max_price is empty.avg_price is None


def test_stats_change_is_exact_where_floats_are_not():
    assert 0.0007924 - 0.0012345 != -0.0004421  # the noise this guards against
    change = stats("0.0012345", "0.0007924").price_change
    assert change == Decimal("-0.0004421")
    assert repr(float(change)) == "-0.0004421"


def test_stats_round_prices_to_price_decimals():
    rounded = stats(
        "0.0012345",
        "0.0007924",
        low="0.000000014",
        high="45000.123456785",
        avg="0.00100483333333333333",
    )
    assert rounded.min_price == Decimal("0.00000001")
    assert rounded.max_price == Decimal("45000.12345679")
    assert rounded.avg_price == Decimal("0.00100483")
    for value in (rounded.min_price, rounded.max_price, rounded.avg_price, rounded.price_change):
        assert value is not None and value.as_tuple().exponent == -PRICE_DECIMALS
    percent = rounded.price_change_percent
    assert percent == Decimal("-35.81")
    assert percent is not None and percent.as_tuple().exponent == -PERCENT_DECIMALS


def test_a_satoshi_priced_coin_keeps_non_zero_stats():
    tiny = stats("0.00000001", "0.00000002", low="0.00000001", high="0.00000002", avg="1.5E-8")
    assert tiny.min_price == Decimal("0.00000001")
    assert tiny.avg_price == Decimal("0.00000002")
    assert tiny.price_change == Decimal("0.00000001")
    assert tiny.price_change_percent == Decimal("100")


@pytest.mark.parametrize(
    "oldest, newest, change, percent",
    [
        ("1", "1.000000005", "0.00000001", "0"),  # ties go away from zero
        ("1", "0.999999995", "-0.00000001", "0"),
        ("800", "801", "1", "0.13"),  # 0.125 %: half-even would give 0.12
        ("800", "799", "-1", "-0.13"),
    ],
)
def test_stats_ties_round_away_from_zero(oldest, newest, change, percent):
    tie = stats(oldest, newest)
    assert (tie.price_change, tie.price_change_percent) == (Decimal(change), Decimal(percent))


def test_stats_never_give_a_negative_zero():
    flat = stats("1.000000001", "1", low="-0.000000001")
    assert flat.price_change == 0 and not flat.price_change.is_signed()
    assert flat.min_price == 0 and not flat.min_price.is_signed()
    assert not stats("100000", "99999.999999").price_change_percent.is_signed()


def test_stats_round_huge_values_without_error():
    huge = stats("1E+300", "2E+300", high="2E+300")
    assert huge.max_price == Decimal("2E+300")
    assert huge.price_change == Decimal("1E+300")
    assert huge.price_change_percent == Decimal("100")
