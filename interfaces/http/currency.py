"""``?currency=``: the quote currency a read or a write answers in."""

from __future__ import annotations

from sanic import Request

from domain.model import QuoteCurrencies

PARAMETER = "currency"


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
    if not request.query_string:  # most reads: no parsing at all
        return currencies.default
    given = request.get_args(keep_blank_values=True).getlist(PARAMETER)
    if not given:
        return currencies.choose(None)
    return currencies.choose(given[0] if len(given) == 1 else given)
