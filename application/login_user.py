"""Log a user in: check the password and hand back a token."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import InvalidCredentials
from domain.ports import PasswordHasher, TokenService, UserRepository


@dataclass(frozen=True, slots=True)
class LoginUser:
    users: UserRepository
    hasher: PasswordHasher
    tokens: TokenService

    async def __call__(self, username: str, password: str) -> str:
        """No length or character rules here: wrong credentials of any shape are a 401,
        and an unknown user costs the same bcrypt check as a known one."""
        user = await self.users.get_by_username(username)
        ok = await self.hasher.verify(password, user.password_hash if user else None)
        if user is None or not ok:
            raise InvalidCredentials()
        return self.tokens.issue(user.id)
