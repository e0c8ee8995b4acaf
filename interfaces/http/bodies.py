"""Reading request bodies: a JSON object, and the string fields in it.

A body must say it is JSON (``Content-Type: application/json``): a browser's
cross-site form can send ``text/plain`` or form-encoded bodies without asking first,
but not JSON, since that needs a CORS preflight, which this API never allows.

Bodies are parsed by pydantic-core's JSON parser (jiter), which has what the standard
library's lacks for untrusted input: a nesting limit (about 200 levels, so a
deeply nested body is a 400, not a RecursionError), strict UTF-8, no lone surrogate
escapes (``"\\ud800"``) and no ``NaN``. Every string field is then checked to be text
PostgreSQL and bcrypt can take: no NUL character, no unpaired surrogate.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import from_json
from sanic import Request
from sanic.exceptions import BadRequest, HTTPException
from sanic.headers import parse_content_header

JSON_MEDIA_TYPE = "application/json"


class UnsupportedMediaType(HTTPException):
    status_code = 415
    quiet = True


def parse_json(body: bytes | str) -> Any:
    """Strict JSON (see above), with no object naming a key twice; ValueError says
    what is wrong and where."""
    value = from_json(body, allow_inf_nan=False)
    if isinstance(value, dict | list):
        # jiter keeps the last of two equal keys without a word; which one the client
        # meant is unknowable, so such a body is refused. The standard library's parser
        # reports the pairs; jiter has already bounded the nesting it may recurse into.
        json.loads(body, object_pairs_hook=_no_duplicate_keys)
    return value


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> None:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {json.dumps(key)}")
        seen.add(key)


def require_json_content_type(request: Request) -> None:
    """415 unless the body is declared as JSON (UTF-8, the one encoding JSON has)."""
    media_type, params = parse_content_header(request.headers.get("content-type", ""))
    charset = str(params.get("charset", "utf-8")).lower()
    if media_type != JSON_MEDIA_TYPE or charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(
            f"request body must be JSON, sent with Content-Type: {JSON_MEDIA_TYPE}"
        )


def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object, or a 400 (415) that says what is wrong with it."""
    if not request.body:
        raise BadRequest("request body must be a JSON object")
    require_json_content_type(request)
    try:
        body = parse_json(request.body)
    except ValueError as error:
        raise BadRequest(f"request body is not valid JSON ({error})") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def is_storable_text(value: str) -> bool:
    """No NUL (PostgreSQL's text refuses it) and no unpaired surrogate (UTF-8 cannot
    encode it, so neither bcrypt nor the database driver can take it)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def string_field(body: dict[str, Any], name: str) -> str:
    """A required, non-empty string field, of text that can be stored."""
    if name not in body or body[name] is None:
        raise BadRequest(f"{name} is required")
    value = body[name]
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    if not value:
        raise BadRequest(f"{name} must not be empty")
    if not is_storable_text(value):
        raise BadRequest(f"{name} must not contain NUL characters or unpaired surrogates")
    return value
