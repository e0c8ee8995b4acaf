"""The live price stream: ``GET /crypto`` with ``Accept: text/event-stream``.

Server-Sent Events: ``snapshot`` (the whole tracked set) on connect, then ``upstream``
(how the poller fares at CoinGecko, once known), then ``price``, ``added`` and
``removed`` as each write commits and ``upstream`` as that state changes, and a comment every
STREAM_HEARTBEAT_SECONDS so that proxies keep a quiet stream open (and so does Sanic:
its RESPONSE_TIMEOUT, 60 s, counts from the last bytes sent or received). The stream ends
when the token expires, when the server stops, or when the client falls too far
behind; a client reconnects and gets a new snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sanic import Request
from sanic.helpers import json_dumps

from domain.errors import FeedClosed
from domain.events import PriceEvent
from infrastructure.metrics import observe_stream
from interfaces.http.presenters import crypto_json, event_json, upstream_json
from interfaces.http.services import services

MEDIA_TYPE = "text/event-stream"
HEARTBEAT = b": keep-alive\n\n"


def wants_event_stream(request: Request) -> bool:
    """Whether the client asks for the stream (as EventSource does) rather than JSON:
    ``text/event-stream`` is named, and ranked above anything JSON matches. A type
    with ``q=0`` is one the client does not accept (RFC 9110, 12.4.2)."""
    for media in request.accept:  # most preferred first
        if media.q <= 0:
            continue
        if media.mime == MEDIA_TYPE:
            return True
        if media.match("application/json"):
            return False
    return False


def event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json_dumps(data)}\n\n".encode()


class _Rendered:
    """A commit's events rendered once: every subscriber in this process is handed the
    same batch object, one after the other."""

    def __init__(self) -> None:
        self._batch: object = None
        self._body = b""

    def __call__(self, batch: Sequence[PriceEvent]) -> bytes:
        if batch is not self._batch:
            self._body = b"".join(event(*event_json(e)) for e in batch)
            self._batch = batch
        return self._body


render = _Rendered()


async def stream_prices(request: Request, heartbeat_seconds: float) -> None:
    snapshot, upstream, subscription = await services(request).watch_prices()
    observe_stream(opened=True)
    try:
        response = await request.respond(
            content_type=f"{MEDIA_TYPE}; charset=utf-8",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        first = event("snapshot", {"cryptos": [crypto_json(c) for c in snapshot]})
        if upstream is not None:
            first += event("upstream", upstream_json(upstream))
        await response.send(first)
        expires_at = request.ctx.token_expires_at
        while (left := expires_at - time.time()) > 0:
            try:
                batch = await subscription.next(within=min(heartbeat_seconds, left))
            except FeedClosed:
                break
            if batch is not None:
                await response.send(render(batch))
            elif time.time() < expires_at:
                await response.send(HEARTBEAT)
        await response.eof()
    finally:
        subscription.close()
        observe_stream(opened=False)
