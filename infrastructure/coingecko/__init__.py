"""The CoinGecko adapter: the PriceSource client and the budget of calls."""

from infrastructure.coingecko.call_budget import CallBudget
from infrastructure.coingecko.client import CoinGeckoClient
from infrastructure.coingecko.errors import CoinGeckoUnreachable

__all__ = ["CallBudget", "CoinGeckoClient", "CoinGeckoUnreachable"]
