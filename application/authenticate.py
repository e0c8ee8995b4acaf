"""Who a bearer token stands for: its user, as long as that user is stored."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import InvalidToken
from domain.model import Principal
from domain.ports import TokenService, UserDirectory


@dataclass(frozen=True, slots=True)
class Authenticate:
    tokens: TokenService
    users: UserDirectory

    async def __call__(self, token: str) -> Principal:
        """The user of a valid token, if stored, and the token's expiry. Raises
        InvalidToken, also for a user that never existed or was deleted (a token
        outlives neither)."""
        subject, expires_at = self.tokens.verify(token)
        user_id = int(subject)
        if not await self.users.exists(user_id):
            raise InvalidToken("invalid token: its user does not exist")
        return Principal(user_id, expires_at)
