"""Reading request bodies: a JSON object, and the string fields in it."""

from __future__ import annotations

import json
from typing import Any

from sanic import Request
from sanic.exceptions import BadRequest


def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object, or a 400 that says what is wrong with it."""
    if not request.body:
        raise BadRequest("request body must be a JSON object")
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def string_field(body: dict[str, Any], name: str) -> str:
    """A required, non-empty string field."""
    if name not in body or body[name] is None:
        raise BadRequest(f"{name} is required")
    value = body[name]
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    if not value:
        raise BadRequest(f"{name} must not be empty")
    return value
