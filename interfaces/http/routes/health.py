"""Liveness and readiness probes."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json

from infrastructure.db.repositories import database_ready
from interfaces.http.schemas import Liveness, Readiness, answers

bp = Blueprint("health", url_prefix="/health")


@bp.get("")
@answers(200, Liveness, "the process answers")
async def alive(request: Request) -> HTTPResponse:
    """The process answers."""
    return json({"status": "ok"})


@bp.get("/ready")
@answers(200, Readiness, "ready to serve")
@answers(503, Readiness, "not ready: PostgreSQL does not answer, or lacks a migration")
async def ready(request: Request) -> HTTPResponse:
    """Ready to serve: PostgreSQL answers and has every migration this code ships.
    Redis is a cache, so it is reported, not required."""
    database, pending = await database_ready()
    cache = await request.app.ctx.wiring.cache.ping()
    ok = database and not pending
    body: dict[str, object] = {
        "status": "ok" if ok else "unavailable",
        "database": database,
        "cache": cache,
    }
    if pending:
        body["pending_migrations"] = pending
    return json(body, status=200 if ok else 503)
