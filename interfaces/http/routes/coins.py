"""GET /coins: the CoinGecko coins that share a ticker, to choose one to track."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request
from sanic.exceptions import BadRequest
from sanic.response import json

from interfaces.http.currency import asked_currency
from interfaces.http.hooks import require_token
from interfaces.http.presenters import coins_json
from interfaces.http.schemas import (
    UNAVAILABLE_OR_SPENT,
    UPSTREAM_FAILED,
    CoinList,
    answers,
    currency_in_query,
    fails,
    retry_after,
    symbol_in_query,
    token_required,
)
from interfaces.http.services import services

bp = require_token(Blueprint("coins", url_prefix="/coins"))


@bp.get("")
@token_required
@currency_in_query
@symbol_in_query
@answers(200, CoinList, "every coin with the ticker")
@retry_after(500, required=False)
@retry_after(503, required=False)
@fails(UPSTREAM_FAILED, UNAVAILABLE_OR_SPENT)
async def list_coins(request: Request) -> HTTPResponse:
    """Every CoinGecko coin with the ticker `symbol`, best market-cap rank first and
    unranked last: {"symbol": "BTC", "coins": [{"coin_id": "bitcoin", "name":
    "Bitcoin", "market_cap_rank": 1, "current_price": 45000.5}, ...]}, priced in
    `currency`. One CoinGecko call, then kept a few minutes (so may the prices be).
    POST /crypto takes the `coin_id` of the one to track."""
    currency = asked_currency(request)
    given = request.args.getlist("symbol")
    if not given:
        raise BadRequest("symbol is required: GET /coins?symbol=BTC")
    if len(given) > 1:
        raise BadRequest("give one symbol")
    found = await services(request).list_coins(given[0], currency)
    return json(coins_json(found.symbol, found.coins))
