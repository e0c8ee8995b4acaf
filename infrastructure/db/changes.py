"""What a write tells every server on commit: a PostgreSQL NOTIFY on one channel.

Each write transaction (add, delete, and every price batch: a poll cycle or a refresh)
sends one notification in the same transaction, so PostgreSQL delivers it on commit,
in commit order, to the listening connection of every replica, and never for a write
that rolled back. Each server process's read model
(``infrastructure.read_model.live``) applies them.

The payload is JSON naming what changed, never the data itself (a NOTIFY payload is at
most 8000 bytes):

- ``{"kind": "added", "ids": [7]}`` and ``{"kind": "removed", "ids": [7]}``;
- ``{"kind": "prices", "ids": [1, 2], "since": "<ISO 8601>", "keep": 100}``: these
  cryptos got history rows stamped ``since`` or later, and keep their newest ``keep``
  (a batch over more than ``MAX_IDS`` cryptos says ``"ids": null``: any may have);
- ``{"kind": "upstream", "status": "rate_limited", "since": "<ISO 8601>"}``: how the
  poller's latest cycle fared at CoinGecko (``domain.events.UpstreamState``). The
  leader sends it after every cycle, changed or not: nothing stores it, so a replica
  that starts (or reloads) meanwhile learns it within one poll cycle;
- ``{"kind": "sync", "token": "..."}``: no change; a process that just wrote sends it
  and waits for it to come back, so that its own read model has applied the write.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

CHANNEL = "cps_cryptos"
# 500 ids and the rest of a payload stay far below PostgreSQL's 8000 bytes.
MAX_IDS = 500


@dataclass(frozen=True, slots=True)
class Change:
    kind: str  # added, removed, prices, upstream or sync
    ids: tuple[int, ...] | None = None  # None: any crypto (a big price batch)
    since: datetime | None = None
    keep: int | None = None
    token: str | None = None
    status: str | None = None


def prices_payload(ids: Sequence[int], since: datetime, keep: int) -> str:
    listed = list(ids) if len(ids) <= MAX_IDS else None
    return json.dumps({"kind": "prices", "ids": listed, "since": since.isoformat(), "keep": keep})


def upstream_payload(status: str, since: datetime) -> str:
    return json.dumps({"kind": "upstream", "status": status, "since": since.isoformat()})


def sync_payload(token: str) -> str:
    return json.dumps({"kind": "sync", "token": token})


def parse(payload: str) -> Change:
    """Raises ValueError for a payload this version does not know."""
    try:
        data: Any = json.loads(payload)
        kind = data["kind"]
        ids = data.get("ids")
        since = data.get("since")
        keep = data.get("keep")
        return Change(
            kind=kind,
            ids=None if ids is None else tuple(int(i) for i in ids),
            since=None if since is None else datetime.fromisoformat(since),
            keep=None if keep is None else int(keep),
            token=data.get("token"),
            status=data.get("status"),
        )
    except (TypeError, KeyError, ValueError) as error:
        raise ValueError(f"not a change notification: {payload[:200]!r}") from error


def announce(kind: str, id_expression: str) -> str:
    """A pg_notify call for one crypto's add or removal, to put inside the statement
    that makes it (so that it stays one statement)."""
    payload = f"json_build_object('kind', '{kind}', 'ids', json_build_array({id_expression}))"
    return f"pg_notify('{CHANNEL}', {payload}::text)"


NOTIFY = f"SELECT pg_notify('{CHANNEL}', $1)"
