"""The /crypto routes. Every one needs a bearer token."""

from __future__ import annotations

import logging

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json
from sanic_ext.extensions.openapi import openapi

from interfaces.http.auth import require_user
from interfaces.http.bodies import json_object, string_field
from interfaces.http.presenters import crypto_json, history_json, stats_json
from interfaces.http.services import services

bp = Blueprint("cryptos", url_prefix="/crypto")
bp.on_request(require_user)
secured = openapi.secured("token")  # documents the bearer token in /docs
log = logging.getLogger(__name__)


def log_change(request: Request, action: str, symbol: object) -> None:
    """Who changed what: "user 12 added BTC"."""
    user_id = request.ctx.user_id
    log.info("user %s %s %s", user_id, action, symbol, extra={"user_id": user_id})


@bp.get("")
@secured
async def list_cryptos(request: Request) -> HTTPResponse:
    """Every tracked crypto, ordered by symbol."""
    cryptos = await services(request).list_cryptos()
    return json({"cryptos": [crypto_json(c) for c in cryptos]})


@bp.post("")
@secured
async def add_crypto(request: Request) -> HTTPResponse:
    """Track a crypto by ticker: body {"symbol": "BTC"}."""
    symbol = string_field(json_object(request), "symbol")
    crypto = await services(request).add_crypto(symbol)
    log_change(request, "added", crypto.symbol)
    return json({"crypto": crypto_json(crypto)}, status=201)


@bp.get("/<symbol:str>")
@secured
async def get_crypto(request: Request, symbol: str) -> HTTPResponse:
    """One tracked crypto.

    The body is the crypto object itself, not wrapped in {"crypto": ...} as the
    answers of POST /crypto and PUT /crypto/{symbol}/refresh are:
    {"symbol": "BTC", "name": "Bitcoin", "current_price": 45000.5,
    "last_updated": "2024-01-01T12:00:00Z"}
    """
    return json(crypto_json(await services(request).get_crypto(symbol)))


@bp.put("/<symbol:str>/refresh")
@secured
async def refresh_crypto(request: Request, symbol: str) -> HTTPResponse:
    """Fetch a fresh price now and add it to the history."""
    crypto = await services(request).refresh_crypto(symbol)
    log_change(request, "refreshed", crypto.symbol)
    return json({"crypto": crypto_json(crypto)})


@bp.get("/<symbol:str>/history")
@secured
async def price_history(request: Request, symbol: str) -> HTTPResponse:
    """Stored prices, oldest first."""
    ticker, points = await services(request).price_history(symbol)
    return json(history_json(ticker, points))


@bp.get("/<symbol:str>/stats")
@secured
async def price_stats(request: Request, symbol: str) -> HTTPResponse:
    """Min, max, average and change over the stored history."""
    ticker, stats = await services(request).price_stats(symbol)
    return json(stats_json(ticker, stats))


@bp.delete("/<symbol:str>")
@secured
async def delete_crypto(request: Request, symbol: str) -> HTTPResponse:
    """Stop tracking a crypto; its history goes too."""
    log_change(request, "deleted", await services(request).delete_crypto(symbol))
    return json({})
