"""JSON bodies rendered once per object they render.

The read model hands out the same objects until a crypto changes (and a new one
after), so the body made from one can be kept with it: a read of an unchanged crypto
costs a dictionary lookup, not a rendering of 100 timestamps. Keyed by the object's
identity, holding the object itself (so that its id cannot be reused while kept);
bounded, least recently used first. Objects read through to the database are new
each time and simply miss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cachetools import LRUCache
from sanic import HTTPResponse
from sanic.helpers import json_dumps  # what sanic.response.json uses: same bytes

DEFAULT_MAX_ENTRIES = 4_096  # about 25 MB at most, with 100-price histories


class RenderedBodies:
    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._kept: LRUCache[int, tuple[object, bytes]] = LRUCache(max_entries)

    def body(self, source: object, render: Callable[[], Any]) -> bytes:
        kept = self._kept.get(id(source))
        if kept is not None and kept[0] is source:
            return kept[1]
        body = json_dumps(render())
        encoded = body.encode() if isinstance(body, str) else body
        self._kept[id(source)] = (source, encoded)
        return encoded

    def response(self, source: object, render: Callable[[], Any]) -> HTTPResponse:
        return HTTPResponse(self.body(source, render), content_type="application/json")
