"""bcrypt password hashing, off the event loop.

bcrypt reads at most 72 bytes and bcrypt 5 raises ValueError beyond that, so longer
passwords never reach it: ``hash`` refuses them (the use case has validated the length
already) and ``verify`` answers False for them after spending the time of a check, like
it does for an unknown user (no hash) or a stored hash bcrypt cannot read.

Hashes run on this hasher's own threads, one by default, not on the loop's default
executor (up to cpu_count + 4 threads): bcrypt releases the GIL, so eight logins at
once would keep eight threads on the CPU and starve the event loop of the same
process, and every read it serves waits (measured in bench/RESULTS.md: read p50 6.8x
its idle value with the default executor). Logins queue instead; each still costs one
hash, and the login throttle bounds how many an attacker can queue.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import bcrypt

from domain.model import PASSWORD_MAX_BYTES

log = logging.getLogger(__name__)

MIN_ROUNDS, MAX_ROUNDS = 4, 31
T = TypeVar("T")


class BcryptPasswordHasher:
    """Implements domain.ports.PasswordHasher with bcrypt at cost ``rounds``."""

    def __init__(self, rounds: int = 12, *, threads: int = 1) -> None:
        if isinstance(rounds, bool) or not MIN_ROUNDS <= rounds <= MAX_ROUNDS:
            raise ValueError(f"bcrypt rounds must be between {MIN_ROUNDS} and {MAX_ROUNDS}")
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.rounds = rounds
        self._dummy: bytes | None = None
        self._dummy_lock = threading.Lock()
        # Threads start on first use, in the process that hashes (the server).
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="bcrypt")

    async def _off_loop(self, func: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, func, *args)

    async def hash(self, password: str) -> str:
        secret = password.encode("utf-8")
        if len(secret) > PASSWORD_MAX_BYTES:
            raise ValueError(f"bcrypt cannot hash more than {PASSWORD_MAX_BYTES} bytes")
        hashed = await self._off_loop(bcrypt.hashpw, secret, bcrypt.gensalt(self.rounds))
        return hashed.decode("ascii")

    async def verify(self, password: str, password_hash: str | None) -> bool:
        return await self._off_loop(self._verify, password.encode("utf-8"), password_hash)

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
