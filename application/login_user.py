"""Log a user in: check the password and hand back a token."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import InvalidCredentials
from domain.ports import LoginThrottle, PasswordHasher, TokenService, UserRepository


@dataclass(frozen=True, slots=True)
class LoginUser:
    users: UserRepository
    hasher: PasswordHasher
    tokens: TokenService
    throttle: LoginThrottle

    async def __call__(self, username: str, password: str, address: str) -> str:
        """No length or character rules here: wrong credentials of any shape are a 401,
        and an unknown user costs the same bcrypt check as a known one. Past the
        throttle's limits, TooManyAttempts, even for the right password."""
        user = await self.users.get_by_username(username)
        # The stored spelling when the name finds a user: PostgreSQL's lower() also
        # matches spellings that Python's does not fold alike ('İ' finds 'i'), and each
        # such spelling must not get a count of its own.
        name = user.username if user else username
        await self.throttle.check(name, address)
        ok = await self.hasher.verify(password, user.password_hash if user else None)
        if user is None or not ok:
            await self.throttle.record_failure(name, address)
            raise InvalidCredentials()
        await self.throttle.check(name, address)  # failures counted while the hash ran
        await self.throttle.reset(name)
        return self.tokens.issue(user.id)
