"""What happened to the tracked set, as the live price stream tells it.

One event per crypto and commit: a poll cycle of 100 cryptos is 100 PriceChanged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.model import Crypto, Ticker


@dataclass(frozen=True, slots=True)
class CryptoAdded:
    crypto: Crypto


@dataclass(frozen=True, slots=True)
class PriceChanged:
    symbol: Ticker
    current_price: float
    last_updated: datetime


@dataclass(frozen=True, slots=True)
class CryptoRemoved:
    symbol: Ticker


PriceEvent = CryptoAdded | PriceChanged | CryptoRemoved
