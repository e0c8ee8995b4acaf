"""What happened to the tracked set, as the live price stream tells it.

One event per crypto and commit: a poll cycle of 100 cryptos is 100 PriceChanged.
UpstreamChanged tells how the poller's calls to CoinGecko fare, so that a client can
say why prices are stale."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.model import Crypto, Prices, Ticker


@dataclass(frozen=True, slots=True)
class CryptoAdded:
    crypto: Crypto


@dataclass(frozen=True, slots=True)
class PriceChanged:
    """A new current observation: its price in each currency it has one in."""

    symbol: Ticker
    prices: Prices
    last_updated: datetime


@dataclass(frozen=True, slots=True)
class CryptoRemoved:
    symbol: Ticker


# How the poller's latest cycle fared upstream: ok, CoinGecko answers 429
# (rate_limited), it fails otherwise (failing: 5xx, timeouts, bad bodies), or the
# month's call budget is spent (budget_spent: set by the monthly budget, which makes
# no call then).
UPSTREAM_STATUSES = ("ok", "rate_limited", "failing", "budget_spent")


@dataclass(frozen=True, slots=True)
class UpstreamState:
    status: str  # one of UPSTREAM_STATUSES
    since: datetime  # when the status began (as the leader saw it)

    def __post_init__(self) -> None:
        if self.status not in UPSTREAM_STATUSES:
            raise ValueError(f"not an upstream status: {self.status!r}")


@dataclass(frozen=True, slots=True)
class UpstreamChanged:
    state: UpstreamState


PriceEvent = CryptoAdded | PriceChanged | CryptoRemoved | UpstreamChanged
