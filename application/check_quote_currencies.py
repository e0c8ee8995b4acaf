"""Check the configured quote currencies against the ones CoinGecko lists."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from domain.model import QuoteCurrencies
from domain.ports import PriceSource

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CheckQuoteCurrencies:
    """Run by the poller before its first cycle, and again each cycle until CoinGecko
    answers: a code it does not list is reported, not refused (the server starts
    whether CoinGecko is up or not; its prices in that code just stay empty)."""

    source: PriceSource
    currencies: QuoteCurrencies

    async def __call__(self) -> list[str]:
        """The configured codes CoinGecko does not list (logged as an error). Raises
        UpstreamError when CoinGecko cannot say."""
        supported = await self.source.supported_currencies()
        unknown = [code for code in self.currencies.codes if code not in supported]
        if unknown:
            log.error(
                "QUOTE_CURRENCIES: CoinGecko lists no %s (of %s); no price will be stored "
                "in %s until the setting names a code of /simple/supported_vs_currencies",
                ", ".join(unknown),
                self.currencies,
                "it" if len(unknown) == 1 else "them",
            )
        return unknown
