"""Register a new user and hand back a token."""

from __future__ import annotations

from dataclasses import dataclass

from domain.model import Username, check_new_password
from domain.ports import PasswordHasher, TokenService, UserRepository


@dataclass(frozen=True, slots=True)
class RegisterUser:
    users: UserRepository
    hasher: PasswordHasher
    tokens: TokenService

    async def __call__(self, username: str, password: str) -> str:
        name = Username(username)
        check_new_password(password)
        user = await self.users.add(str(name), await self.hasher.hash(password))
        return self.tokens.issue(user.id)
