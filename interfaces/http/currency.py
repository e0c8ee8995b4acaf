"""``?currency=``: the quote currency a read or a write answers in."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import parse_qs

from sanic import Request

from domain.model import QuoteCurrencies

PARAMETER = "currency"


@lru_cache(maxsize=256)  # at most a URL's 8 KB each: 2 MB however hostile the queries
def _currency_values(query_string: str) -> tuple[str, ...]:
    """The ``currency`` values of a query string, blank ones included, parsed once per
    distinct query string: the same few recur on every read, and parsing each anew
    (``request.get_args``) took 6% of a list read's time under wrk (py-spy)."""
    return tuple(parse_qs(query_string, keep_blank_values=True).get(PARAMETER, ()))


def configured(request: Request) -> QuoteCurrencies:
    """The app's QUOTE_CURRENCIES (parsed once, when the app was built)."""
    found: QuoteCurrencies = request.app.ctx.currencies
    return found


def asked_currency(request: Request) -> str:
    """The configured code ``?currency=`` names, in any case; the default without one.
    Raises UnknownCurrency (a 400) for a blank value (``?currency=``, which
    ``request.args`` would drop as if absent), one given twice, or one not configured:
    called before a route does any work, so such a request changes nothing."""
    currencies = configured(request)
    query = request.query_string  # decoded anew on each access
    if not query:  # most reads: no parsing at all
        return currencies.default
    given = _currency_values(query)
    if not given:
        return currencies.choose(None)
    return currencies.choose(given[0] if len(given) == 1 else given)
