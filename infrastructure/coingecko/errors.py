"""Reading CoinGecko's failures: error bodies of every shape, hints, Retry-After."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from domain.errors import UpstreamError


class CoinGeckoUnreachable(UpstreamError):
    """No answer at all: a timeout or a connection failure. Other calls made now
    would most likely fail the same way."""


# What CoinGecko's error codes mean for whoever runs the service.
HINTS: dict[int, str] = {
    10002: "CoinGecko wants an API key: set COINGECKO_API_KEY and COINGECKO_API_PLAN",
    10005: "this endpoint is not part of the CoinGecko plan of the key in use",
    10010: (
        "a pro key was sent to the public host: set COINGECKO_API_PLAN=pro "
        "(and COINGECKO_BASE_URL to the pro URL, or leave it unset)"
    ),
    10011: (
        "a demo key was sent to the pro host: set COINGECKO_API_PLAN=demo "
        "(and COINGECKO_BASE_URL to the public URL, or leave it unset)"
    ),
    429: "CoinGecko's rate limit: lower COINGECKO_CALLS_PER_MINUTE or poll less often",
    1020: "CoinGecko's CDN denied access to this address",
}

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_CDN_CODE = re.compile(r"error code:?\s*(\d{3,5})", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
MAX_DETAIL = 200


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """What an error answer said: CoinGecko's ``error_code`` and message, if any."""

    code: int | None
    message: str | None

    @property
    def hint(self) -> str | None:
        return None if self.code is None else HINTS.get(self.code)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def _code(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _text(value: object) -> str | None:
    return _short(value) if isinstance(value, str) and value.strip() else None


def _from_json(data: object) -> ErrorBody:
    if not isinstance(data, dict):
        return ErrorBody(None, _short(json.dumps(data)))
    error = data.get("error")
    status = data.get("status")
    if isinstance(error, dict):  # {"error": {"status": {...}}} or {"error": {...}}
        status = error.get("status", error)
    if isinstance(status, dict):
        message = _text(status.get("error_message")) or _text(status.get("message"))
        return ErrorBody(_code(status.get("error_code")), message)
    message = _text(error) or _text(data.get("error_message")) or _text(data.get("message"))
    return ErrorBody(_code(data.get("error_code")), message)


def parse_error_body(body: bytes) -> ErrorBody:
    """Whatever came back with an error status: CoinGecko's JSON shapes
    (``{"status": {...}}``, ``{"error": {"status": {...}}}``, ``{"error": "..."}``),
    other JSON, an HTML page from the CDN, plain text or nothing."""
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return ErrorBody(None, None)
    try:
        return _from_json(json.loads(text))
    except ValueError:
        pass
    cdn = _CDN_CODE.search(text)
    code = int(cdn.group(1)) if cdn else None
    title = _TITLE.search(text)
    if title:
        return ErrorBody(code, _text(_TAG.sub(" ", title.group(1))))
    return ErrorBody(code, _text(_TAG.sub(" ", text)))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After in seconds (``"119"``) or as an HTTP date; None when absent or
    unreadable. A date in the past gives 0."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)
