"""The live price stream: ``GET /crypto`` with ``Accept: text/event-stream``.

Server-Sent Events: ``snapshot`` (the whole tracked set) on connect, then ``upstream``
(how the poller fares at CoinGecko, once known), then ``price``, ``added`` and
``removed`` as each write commits and ``upstream`` as that state changes, and a comment every
STREAM_HEARTBEAT_SECONDS so that proxies keep a quiet stream open (and so does Sanic:
its RESPONSE_TIMEOUT, 60 s, counts from the last bytes sent or received). The stream ends
when the token expires, when the server stops, or when the client falls too far
behind; a client reconnects and gets a new snapshot. Everything is in the stream's
``?currency=``: a price with none in it is not sent on that stream.
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
    """A commit's events rendered once per currency: every subscriber in this process
    is handed the same batch object, one after the other, and the streams in one
    currency share its body."""

    def __init__(self) -> None:
        self._batch: object = None
        self._bodies: dict[str, bytes] = {}

    def __call__(self, batch: Sequence[PriceEvent], currency: str) -> bytes:
        """The batch's events in ``currency``; empty when none is in it."""
        if batch is not self._batch:
            self._batch, self._bodies = batch, {}
        body = self._bodies.get(currency)
        if body is None:
            shown = (event_json(e, currency) for e in batch)
            body = b"".join(event(*named) for named in shown if named is not None)
            self._bodies[currency] = body
        return body


render = _Rendered()


async def stream_prices(request: Request, heartbeat_seconds: float, currency: str) -> None:
    """The stream in ``currency`` (a configured one): a price with none in it is not sent."""
    snapshot, upstream, subscription = await services(request).watch_prices()
    observe_stream(opened=True)
    try:
        response = await request.respond(
            content_type=f"{MEDIA_TYPE}; charset=utf-8",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        first = event("snapshot", {"cryptos": [crypto_json(c, currency) for c in snapshot]})
        if upstream is not None:
            first += event("upstream", upstream_json(upstream))
        await response.send(first)
        last_sent = time.monotonic()
        expires_at = request.ctx.token_expires_at
        while (left := expires_at - time.time()) > 0:
            until_heartbeat = heartbeat_seconds - (time.monotonic() - last_sent)
            try:
                batch = await subscription.next(within=max(0.0, min(until_heartbeat, left)))
            except FeedClosed:
                break
            body = b"" if batch is None else render(batch, currency)
            if not body:
                # Nothing for this stream: a heartbeat once it has been quiet that long
                # (batches it skips must not keep it silent past a proxy's timeout).
                if time.monotonic() - last_sent < heartbeat_seconds or time.time() >= expires_at:
                    continue
                body = HEARTBEAT
            await response.send(body)
            last_sent = time.monotonic()
        await response.eof()
    finally:
        subscription.close()
        observe_stream(opened=False)
