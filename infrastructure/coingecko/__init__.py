"""The CoinGecko adapter: the PriceSource client and the process-wide rate limiter."""

from infrastructure.coingecko.client import CoinGeckoClient
from infrastructure.coingecko.errors import CoinGeckoUnreachable
from infrastructure.coingecko.rate_limiter import RateLimiter

__all__ = ["CoinGeckoClient", "CoinGeckoUnreachable", "RateLimiter"]
