"""The /crypto routes. Every one needs a bearer token."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json

from domain.model import Ticker
from interfaces.http.bodies import json_object, string_field
from interfaces.http.currency import asked_currency
from interfaces.http.hooks import require_token
from interfaces.http.presenters import crypto_json, history_json, stats_json
from interfaces.http.price_stream import stream_prices, wants_event_stream
from interfaces.http.rendered import RenderedBodies
from interfaces.http.schemas import (
    UNAVAILABLE_OR_SPENT,
    UPSTREAM_FAILED,
    Crypto,
    CryptoEnvelope,
    CryptoList,
    Empty,
    History,
    Stats,
    SymbolBody,
    answers,
    answers_with_stream,
    body,
    currency_in_query,
    fails,
    retry_after,
    symbol_in_path,
    token_required,
)
from interfaces.http.services import services

bp = require_token(Blueprint("cryptos", url_prefix="/crypto"))
secured = token_required  # documents the bearer token and its 401 in /docs
log = logging.getLogger(__name__)
# Bodies kept by the read model's versions (a version is unique in the process, so
# apps sharing this, in tests, cannot mix their bodies up).
RENDERED = RenderedBodies()


def rendered(
    request: Request,
    kind: str,
    value: object,
    symbol: Ticker | None,
    currency: str,
    render: Callable[[], Any],
) -> HTTPResponse:
    """``render()``'s JSON body in ``currency``, kept while the read model's version of
    ``value`` holds (the list's when ``symbol`` is None); rendered anew for a value read
    through. A version covers every currency: the key names the currency."""
    version = request.app.ctx.wiring.read_model.store.version_of(value, symbol)
    return RENDERED.response((kind, symbol, currency), version, render)


def log_change(request: Request, action: str, symbol: object) -> None:
    """Who changed what: "user 12 added BTC"."""
    user_id = request.ctx.user_id
    log.info("user %s %s %s", user_id, action, symbol, extra={"user_id": user_id})


@bp.get("")
@secured
@currency_in_query
@answers_with_stream(200, CryptoList, "every tracked crypto, or their live stream")
@fails(503)
async def list_cryptos(request: Request) -> HTTPResponse | None:
    """Every tracked crypto, ordered by symbol.

    With `Accept: text/event-stream`, a live stream of Server-Sent Events instead:
    `snapshot` ({"cryptos": [...]}) at once, then `upstream` ({"status", "since"}: how
    the poller's calls to CoinGecko fare, `ok`, `rate_limited`, `failing` or
    `budget_spent`, since when) once the server knows it, then `price` ({"symbol",
    "current_price", "last_updated"}) for each price a poll cycle or a refresh commits,
    `added` (the crypto object), `removed` ({"symbol"}) and `upstream` again whenever
    that state changes, with a comment line every 15 s. It ends when the token
    expires. Past the server's limit of open streams, 503. Prices are in `currency`:
    a price with none in it is not sent on the stream.
    """
    currency = asked_currency(request)
    if wants_event_stream(request):
        heartbeat = request.app.ctx.wiring.settings.stream_heartbeat_seconds
        await stream_prices(request, heartbeat, currency)
        return None
    cryptos = await services(request).list_cryptos()
    return rendered(
        request,
        "list",
        cryptos,
        None,
        currency,
        lambda: {"cryptos": [crypto_json(c, currency) for c in cryptos]},
    )


@bp.post("")
@secured
@currency_in_query
@body(SymbolBody, "the ticker to track")
@answers(201, CryptoEnvelope, "tracked, with its current price")
@retry_after(500, required=False)
@retry_after(503, required=False)
@fails(
    (
        400,
        "a malformed body, a bad ticker, one CoinGecko does not list, or a coin_id "
        "that is not one of the ticker's",
    ),
    (409, "already tracked"),
    413,
    415,
    UPSTREAM_FAILED,
    UNAVAILABLE_OR_SPENT,
)
async def add_crypto(request: Request) -> HTTPResponse:
    """Track a crypto by ticker: body {"symbol": "BTC"}, the coin with the best
    market-cap rank among those sharing it; or {"symbol": "UNI", "coin_id": "..."},
    one of the coins GET /coins?symbol=UNI lists. The answer's price is in `currency`
    (every configured one is stored)."""
    currency = asked_currency(request)
    body = json_object(request)
    symbol = string_field(body, "symbol")
    coin_id = None if body.get("coin_id") is None else string_field(body, "coin_id")
    crypto = await services(request).add_crypto(symbol, coin_id)
    log_change(request, "added", crypto.symbol)
    return json({"crypto": crypto_json(crypto, currency)}, status=201)


@bp.get("/<symbol:str>")
@secured
@currency_in_query
@symbol_in_path
@answers(200, Crypto, "the crypto itself, not wrapped")
@fails(404, 503)
async def get_crypto(request: Request, symbol: str) -> HTTPResponse:
    """One tracked crypto.

    The body is the crypto object itself, not wrapped in {"crypto": ...} as the
    answers of POST /crypto and PUT /crypto/{symbol}/refresh are:
    {"symbol": "BTC", "name": "Bitcoin", "current_price": 45000.5,
    "last_updated": "2024-01-01T12:00:00Z"}
    """
    currency = asked_currency(request)
    crypto = await services(request).get_crypto(symbol)
    return rendered(
        request, "crypto", crypto, crypto.symbol, currency, lambda: crypto_json(crypto, currency)
    )


@bp.put("/<symbol:str>/refresh")
@secured
@currency_in_query
@symbol_in_path
@answers(200, CryptoEnvelope, "refreshed, or as stored when CoinGecko has nothing newer")
@retry_after(500, required=False)
@retry_after(503, required=False)
@fails(404, UPSTREAM_FAILED, UNAVAILABLE_OR_SPENT)
async def refresh_crypto(request: Request, symbol: str) -> HTTPResponse:
    """Fetch CoinGecko's price now and add it to the history when it is newer than the
    stored one (by CoinGecko's time of it); otherwise answer the stored crypto, unchanged."""
    currency = asked_currency(request)
    crypto = await services(request).refresh_crypto(symbol)
    log_change(request, "refreshed", crypto.symbol)
    return json({"crypto": crypto_json(crypto, currency)})


@bp.get("/<symbol:str>/history")
@secured
@currency_in_query
@symbol_in_path
@answers(200, History, "the stored prices")
@fails(404, 503)
async def price_history(request: Request, symbol: str) -> HTTPResponse:
    """Stored prices in `currency`, oldest first: an observation stored before the
    currency was configured has none in it, and is left out."""
    currency = asked_currency(request)
    ticker, points = await services(request).price_history(symbol, currency)
    return rendered(
        request, "history", points, ticker, currency, lambda: history_json(ticker, points)
    )


@bp.get("/<symbol:str>/stats")
@secured
@currency_in_query
@symbol_in_path
@answers(200, Stats, "the stats of the stored prices")
@fails(404, 503)
async def price_stats(request: Request, symbol: str) -> HTTPResponse:
    """Min, max, average and change over the stored history's prices in `currency`."""
    currency = asked_currency(request)
    ticker, stats = await services(request).price_stats(symbol, currency)
    return rendered(request, "stats", stats, ticker, currency, lambda: stats_json(ticker, stats))


@bp.delete("/<symbol:str>")
@secured
@symbol_in_path
@answers(200, Empty, "no longer tracked")
@fails(404, 503)
async def delete_crypto(request: Request, symbol: str) -> HTTPResponse:
    """Stop tracking a crypto; its history goes too."""
    log_change(request, "deleted", await services(request).delete_crypto(symbol))
    return json({})
