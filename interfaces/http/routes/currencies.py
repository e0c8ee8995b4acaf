"""GET /currencies: the quote currencies prices are served in (QUOTE_CURRENCIES)."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json

from interfaces.http.currency import configured
from interfaces.http.hooks import require_token
from interfaces.http.presenters import currencies_json
from interfaces.http.schemas import Currencies, answers, token_required

bp = require_token(Blueprint("currencies", url_prefix="/currencies"))


@bp.get("")
@token_required
@answers(200, Currencies, "the configured quote currencies")
async def list_currencies(request: Request) -> HTTPResponse:
    """The codes `?currency=` takes, in the configured order, and the default (the
    first, the one an answer is in without `?currency=`): {"currencies": ["usd",
    "eur"], "default": "usd"}."""
    return json(currencies_json(configured(request)))
