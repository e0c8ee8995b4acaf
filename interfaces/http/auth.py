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
    # A JWT is base64url and dots: anything outside printable ASCII (a latin-1 byte
    # such as \xe9) is refused here, before PyJWT, which fails on it with an encoding
    # error instead of its own (a 500, before issue 13).
    if (
        scheme.lower() != "bearer"
        or not token
        or " " in token
        or not (token.isascii() and token.isprintable())
    ):
        raise InvalidToken("malformed Authorization header: expected 'Bearer <token>'")
    return token
