import math

import pytest

from domain.errors import InvalidPassword, InvalidTicker, InvalidUsername
from domain.model import PriceStats, Ticker, Username, check_new_password, valid_price


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
        ([1], None),
    ],
)
def test_valid_price(raw, ok):
    assert valid_price(raw) == ok


def test_stats_change_and_percent():
    stats = PriceStats(
        current_price=110,
        min_price=90,
        max_price=120,
        avg_price=105,
        oldest_price=100,
        newest_price=110.123,
        records_count=4,
    )
    assert stats.price_change == pytest.approx(10.123)
    assert stats.price_change_percent == 10.12
    empty = PriceStats(110, None, None, None, None, None, 0)
    assert empty.price_change is None and empty.price_change_percent is None
