"""The one request hook and the one response hook every request goes through.

What a request leaves behind for an operator: an ``X-Request-ID`` on its response,
the id in each log line written while it is handled, one access log line, and its
count and duration in the metrics. What a blueprint asks of its routes: a bearer
token of a stored user before the handler (``require_token``), ``Cache-Control:
no-store`` on every answer (``never_store``). And ``X-Content-Type-Options: nosniff``
on every response.

One hook each way, because Sanic pays for each middleware it runs (its wrapper, an
await, and a look at the result); and what depends on the route is worked out once
per route (``RouteFacts``, kept on the route) instead of on every request.

The request hook runs first of all, and Sanic runs it again before an error handler
when the error came before it (a 404, 405 or 413), so it keeps what it set the first
time. The response hook sees every response, the JSON errors of ``errors.py``
included (also 404, 405 and 413, which no route matched).
"""

from __future__ import annotations

import functools
import logging
import re
import time
from dataclasses import dataclass
from random import getrandbits

from sanic import Blueprint, HTTPResponse, Request, Sanic
from sanic_routing import Route

from infrastructure.log_setup import REQUEST_ID
from infrastructure.request_metrics import REQUEST_METRICS, UNMATCHED_ROUTE
from interfaces.http.auth import bearer_token
from interfaces.http.services import services

access_log = logging.getLogger("interfaces.http.access")

REQUEST_ID_HEADER = "X-Request-ID"
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
ROUTE_PARAMETER = re.compile(r"<([^:>]+):[^>]+>")
# A fresh id is a uuid4's hex (version 4, RFC 4122 variant), made from 128 random bits
# without uuid.uuid4(), whose os.urandom call and UUID object were 5% of a read in the
# profile. An id only tells log lines apart, it guards nothing: Python's generator
# (seeded from the OS at start) is random enough.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)
_TOKEN_REQUIRED = "cps_token_required"
_NO_STORE = "cps_no_store"


def require_token(bp: Blueprint) -> Blueprint:
    """Every route of ``bp`` answers 401 before its handler runs without a valid token
    of a stored user; the handler finds ``request.ctx.user_id`` (an int) and
    ``request.ctx.token_expires_at`` (Unix seconds)."""
    setattr(bp.ctx, _TOKEN_REQUIRED, True)
    return bp


def never_store(bp: Blueprint) -> Blueprint:
    """No browser or proxy may keep a copy of any answer of ``bp`` (tokens, say)."""
    setattr(bp.ctx, _NO_STORE, True)
    return bp


@dataclass(frozen=True, slots=True)
class RouteFacts:
    """What the hooks need to know of a route."""

    template: str  # the metrics label: /crypto/<symbol>, never the path itself
    token_required: bool
    no_store: bool


UNMATCHED = RouteFacts(UNMATCHED_ROUTE, token_required=False, no_store=False)


def route_facts(app: Sanic, route: Route | None) -> RouteFacts:
    """The facts of ``route``, worked out on its first request and kept on it."""
    if route is None:
        return UNMATCHED
    try:
        facts: RouteFacts = route.ctx.cps_facts
    except AttributeError:
        facts = route.ctx.cps_facts = _work_out(app, route)
    return facts


def _work_out(app: Sanic, route: Route) -> RouteFacts:
    # sanic-ext's automatic HEAD route of a GET route calls that route's handler: it
    # gets the same facts, so a HEAD needs the token its GET needs.
    handler = getattr(route.handler, "__route_handler__", route.handler)
    owners = [bp for bp in app.blueprints.values() if any(r.handler is handler for r in bp.routes)]
    return RouteFacts(
        _template(route.path),
        token_required=any(getattr(bp.ctx, _TOKEN_REQUIRED, False) for bp in owners),
        no_store=any(getattr(bp.ctx, _NO_STORE, False) for bp in owners),
    )


@functools.cache  # one entry per route
def _template(path: str) -> str:
    return "/" + ROUTE_PARAMETER.sub(r"<\1>", path)


def request_id_for(incoming: str | None) -> str:
    """The client's id when it is a sane one (1-128 letters, digits, ``-``, ``_``,
    ``.``: it goes into logs and headers), else a new one."""
    if incoming is not None and VALID_REQUEST_ID.fullmatch(incoming):
        return incoming
    return f"{getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"


async def on_request(request: Request) -> None:
    ctx = request.ctx
    request_id = getattr(ctx, "request_id", None)
    if request_id is None:
        request_id = ctx.request_id = request_id_for(request.headers.get(REQUEST_ID_HEADER))
        ctx.started = time.perf_counter()
    REQUEST_ID.set(request_id)
    if route_facts(request.app, request.route).token_required:
        principal = await services(request).authenticate(bearer_token(request))
        ctx.user_id = principal.user_id
        ctx.token_expires_at = principal.expires_at


async def on_response(request: Request, response: HTTPResponse) -> None:
    ctx = request.ctx
    request_id = getattr(ctx, "request_id", None) or request_id_for(None)
    started = getattr(ctx, "started", None)
    seconds = 0.0 if started is None else time.perf_counter() - started
    facts = route_facts(request.app, request.route)
    headers = response.headers
    headers[REQUEST_ID_HEADER] = request_id
    # A browser that sniffed a JSON body (one echoing user input) as HTML would run it.
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if facts.no_store:
        headers["Cache-Control"] = "no-store"
    status = response.status
    REQUEST_METRICS.observe(facts.template, request.method, status, seconds)
    if access_log.isEnabledFor(logging.INFO):  # the extra fields only when written
        duration_ms = round(seconds * 1000, 2)
        access_log.info(
            "%s %s %d %.2f ms",
            request.method,
            request.path,
            status,
            duration_ms,
            extra={
                "method": request.method,
                "route": facts.template,
                "path": request.path,
                "status": status,
                "duration_ms": duration_ms,
                "request_id": request_id,
            },
        )
    # The connection's task handles its next request too: no id until that one sets its own.
    REQUEST_ID.set(None)


def mount_hooks(app: Sanic) -> None:
    app.config.ACCESS_LOG = False  # on_response writes the one access line
    app.on_request(on_request)
    app.on_response(on_response)
