"""Domain objects to the JSON the API promises."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from domain.events import (
    CryptoAdded,
    CryptoRemoved,
    PriceChanged,
    PriceEvent,
    UpstreamChanged,
    UpstreamState,
)
from domain.model import CoinCandidate, Crypto, PricePoint, PriceStats, QuoteCurrencies, Ticker


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z suffix, to the second: 2024-01-01T12:00:00Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def crypto_json(crypto: Crypto, currency: str) -> dict[str, Any]:
    """In ``currency``: a null price when the latest observation has none in it."""
    return {
        "symbol": crypto.symbol.value,
        "name": crypto.name,
        "current_price": crypto.price_in(currency),
        "last_updated": iso_utc(crypto.last_updated),
    }


def coins_json(symbol: Ticker, coins: list[CoinCandidate]) -> dict[str, Any]:
    return {
        "symbol": symbol.value,
        "coins": [
            {
                "coin_id": c.ref.coin_id,
                "name": c.ref.name,
                "market_cap_rank": c.market_cap_rank,
                "current_price": c.current_price,
            }
            for c in coins
        ],
    }


def history_json(symbol: Ticker, points: list[PricePoint]) -> dict[str, Any]:
    return {
        "symbol": symbol.value,
        "history": [{"price": p.price, "timestamp": iso_utc(p.timestamp)} for p in points],
    }


def number(value: Decimal | None) -> float | None:
    """A JSON number, not a string. The nearest double of a decimal with at most 15
    significant digits prints as that decimal (-0.0004421), so no noise comes back."""
    return None if value is None else float(value)


def stats_json(symbol: Ticker, stats: PriceStats) -> dict[str, Any]:
    return {
        "symbol": symbol.value,
        "current_price": stats.current_price,
        "stats": {
            "min_price": number(stats.min_price),
            "max_price": number(stats.max_price),
            "avg_price": number(stats.avg_price),
            "price_change": number(stats.price_change),
            "price_change_percent": number(stats.price_change_percent),
            "records_count": stats.records_count,
        },
    }


def currencies_json(currencies: QuoteCurrencies) -> dict[str, Any]:
    return {"currencies": list(currencies.codes), "default": currencies.default}


def upstream_json(state: UpstreamState) -> dict[str, Any]:
    return {"status": state.status, "since": iso_utc(state.since)}


def event_json(event: PriceEvent, currency: str) -> tuple[str, dict[str, Any]] | None:
    """A live stream event in ``currency``: its name and its data; None for a price
    with none in ``currency`` (a stream in it has nothing to tell of it)."""
    if isinstance(event, PriceChanged):
        price = event.prices.get(currency)
        if price is None:
            return None
        return "price", {
            "symbol": event.symbol.value,
            "current_price": price,
            "last_updated": iso_utc(event.last_updated),
        }
    if isinstance(event, CryptoAdded):
        return "added", crypto_json(event.crypto, currency)
    if isinstance(event, CryptoRemoved):
        return "removed", {"symbol": event.symbol.value}
    if isinstance(event, UpstreamChanged):
        return "upstream", upstream_json(event.state)
    raise TypeError(f"not a price event: {event!r}")
