"""Settings, read from the environment and validated once at start-up."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

PUBLIC_BASE_URL = "https://api.coingecko.com/api/v3"
PRO_BASE_URL = "https://pro-api.coingecko.com/api/v3"
MIN_JWT_SECRET_BYTES = 32

Plan = Literal["public", "demo", "pro"]
T = TypeVar("T", int, float)


class SettingsError(Exception):
    """A setting is missing or wrong; the message names it and says what is expected."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str | None
    redis_url: str | None
    redis_key_prefix: str
    coingecko_base_url: str
    coingecko_api_key: str | None
    coingecko_api_plan: Plan
    coingecko_calls_per_minute: int
    coingecko_timeout_seconds: float
    jwt_secret: str | None
    jwt_expires_seconds: int
    price_poll_interval_seconds: float
    price_poller_enabled: bool
    history_limit: int
    bcrypt_rounds: int
    data_dir: Path
    log_level: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def number(name: str, kind: Callable[[str], T], default: T, low: T, high: T) -> T:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise SettingsError(f"{name} must be a number, got {raw!r}") from None
            if not low <= value <= high:
                raise SettingsError(f"{name} must be between {low} and {high}, got {raw}")
            return value

        key = text("COINGECKO_API_KEY")
        plan_raw = (text("COINGECKO_API_PLAN") or ("demo" if key else "public")).lower()
        if plan_raw not in ("public", "demo", "pro"):
            raise SettingsError(f"COINGECKO_API_PLAN must be public, demo or pro, got {plan_raw!r}")
        plan: Plan = plan_raw  # type: ignore[assignment]
        if plan != "public" and key is None:
            raise SettingsError(f"COINGECKO_API_PLAN={plan} needs COINGECKO_API_KEY")
        base_url = text("COINGECKO_BASE_URL") or (
            PRO_BASE_URL if plan == "pro" else PUBLIC_BASE_URL
        )
        if not base_url.startswith(("http://", "https://")):
            raise SettingsError(f"COINGECKO_BASE_URL must be an http(s) URL, got {base_url!r}")

        secret = text("JWT_SECRET")
        if secret is not None and len(secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise SettingsError(
                f"JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes long "
                "(try: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )

        database_url = text("DATABASE_URL")
        if database_url is not None and not database_url.startswith(
            ("postgres://", "postgresql://")
        ):
            raise SettingsError("DATABASE_URL must be a postgres:// URL")
        redis_url = text("REDIS_URL")
        if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("REDIS_URL must be a redis:// URL")

        poller = (text("PRICE_POLLER_ENABLED") or "true").lower()
        if poller not in ("true", "false", "1", "0", "yes", "no"):
            raise SettingsError(f"PRICE_POLLER_ENABLED must be true or false, got {poller!r}")

        log_level = (text("LOG_LEVEL") or "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(
                f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}"
            )

        return cls(
            database_url=database_url,
            redis_url=redis_url,
            redis_key_prefix=text("REDIS_KEY_PREFIX") or "cps:",
            coingecko_base_url=base_url.rstrip("/"),
            coingecko_api_key=key,
            coingecko_api_plan=plan,
            coingecko_calls_per_minute=number("COINGECKO_CALLS_PER_MINUTE", int, 30, 1, 10_000),
            coingecko_timeout_seconds=number("COINGECKO_TIMEOUT_SECONDS", float, 10.0, 0.1, 60.0),
            jwt_secret=secret,
            jwt_expires_seconds=number("JWT_EXPIRES_SECONDS", int, 3600, 1, 31_536_000),
            price_poll_interval_seconds=number(
                "PRICE_POLL_INTERVAL_SECONDS", float, 30.0, 1.0, 86_400.0
            ),
            price_poller_enabled=poller in ("true", "1", "yes"),
            history_limit=number("HISTORY_LIMIT", int, 100, 1, 100_000),
            bcrypt_rounds=number("BCRYPT_ROUNDS", int, 12, 4, 31),
            data_dir=Path(text("DATA_DIR") or "data"),
            log_level=log_level,
        )
