"""Bearer-token guard for the routes that need a logged-in user."""

from __future__ import annotations

from sanic import Request

from domain.errors import InvalidToken
from interfaces.http.services import services


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise InvalidToken("missing token: send the header 'Authorization: Bearer <token>'")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise InvalidToken("malformed Authorization header: expected 'Bearer <token>'")
    return token


async def require_user(request: Request) -> None:
    """Request middleware: a valid token of a stored user, or a 401 before the handler
    runs. Sets ``request.ctx.user_id`` (an int) and ``request.ctx.token_expires_at``
    (Unix seconds)."""
    principal = await services(request).authenticate(bearer_token(request))
    request.ctx.user_id = principal.user_id
    request.ctx.token_expires_at = principal.expires_at
