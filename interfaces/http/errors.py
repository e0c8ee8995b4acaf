"""Every error leaves as JSON ``{"error": "..."}``; no request ever sees a stack trace."""

from __future__ import annotations

import logging

from sanic import HTTPResponse, Request, Sanic
from sanic.constants import HTTP_METHODS
from sanic.exceptions import MethodNotAllowed, RequestCancelled, SanicException
from sanic.response import json

from domain.errors import (
    CallBudgetSpent,
    Conflict,
    DomainError,
    Forbidden,
    InvalidCredentials,
    InvalidInput,
    InvalidToken,
    NotFound,
    StorageUnavailable,
    TooManyAttempts,
    TooManyStreams,
    UpstreamError,
    UpstreamRateLimited,
)

log = logging.getLogger(__name__)

# A client that hung up before its answer was sent (Nginx's code): not a server error,
# and nobody receives the answer; it is counted and logged under this status.
CLIENT_CLOSED_REQUEST = 499

_STATUS: list[tuple[type[DomainError], int]] = [
    (InvalidInput, 400),
    (InvalidCredentials, 401),
    (InvalidToken, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (TooManyAttempts, 429),
    (CallBudgetSpent, 503),  # before UpstreamError: ours to refuse, until the month renews
    (UpstreamError, 500),
    (StorageUnavailable, 503),
    (TooManyStreams, 503),
]


def error_response(
    message: str, status: int, headers: dict[str, str] | None = None
) -> HTTPResponse:
    return json({"error": message}, status=status, headers=headers)


def domain_error(request: Request, error: DomainError) -> HTTPResponse:
    status = next((code for kind, code in _STATUS if isinstance(error, kind)), 500)
    headers: dict[str, str] = {}
    if isinstance(error, InvalidToken):
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    if isinstance(error, UpstreamRateLimited):
        headers["Retry-After"] = str(max(1, round(error.retry_after)))
    if isinstance(error, TooManyAttempts):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, UpstreamError):
        log.warning("%s %s: upstream failure: %s", request.method, request.path, error.message)
    return error_response(error.message, status, headers)


def http_error(request: Request, error: SanicException) -> HTTPResponse:
    status = getattr(error, "status_code", 500) or 500
    if status >= 500:
        log.error("%s %s failed", request.method, request.path, exc_info=error)
        return error_response("internal server error", status)
    message = str(error) or "request failed"
    if status == 413:
        message = "request body is too large (the limit is 1 MiB)"
    headers = dict(getattr(error, "headers", None) or {})
    if isinstance(error, MethodNotAllowed) and "Allow" not in headers:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return error_response(message, status, headers)


def allowed_methods(request: Request) -> list[str]:
    """The methods ``request.path`` answers to. Sanic's router names them in a 405 of a
    path without parameters only (``/crypto``, not ``/crypto/BTC/stats``)."""
    allowed: list[str] = []
    for method in HTTP_METHODS:
        try:
            request.app.router.get(request.path, method, request.headers.getone("host", None))
        except SanicException:
            continue
        allowed.append(str(method))
    return allowed


def client_gone(request: Request, error: RequestCancelled) -> HTTPResponse:
    """The client hung up mid-request or while its handler ran (Sanic cancels it)."""
    return error_response("client closed the request", CLIENT_CLOSED_REQUEST)


def unexpected_error(request: Request, error: Exception) -> HTTPResponse:
    log.exception("%s %s failed", request.method, request.path, exc_info=error)
    return error_response("internal server error", 500)


def register_error_handlers(app: Sanic) -> None:
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.error_handler.add(DomainError, domain_error)
    app.error_handler.add(SanicException, http_error)
    app.error_handler.add(Exception, unexpected_error)
    # A CancelledError, which no handler of Exception sees: Sanic's default made it a 500.
    app.error_handler.add(RequestCancelled, client_gone)
