"""The leader's word on CoinGecko, told to every replica through the change channel.

Only the leader polls, but every replica's streams must say how CoinGecko fares. The
state rides the read models' LISTEN/NOTIFY channel (``changes.upstream_payload``)
rather than Redis: every replica already listens there, in commit order with the
prices (a cycle's prices arrive before the ``ok`` that follows them), and it needs no
Redis, which is optional. Nothing stores it (no table), so the leader repeats it after
every cycle: a replica that starts or reloads learns it within one poll cycle.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from domain.events import UpstreamState
from domain.ports import Clock
from infrastructure.db.changes import upstream_payload

log = logging.getLogger(__name__)


class AnnouncedUpstream:
    """Implements ``domain.ports.UpstreamReporter``.

    ``since`` is when the status began: kept while the status stays, set to now when it
    changes. ``known`` is what this process last heard on the channel (its read model's
    ``upstream``), so a new leader carries on the deployment's ``since`` rather than
    starting its own."""

    def __init__(
        self,
        notify: Callable[[str], Awaitable[None]],
        clock: Clock,
        known: Callable[[], UpstreamState | None] = lambda: None,
    ) -> None:
        self._notify = notify
        self._clock = clock
        self._known = known
        self._state: UpstreamState | None = None

    async def report(self, status: str) -> None:
        current = self._known() or self._state
        if current is None or current.status != status:
            current = UpstreamState(status, self._clock())
        self._state = current
        try:
            await self._notify(upstream_payload(current.status, current.since))
        except Exception as error:  # the database is down: the next cycle tells again
            log.info("upstream state not announced: %s: %s", type(error).__name__, error)
