"""Register a new user and hand back a token."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import RegistrationClosed
from domain.model import User, Username, check_new_password
from domain.ports import PasswordHasher, TokenService, UserRepository


@dataclass(frozen=True, slots=True)
class RegisterUser:
    users: UserRepository
    hasher: PasswordHasher
    tokens: TokenService
    open: bool = True  # False: sign-up is closed; only an operator adds users (``create``)

    async def __call__(self, username: str, password: str) -> str:
        """Sign-up: the new user's token. Raises RegistrationClosed when it is closed."""
        if not self.open:
            raise RegistrationClosed()
        user = await self.create(username, password)
        return self.tokens.issue(user.id)

    async def create(self, username: str, password: str) -> User:
        """Add a user, open or not (the operator's ``create-user`` command)."""
        name = Username(username)
        check_new_password(password)
        return await self.users.add(str(name), await self.hasher.hash(password))
