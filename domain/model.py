"""Entities and value objects."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal

from domain.errors import InvalidPassword, InvalidTicker, InvalidUsername, UnknownCurrency

_TICKER = re.compile(r"[A-Z0-9]{1,20}")
# CoinGecko's vs_currencies codes are lower-case letters (usd, eur, btc, sats).
_CURRENCY = re.compile(r"[a-z][a-z0-9]{0,9}")
_USERNAME = re.compile(r"[A-Za-z0-9_.\-]{3,50}")
PASSWORD_MIN_BYTES = 8
PASSWORD_MAX_BYTES = 72  # bcrypt reads no more than 72 bytes
# Price statistics are given to 8 decimal places (a satoshi, 0.00000001, stays
# visible) and percentages to 2; ties round away from zero, as PostgreSQL's round()
# on numeric does.
PRICE_DECIMALS = 8
PERCENT_DECIMALS = 2
ROUNDING = ROUND_HALF_UP
# The prices that make sense, in any quote currency (anything else from upstream is skipped): a
# quadrillion dollars at most, a trillionth at least. Every statistic over them stays
# finite with room to spare (a sum of 100 prices is at most 1e17, a change at most
# 1e29 percent), where one upstream 1.7e308 overflows a float8 sum and a change from
# 5e-324 is infinite.
MIN_PRICE = 1e-12
MAX_PRICE = 1e15


@dataclass(frozen=True, slots=True)
class Ticker:
    """A crypto's ticker symbol, upper-case: 1 to 20 ASCII letters or digits."""

    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, str) or not _TICKER.fullmatch(self.value):
            raise InvalidTicker("symbol must be 1 to 20 letters or digits, such as BTC")

    @classmethod
    def parse(cls, raw: object) -> Ticker:
        """Build a ticker from user input: trims nothing, upper-cases letters."""
        if not isinstance(raw, str):
            raise InvalidTicker("symbol must be a string, such as BTC")
        if not raw.isascii():
            raise InvalidTicker("symbol must be 1 to 20 letters or digits, such as BTC")
        return cls(raw.upper())

    def __str__(self) -> str:
        return self.value


Prices = Mapping[str, float]
"""One observation's price in each quote currency it has one in, by lower-case code
(``{"usd": 67187.33, "eur": 61850.2}``); a currency with no usable price is absent."""


@dataclass(frozen=True, slots=True)
class QuoteCurrencies:
    """The currencies prices are quoted in (CoinGecko's ``vs_currencies`` codes, lower
    case), in the configured order: the first is the default of every answer."""

    codes: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.codes:
            raise ValueError("name at least one currency, such as usd")
        for code in self.codes:
            if not isinstance(code, str) or not _CURRENCY.fullmatch(code):
                raise ValueError(
                    f"{code!r} is not a currency code: lower-case letters and digits, "
                    "such as usd, eur or btc"
                )
        if len(set(self.codes)) != len(self.codes):
            raise ValueError(f"a currency is named twice in {','.join(self.codes)}")

    @classmethod
    def parse(cls, raw: str) -> QuoteCurrencies:
        """From a comma-separated list (``usd,eur,btc``; spaces around a code and its
        case do not matter). Raises ValueError for a malformed list."""
        codes = tuple(part.strip().lower() for part in raw.split(","))
        if any(not code for code in codes):
            raise ValueError(f"{raw!r} has an empty item: write codes such as usd,eur")
        return cls(codes)

    @property
    def default(self) -> str:
        return self.codes[0]

    def choose(self, raw: object | None) -> str:
        """The currency a request asks for (``?currency=EUR``, any case), the default
        when it asks for none. Raises UnknownCurrency for anything not configured: an
        empty value, a list, another code."""
        if raw is None:
            return self.default
        if isinstance(raw, str) and raw.lower() in self.codes:
            return raw.lower()
        shown = repr(raw) if isinstance(raw, str) else "several values"
        raise UnknownCurrency(f"currency must be one of {', '.join(self.codes)} (got {shown[:40]})")

    def covered_by(self, prices: Prices) -> bool:
        """Whether ``prices`` has a price in every configured currency."""
        return all(code in prices for code in self.codes)

    def __str__(self) -> str:
        return ",".join(self.codes)


def usable_prices(raw: Mapping[str, object], currencies: Iterable[str]) -> dict[str, float]:
    """The usable price (``valid_price``) of each of ``currencies`` that ``raw`` has."""
    kept = {}
    for code in currencies:
        price = valid_price(raw.get(code))
        if price is not None:
            kept[code] = price
    return kept


@dataclass(frozen=True, slots=True)
class Username:
    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, str) or not _USERNAME.fullmatch(self.value):
            raise InvalidUsername(
                "username must be 3 to 50 characters: letters, digits, '_', '.' or '-'"
            )

    def __str__(self) -> str:
        return self.value


def check_new_password(password: str) -> None:
    """The rules a password must meet at registration."""
    try:
        size = len(password.encode("utf-8"))
    except UnicodeEncodeError:  # an unpaired surrogate: bcrypt hashes UTF-8 bytes
        raise InvalidPassword("password must be valid Unicode text") from None
    if size < PASSWORD_MIN_BYTES:
        raise InvalidPassword(f"password must be at least {PASSWORD_MIN_BYTES} bytes long")
    if size > PASSWORD_MAX_BYTES:
        raise InvalidPassword(
            f"password must be at most {PASSWORD_MAX_BYTES} bytes of UTF-8 "
            f"(this one is {size}); bcrypt would ignore the rest"
        )


def valid_price(value: object) -> float | None:
    """A usable price: a number from MIN_PRICE to MAX_PRICE (booleans are not numbers
    here; NaN and the infinities are outside)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        price = float(value)
    except OverflowError:  # an int beyond any float
        return None
    if not MIN_PRICE <= price <= MAX_PRICE:
        return None
    return price


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a valid bearer token stands for, and until when: its exp, in Unix seconds
    as the token carries it (no datetime made on every request for the stream's sake)."""

    user_id: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    password_hash: str


@dataclass(frozen=True, slots=True)
class CoinRef:
    """How CoinGecko knows a coin: its id (``bitcoin``) and its name."""

    coin_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Quote:
    """A coin's price as CoinGecko gives it: in each quote currency it had a usable one
    in (never none), and CoinGecko's time of it (None when the answer carried no usable
    one). ``domain.rules.PriceMoment`` turns it into the moment it is stored under."""

    prices: Prices
    at: datetime | None


@dataclass(frozen=True, slots=True)
class CoinMatch:
    """The coin a ticker resolves to, with its current prices in the currencies the
    answer carried usable ones in (often only one: ``/coins/markets`` quotes one
    currency), and CoinGecko's time of them when it carried one too."""

    ref: CoinRef
    prices: Prices
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CoinCandidate:
    """One of the coins CoinGecko lists under a ticker, for a person to choose from:
    its market-cap rank (None: unranked) and its current price in the currency asked
    for (None: no usable one),
    with CoinGecko's time of that price (``price_at``, when the answer carried one; not
    cached: only a fresh answer's price is ever stored)."""

    ref: CoinRef
    market_cap_rank: int | None
    current_price: float | None
    price_at: datetime | None = None


def best_rank_first(candidates: Iterable[CoinCandidate]) -> list[CoinCandidate]:
    """Rank 1 first, unranked last; coins of equal rank keep their order (CoinGecko
    sends them by market cap)."""
    return sorted(candidates, key=lambda c: (c.market_cap_rank is None, c.market_cap_rank or 0))


@dataclass(frozen=True, slots=True)
class Crypto:
    """A tracked crypto and its latest observation: its price in each quote currency
    the observation has one in. Not hashable (``prices`` is a mapping)."""

    symbol: Ticker
    coin_id: str
    name: str
    prices: Prices
    last_updated: datetime
    id: int | None = None

    def price_in(self, currency: str) -> float | None:
        """The current price in ``currency``; None when the latest observation has
        none in it (a currency configured after it was made)."""
        return self.prices.get(currency)


@dataclass(frozen=True, slots=True)
class TrackedCoin:
    """The little the poller needs to know of a tracked crypto."""

    crypto_id: int
    coin_id: str


@dataclass(frozen=True, slots=True)
class PriceUpdate:
    """A new observation for one stored crypto, to become its current prices and a
    history row (one row holds its price in every currency)."""

    crypto_id: int
    prices: Prices
    at: datetime


@dataclass(frozen=True, slots=True)
class PricePoint:
    """One observation's price in one currency."""

    price: float
    timestamp: datetime


def round_to(value: Decimal, places: int) -> Decimal:
    """``value`` to ``places`` decimal places (ROUNDING), exactly, however large it is;
    never a negative zero."""
    # quantize fails when the result needs more digits than the context's precision.
    digits = max(value.adjusted() + 1, 1) + places
    rounded = value.quantize(
        Decimal(1).scaleb(-places), context=Context(prec=max(digits, 28), rounding=ROUNDING)
    )
    return rounded.copy_abs() if rounded.is_zero() else rounded


@dataclass(frozen=True, slots=True)
class PriceStats:
    """Aggregates over a crypto's stored history; ``of`` is the one place they are
    computed (every repository calls it).

    The prices are exact decimals (summed and subtracted in ``Decimal``, not in
    floating point, so a change never reads -0.0004421000000000008). ``min_price``,
    ``max_price``, ``avg_price`` and ``price_change`` are given to PRICE_DECIMALS
    places, ``price_change_percent`` to PERCENT_DECIMALS; ``current_price`` is the
    stored price, untouched.
    """

    current_price: float | None  # None: the latest observation has none in the currency
    min_price: Decimal | None
    max_price: Decimal | None
    avg_price: Decimal | None
    oldest_price: Decimal | None
    newest_price: Decimal | None
    records_count: int

    def __post_init__(self) -> None:
        for name in ("min_price", "max_price", "avg_price"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, round_to(value, PRICE_DECIMALS))

    @classmethod
    def of(cls, current_price: float | None, prices: Iterable[float]) -> PriceStats:
        """The stats of a history (``prices`` oldest first): only prices ``valid_price``
        accepts count (older rows may hold others), each read to the 15 significant
        digits a double holds for sure (printf's ``%.15g``, as PostgreSQL's
        ``float8::numeric``), so 0.0012345 is exactly 0.0012345, summed exactly."""
        kept = [Decimal(f"{p:.15g}") for p in prices if valid_price(p) is not None]
        return cls(
            current_price=current_price,
            min_price=min(kept, default=None),
            max_price=max(kept, default=None),
            avg_price=sum(kept, Decimal(0)) / len(kept) if kept else None,
            oldest_price=kept[0] if kept else None,
            newest_price=kept[-1] if kept else None,
            records_count=len(kept),
        )

    @property
    def price_change(self) -> Decimal | None:
        """Newest price minus oldest."""
        if self.oldest_price is None or self.newest_price is None:
            return None
        return round_to(self.newest_price - self.oldest_price, PRICE_DECIMALS)

    @property
    def price_change_percent(self) -> Decimal | None:
        """The change over the oldest price, times 100 (from the exact change)."""
        if self.oldest_price is None or self.newest_price is None or not self.oldest_price:
            return None
        change = self.newest_price - self.oldest_price
        return round_to(change / self.oldest_price * 100, PERCENT_DECIMALS)
