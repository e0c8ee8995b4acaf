"""Liveness and readiness probes.

Readiness is what keeps a pod in its Service. It answers 503 until the server has
finished starting (every ``after_server_start`` listener has run: ``track_start_up``),
and while the schema lacks a migration this code ships. Once the schema has been found
current, it stays 200 through a database outage ("degraded"): every pod would otherwise
leave the Service at once, turning the documented 503 JSON of writes into refused
connections, and losing the reads a live read model still answers from memory. A
schema never goes back to lacking a migration, so what was found once still holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from sanic import Blueprint, HTTPResponse, Request, Sanic
from sanic.response import json

from infrastructure.db.repositories import database_ready
from interfaces.http.schemas import Liveness, Readiness, answers

bp = Blueprint("health", url_prefix="/health")

# After every other after_server_start listener (higher priorities run first), those
# registered later included.
LAST = -1_000_000


@dataclass(slots=True)
class ReadinessState:
    """What readiness knows beyond one check (``app.ctx.readiness``)."""

    started: bool = False  # every start-up listener has finished
    schema_current: bool = False  # a check found PostgreSQL with every shipped migration


def track_start_up(app: Sanic) -> None:
    """``app.ctx.readiness``, marked started once the server's start-up has finished."""
    app.ctx.readiness = ReadinessState()

    @app.listener("after_server_start", priority=LAST)
    async def started(app: Sanic) -> None:
        app.ctx.readiness.started = True


@bp.get("")
@answers(200, Liveness, "the process answers")
async def alive(request: Request) -> HTTPResponse:
    """The process answers."""
    return json({"status": "ok"})


@bp.get("/ready")
@answers(200, Readiness, "ready to serve (degraded: PostgreSQL does not answer, writes get 503)")
@answers(503, Readiness, "not ready: starting, PostgreSQL lacks a migration, or never answered")
async def ready(request: Request) -> HTTPResponse:
    """Ready to serve: start-up has finished, and PostgreSQL has every migration this code
    ships (or had, when it last answered: then "degraded"). Redis is a cache, so it is
    reported, not required."""
    # Read defensively: a request can arrive while the server is still starting.
    state: ReadinessState | None = getattr(request.app.ctx, "readiness", None)
    if state is None or not state.started:
        return json({"status": "starting"}, status=503)
    database, pending = await database_ready()
    if database and not pending:
        state.schema_current = True
    cache = await request.app.ctx.wiring.cache.ping()
    ok = not pending and (database or state.schema_current)
    body: dict[str, object] = {
        "status": ("ok" if database else "degraded") if ok else "unavailable",
        "database": database,
        "cache": cache,
    }
    if pending:
        body["pending_migrations"] = pending
    return json(body, status=200 if ok else 503)
