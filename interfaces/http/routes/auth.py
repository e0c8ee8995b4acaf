"""POST /auth/register and POST /auth/login."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json

from interfaces.http.bodies import json_object, string_field
from interfaces.http.hooks import never_store
from interfaces.http.schemas import Credentials, NewUser, Token, answers, body, fails, retry_after
from interfaces.http.services import services

# A token is a credential: no browser or proxy may keep a copy.
bp = never_store(Blueprint("auth", url_prefix="/auth"))


def credentials(request: Request) -> tuple[str, str]:
    body = json_object(request)
    return string_field(body, "username"), string_field(body, "password")


@bp.post("/register")
@body(NewUser, "the new user's name and password")
@answers(201, Token, "registered; a token for the new user")
@fails(
    (400, "a malformed body, or a username or password that breaks the rules"),
    (403, "registration is closed"),
    (409, "the username is taken, in any case"),
    413,
    415,
    503,
)
async def register(request: Request) -> HTTPResponse:
    """Create a user; answers a bearer token."""
    username, password = credentials(request)
    token = await services(request).register_user(username, password)
    return json({"token": token}, status=201)


@bp.post("/login")
@body(Credentials, "the username (in any case) and password")
@answers(200, Token, "a token")
@retry_after(429)
@fails(
    (400, "a malformed body, or a NUL character in a string"),
    (401, "wrong username or password"),
    413,
    415,
    (429, "too many failed logins for this username or from this address"),
    503,
)
async def login(request: Request) -> HTTPResponse:
    """Exchange a username and password for a bearer token."""
    username, password = credentials(request)
    token = await services(request).login_user(username, password, request.client_ip)
    return json({"token": token})
