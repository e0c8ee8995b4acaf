"""JWT bearer tokens (HS256), and the dev secret kept under the data directory."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import jwt

from domain.errors import InvalidToken
from infrastructure.settings import MIN_JWT_SECRET_BYTES, SettingsError

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "sub"]
IAT_LEEWAY_SECONDS = 60  # clock skew tolerated between the hosts that issue and check
SECRET_FILE_NAME = "jwt_secret"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _claim_int(claims: dict[str, object], name: str) -> int:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidToken("invalid token")
    return value


class JwtTokenService:
    """Implements domain.ports.TokenService: HS256, claims sub (user id), iat, exp.

    ``clock`` (timezone-aware UTC datetimes) sets iat and exp when issuing and is the
    "now" that exp and iat are checked against, so a test clock works both ways; PyJWT
    checks the signature, the algorithm (pinned) and that exp, iat and sub are present.
    """

    def __init__(
        self,
        secret: str,
        expires_seconds: int,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if len(secret.encode("utf-8")) < MIN_JWT_SECRET_BYTES:
            raise ValueError(f"the JWT secret must be at least {MIN_JWT_SECRET_BYTES} bytes")
        if expires_seconds < 1:
            raise ValueError("expires_seconds must be at least 1")
        self._secret = secret
        self._expires = int(expires_seconds)
        self._clock = clock or _utc_now

    def _now(self) -> int:
        return int(self._clock().timestamp())

    def issue(self, user_id: int) -> str:
        if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id < 0:
            raise ValueError(f"a user id is a non-negative integer, got {user_id!r}")
        now = self._now()
        claims = {"sub": str(user_id), "iat": now, "exp": now + self._expires}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> tuple[str, int]:
        """The subject and the exp (Unix seconds) of a valid token. Raises InvalidToken."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                # exp and iat are checked below against self._clock, not PyJWT's own.
                options={"require": REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False},
            )
        except (jwt.PyJWTError, UnicodeError):  # PyJWT encodes a str token as UTF-8 first
            raise InvalidToken("invalid token") from None
        now = self._now()
        if _claim_int(claims, "iat") > now + IAT_LEEWAY_SECONDS:
            raise InvalidToken("invalid token")
        expires_at = _claim_int(claims, "exp")
        if expires_at <= now:
            raise InvalidToken("token expired")
        sub = claims["sub"]
        if not isinstance(sub, str) or not (sub.isascii() and sub.isdigit()):
            raise InvalidToken("invalid token")
        return sub, expires_at


def load_or_create_secret(data_dir: Path) -> str:
    """The JWT secret kept in ``data_dir/jwt_secret``, made on first use.

    The first caller writes a random secret to a private temporary file and links
    it into place, so the file appears whole or not at all: when several processes
    race (servers started together on one DATA_DIR), one link wins and everyone
    reads the winner's secret. The file is readable by its owner only (0600).
    Blocking file I/O: call it at start-up.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SECRET_FILE_NAME
    if not path.exists():
        _publish(path, secrets.token_urlsafe(48))
    secret = path.read_text(encoding="utf-8").strip()
    if len(secret.encode("utf-8")) < MIN_JWT_SECRET_BYTES:
        raise SettingsError(
            f"{path} holds no usable JWT secret (at least {MIN_JWT_SECRET_BYTES} bytes): "
            "delete it to have a new one made, or set JWT_SECRET"
        )
    if path.stat().st_mode & 0o077:
        log.warning("%s can be read by other users; it should have mode 0600", path)
    return secret


def _publish(path: Path, secret: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(secret + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)  # atomic, and fails if another process won
        except FileExistsError:
            return
        log.warning("made a new JWT secret in %s", path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
