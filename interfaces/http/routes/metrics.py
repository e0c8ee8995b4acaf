"""GET /metrics: the Prometheus scrape of this server (one process; each replica is
scraped on its own).

No token: keep it off the public ingress (README, "Operating it")."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import raw
from sanic_ext.extensions.openapi import openapi

from infrastructure.metrics import exposition

bp = Blueprint("metrics")


@bp.get("/metrics")
@openapi.exclude()
async def metrics(request: Request) -> HTTPResponse:
    """The metrics in Prometheus' text format."""
    body, content_type = exposition()
    return raw(body, content_type=content_type)
