"""The small web UI: GET / answers the one page, GET /static/<name> its script
modules, style sheet and icon. The page talks to the JSON API only, with the user's bearer
token; these routes need no token and stay out of the OpenAPI description."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePosixPath

from sanic import Blueprint, HTTPResponse, Request
from sanic.exceptions import NotFound
from sanic.response import raw
from sanic_ext.extensions.openapi import openapi

bp = Blueprint("pages")

# No inline script or style anywhere: everything comes from this origin.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# X-Content-Type-Options comes with every response (interfaces/http/hooks.py).
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",  # the browser keeps a copy but asks (ETag) before using it
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


WEB = resources.files("interfaces.http.web")
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",  # what module scripts need (strict MIME check)
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def load(name: str, content_type: str) -> Asset:
    body = (WEB / name).read_bytes()
    return Asset(body, content_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"')


PAGE = load("index.html", "text/html; charset=utf-8")
# The page's script modules, style sheet and icon, read once: a name that is not a key
# here is a 404, so a request's path never reaches the file system.
STATIC = {
    file.name: load(file.name, CONTENT_TYPES[suffix])
    for file in WEB.iterdir()
    if file.is_file() and (suffix := PurePosixPath(file.name).suffix) in CONTENT_TYPES
}


def send(request: Request, asset: Asset) -> HTTPResponse:
    headers = {**SECURITY_HEADERS, "ETag": asset.etag}
    if request.headers.get("if-none-match") == asset.etag:
        return HTTPResponse(status=304, headers=headers)
    return raw(asset.body, content_type=asset.content_type, headers=headers)


@bp.get("/")
@openapi.exclude()
async def index(request: Request) -> HTTPResponse:
    """The web UI."""
    return send(request, PAGE)


@bp.get("/static/<name:str>")
@openapi.exclude()
async def static(request: Request, name: str) -> HTTPResponse:
    """The page's script modules, style sheet and icon."""
    asset = STATIC.get(name)
    if asset is None:
        raise NotFound(f"no static file named {name!r}")
    return send(request, asset)
