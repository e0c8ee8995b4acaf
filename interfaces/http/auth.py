"""The bearer token of a request (checked by ``hooks.on_request`` for the routes of a
``hooks.require_token`` blueprint)."""

from __future__ import annotations

from sanic import Request

from domain.errors import InvalidToken


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise InvalidToken("missing token: send the header 'Authorization: Bearer <token>'")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise InvalidToken("malformed Authorization header: expected 'Bearer <token>'")
    return token
