"""What every request leaves behind for an operator: an ``X-Request-ID`` on its
response, the id in each log line written while it is handled, one access log line,
and its count and duration in the metrics.

The request middleware runs first of all (a route's own middleware, such as the
bearer token check, may answer 401 before the handler), and Sanic runs it again
before an error handler, so it keeps what it set the first time. The response
middleware sees every response, the JSON errors of ``errors.py`` included (also 404,
405 and 413, which no route matched).
"""

from __future__ import annotations

import functools
import logging
import re
import time
import uuid

from sanic import HTTPResponse, Request, Sanic

from infrastructure.log_setup import REQUEST_ID
from infrastructure.metrics import UNMATCHED_ROUTE, observe_request

access_log = logging.getLogger("interfaces.http.access")

REQUEST_ID_HEADER = "X-Request-ID"
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
ROUTE_PARAMETER = re.compile(r"<([^:>]+):[^>]+>")
FIRST = 1_000_000  # middleware priority: before any other request middleware


def request_id_for(incoming: str | None) -> str:
    """The client's id when it is a sane one (1-128 letters, digits, ``-``, ``_``,
    ``.``: it goes into logs and headers), else a new one."""
    if incoming is not None and VALID_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def route_template(request: Request) -> str:
    """The route the request matched, as written (``/crypto/<symbol>``), never the
    path itself: a label per symbol would make the metrics grow without bound."""
    route = request.route
    if route is None:
        return UNMATCHED_ROUTE
    return _template(route.path)


@functools.cache  # one entry per route
def _template(path: str) -> str:
    return "/" + ROUTE_PARAMETER.sub(r"<\1>", path)


async def start_request(request: Request) -> None:
    if not hasattr(request.ctx, "request_id"):
        request.ctx.request_id = request_id_for(request.headers.get(REQUEST_ID_HEADER))
        request.ctx.started = time.perf_counter()
    REQUEST_ID.set(request.ctx.request_id)


async def finish_request(request: Request, response: HTTPResponse) -> None:
    request_id = getattr(request.ctx, "request_id", None) or request_id_for(None)
    response.headers[REQUEST_ID_HEADER] = request_id
    seconds = time.perf_counter() - getattr(request.ctx, "started", time.perf_counter())
    route = route_template(request)
    observe_request(route, request.method, response.status, seconds)
    duration_ms = round(seconds * 1000, 2)
    access_log.info(
        "%s %s %d %.2f ms",
        request.method,
        request.path,
        response.status,
        duration_ms,
        extra={
            "method": request.method,
            "route": route,
            "path": request.path,
            "status": response.status,
            "duration_ms": duration_ms,
            "request_id": request_id,
        },
    )
    # The connection's task handles its next request too: no id until that one sets its own.
    REQUEST_ID.set(None)


def mount_observability(app: Sanic) -> None:
    app.config.ACCESS_LOG = False  # finish_request writes the one access line
    app.on_request(start_request, priority=FIRST)
    app.on_response(finish_request, priority=FIRST)
