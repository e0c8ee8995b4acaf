"""JSON bodies kept by the read model's version of what they render.

The read model gives the list, and each crypto, a new version whenever it applies a
change to it (a price, new rows, a trim, an add, a delete), and hands out the same
values until then (``TrackedSet.version_of``). So the body rendered from a value at
one version serves every read until that version moves on: a read of an unchanged
crypto costs a dictionary lookup, not a rendering of 100 timestamps. One body per
key (what was rendered, of which crypto, in which currency: a version is the crypto's
whatever the currency, so a body in usd never answers a read in eur): a new version
replaces the old body;
bounded, least recently used first. A value with no version (read through to the
database while the model is not live) is rendered every time and never kept.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from cachetools import LRUCache
from sanic import HTTPResponse
from sanic.helpers import json_dumps  # what sanic.response.json uses: same bytes

DEFAULT_MAX_ENTRIES = 4_096  # about 25 MB at most, with 100-price histories


def _encoded(content: Any) -> bytes:
    body = json_dumps(content)
    return body.encode() if isinstance(body, str) else body


class RenderedBodies:
    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._kept: LRUCache[Hashable, tuple[int, bytes]] = LRUCache(max_entries)

    def body(self, key: Hashable, version: int | None, render: Callable[[], Any]) -> bytes:
        """``render()`` as JSON, kept under ``key`` while ``version`` holds."""
        if version is None:
            return _encoded(render())
        kept = self._kept.get(key)
        if kept is not None and kept[0] == version:
            return kept[1]
        encoded = _encoded(render())
        self._kept[key] = (version, encoded)
        return encoded

    def response(
        self, key: Hashable, version: int | None, render: Callable[[], Any]
    ) -> HTTPResponse:
        return HTTPResponse(self.body(key, version, render), content_type="application/json")
