"""bcrypt password hashing, off the event loop.

bcrypt reads at most 72 bytes and bcrypt 5 raises ValueError beyond that, so longer
passwords never reach it: ``hash`` refuses them (the use case has validated the length
already) and ``verify`` answers False for them after spending the time of a check, like
it does for an unknown user (no hash) or a stored hash bcrypt cannot read.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading

import bcrypt

from domain.model import PASSWORD_MAX_BYTES

log = logging.getLogger(__name__)

MIN_ROUNDS, MAX_ROUNDS = 4, 31


class BcryptPasswordHasher:
    """Implements domain.ports.PasswordHasher with bcrypt at cost ``rounds``."""

    def __init__(self, rounds: int = 12) -> None:
        if isinstance(rounds, bool) or not MIN_ROUNDS <= rounds <= MAX_ROUNDS:
            raise ValueError(f"bcrypt rounds must be between {MIN_ROUNDS} and {MAX_ROUNDS}")
        self.rounds = rounds
        self._dummy: bytes | None = None
        self._dummy_lock = threading.Lock()

    async def hash(self, password: str) -> str:
        secret = password.encode("utf-8")
        if len(secret) > PASSWORD_MAX_BYTES:
            raise ValueError(f"bcrypt cannot hash more than {PASSWORD_MAX_BYTES} bytes")
        hashed = await asyncio.to_thread(bcrypt.hashpw, secret, bcrypt.gensalt(self.rounds))
        return hashed.decode("ascii")

    async def verify(self, password: str, password_hash: str | None) -> bool:
        return await asyncio.to_thread(self._verify, password.encode("utf-8"), password_hash)

    def _verify(self, secret: bytes, password_hash: str | None) -> bool:
        """Runs in a worker thread. Every way to fail costs one bcrypt check."""
        if password_hash is not None and len(secret) <= PASSWORD_MAX_BYTES:
            try:
                return bcrypt.checkpw(secret, password_hash.encode("utf-8"))
            except ValueError:
                log.warning("a stored password hash is not a bcrypt hash; the check fails")
        bcrypt.checkpw(secret[:PASSWORD_MAX_BYTES], self._dummy_hash())
        return False

    def _dummy_hash(self) -> bytes:
        """A hash of a random password at our cost, made once (in a worker thread)."""
        with self._dummy_lock:
            if self._dummy is None:
                self._dummy = bcrypt.hashpw(secrets.token_bytes(32), bcrypt.gensalt(self.rounds))
            return self._dummy
