"""Cryptos and moments for the repository tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.model import Crypto, Prices, Ticker

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    """``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


def crypto(
    symbol: str, price: float = 100.0, when: datetime = T0, *, prices: Prices | None = None
) -> Crypto:
    """A crypto not stored yet: coin id ``<symbol>-coin``, name ``<SYMBOL> Coin``, priced
    ``prices`` (``{"usd": price}`` unless given)."""
    return Crypto(
        symbol=Ticker(symbol),
        coin_id=f"{symbol.lower()}-coin",
        name=f"{symbol} Coin",
        prices=dict(prices) if prices is not None else {"usd": price},
        last_updated=when,
    )
