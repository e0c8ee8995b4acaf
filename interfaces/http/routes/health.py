"""Liveness and readiness probes."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json

from infrastructure.db.repositories import database_ready

bp = Blueprint("health", url_prefix="/health")


@bp.get("")
async def alive(request: Request) -> HTTPResponse:
    """The process answers."""
    return json({"status": "ok"})


@bp.get("/ready")
async def ready(request: Request) -> HTTPResponse:
    """Ready to serve: PostgreSQL answers. Redis is a cache, so it is reported, not required."""
    database = await database_ready()
    cache = await request.app.ctx.cache_ready()
    body = {"status": "ok" if database else "unavailable", "database": database, "cache": cache}
    return json(body, status=200 if database else 503)
