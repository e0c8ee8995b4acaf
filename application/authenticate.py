"""Who a bearer token stands for: its user, as long as that user is stored."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import InvalidToken
from domain.ports import TokenService, UserDirectory


@dataclass(frozen=True, slots=True)
class Authenticate:
    tokens: TokenService
    users: UserDirectory

    async def __call__(self, token: str) -> int:
        """The user id of a valid token whose user exists. Raises InvalidToken, also
        for a user that never existed or was deleted (a token outlives neither)."""
        user_id = int(self.tokens.subject(token))
        if not await self.users.exists(user_id):
            raise InvalidToken("invalid token: its user does not exist")
        return user_id
