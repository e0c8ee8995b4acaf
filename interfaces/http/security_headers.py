"""Headers every response carries, whoever answered it: a route, an error handler, or
the 404 and 405 of a path no route matched."""

from __future__ import annotations

from sanic import HTTPResponse, Request, Sanic


async def add_security_headers(_request: Request, response: HTTPResponse) -> None:
    # A browser that sniffed a JSON body (one echoing user input) as HTML would run it.
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


def mount_security_headers(app: Sanic) -> None:
    app.on_response(add_security_headers)
