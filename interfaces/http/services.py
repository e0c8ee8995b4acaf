"""The use cases a route calls, as wired by ``bootstrap`` for this app."""

from __future__ import annotations

from sanic import Request

from bootstrap import Services


def services(request: Request) -> Services:
    found: Services = request.app.ctx.services
    return found
