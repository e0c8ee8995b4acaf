"""The bearer guard's "is this user still stored?", remembered for a short while.

Every authenticated request asks it, so a database round trip each time would cost
more than the request itself. Only "yes" is remembered: a deleted user's tokens stop
working within ``ttl_seconds`` (30 s), and "no" always asks the database (a token is
signed by us, so a "no" is rare: a deleted user, or a database restored from before
the user). Per process, bounded (least recently used entries go first).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cachetools import TTLCache

from domain.ports import UserDirectory

DEFAULT_TTL_SECONDS = 30.0
DEFAULT_MAX_ENTRIES = 10_000


class KnownUsers:
    """Implements domain.ports.UserDirectory in front of another one (the repository)."""

    def __init__(
        self,
        users: UserDirectory,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._users = users
        self._known: TTLCache[int, bool] = TTLCache(max_entries, ttl_seconds, timer=clock)

    async def exists(self, user_id: int) -> bool:
        if self._known.get(user_id):
            return True
        found = await self._users.exists(user_id)
        if found:
            self._known[user_id] = True
        return found

    def __len__(self) -> int:
        return len(self._known)
