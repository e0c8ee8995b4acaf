"""Verified bearer tokens, remembered so that a request does not pay a full HS256 decode.

Every authenticated request checks its token, and PyJWT's decode costs about as much
as a whole bare Sanic request. A token is immutable and signed, so once verified its
subject and exp never change: only time can make it invalid, and that is checked on
every hit against the cached exp, to the second, with the same answer the decode gives.
Only verified tokens are remembered: a forged, ``alg: none``, tampered or expired token
is verified (and refused) every time. Per process, bounded (least recently used first).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from cachetools import LRUCache

from domain.errors import InvalidToken
from infrastructure.clock import utc_now
from infrastructure.security.tokens import JwtTokenService

DEFAULT_MAX_ENTRIES = 10_000  # about 4 MB with the token strings (measured)


class CachingTokenService:
    """Implements domain.ports.TokenService in front of a JwtTokenService.

    ``clock`` (timezone-aware UTC datetimes) is the "now" a cached exp is checked
    against: give it the one the JwtTokenService has, so both answer alike.
    """

    def __init__(
        self,
        tokens: JwtTokenService,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._tokens = tokens
        self._clock = clock
        self._verified: LRUCache[str, tuple[str, int]] = LRUCache(max_entries)

    def issue(self, user_id: int) -> str:
        return self._tokens.issue(user_id)

    def verify(self, token: str) -> tuple[str, int]:
        cached = self._verified.get(token)
        if cached is None:
            cached = self._tokens.verify(token)  # raises for any token not valid now
            self._verified[token] = cached
            return cached
        if cached[1] <= int(self._clock().timestamp()):
            del self._verified[token]
            raise InvalidToken("token expired")
        return cached

    def __len__(self) -> int:
        return len(self._verified)
