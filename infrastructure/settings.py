"""Settings, read from the environment by pydantic-settings and validated once at start-up.

Every field is one environment variable of the same name in upper case (``history_limit``
is ``HISTORY_LIMIT``). An empty variable counts as unset, so ``FOO=`` (as Compose passes
``${FOO:-}``) means the default; a value is stripped of surrounding blanks first, so a
secret of spaces is refused rather than taken as unset. A wrong value raises
SettingsError naming the variable, which the server prints as ``configuration error: ...``.

The order of the fields is the order of README's table and of ``.env.example``.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from domain.model import QuoteCurrencies

PUBLIC_BASE_URL = "https://api.coingecko.com/api/v3"
PRO_BASE_URL = "https://pro-api.coingecko.com/api/v3"
MIN_JWT_SECRET_BYTES = 32
DEMO_CALLS_PER_MONTH = 10_000  # CoinGecko's demo plan: its monthly credits

Plan = Literal["public", "demo", "pro"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["text", "json"]


# True while from_env builds Settings from a mapping: the environment is then not read.
_MAPPING_ONLY: ContextVar[bool] = ContextVar("settings_from_mapping_only", default=False)


class SettingsError(Exception):
    """A setting is missing or wrong; the message names it and says what is expected."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,
        # Hidden defaults from a file in the working directory would surprise: the
        # environment is the one source (Compose and Kubernetes set it, `make run` reads it).
        env_file=None,
    )

    # repr=False: a logged or printed Settings never shows a password or a secret.
    database_url: str | None = Field(None, repr=False)
    listen_database_url: str | None = Field(None, repr=False)
    redis_url: str | None = Field(None, repr=False)
    jwt_secret: str | None = Field(None, repr=False)
    jwt_expires_seconds: int = Field(3600, ge=1, le=31_536_000)
    bcrypt_rounds: int = Field(12, ge=4, le=31)
    coingecko_api_plan: Plan = "public"
    coingecko_api_key: str | None = Field(None, repr=False)
    coingecko_base_url: str = PUBLIC_BASE_URL
    coingecko_calls_per_minute: int = Field(30, ge=1, le=10_000)
    # 0: no monthly budget (the default but on the demo plan: DEMO_CALLS_PER_MONTH)
    coingecko_calls_per_month: int = Field(0, ge=0, le=1_000_000_000)
    coingecko_timeout_seconds: float = Field(10.0, ge=0.1, le=60.0)
    price_poll_interval_seconds: float = Field(30.0, ge=1.0, le=86_400.0)
    price_poller_enabled: bool = True
    history_limit: int = Field(100, ge=1, le=100_000)
    # CoinGecko vs_currencies codes, comma-separated; the first is every answer's default
    quote_currencies: str = "usd"
    data_dir: Path = Path("data")
    redis_key_prefix: str = "cps:"
    log_level: LogLevel = "INFO"
    log_format: LogFormat = "text"
    shutdown_grace_seconds: float = Field(20.0, ge=0.0, le=600.0)
    request_timeout_seconds: float = Field(15.0, ge=1.0, le=600.0)
    database_timeout_seconds: float = Field(2.0, ge=0.1, le=60.0)
    registration_open: bool = True
    login_failures_per_username: int = Field(10, ge=1, le=100_000)
    login_failures_per_address: int = Field(50, ge=1, le=1_000_000)
    login_window_seconds: int = Field(600, ge=1, le=86_400)
    proxies_count: int = Field(0, ge=0, le=10)
    # What one process carries within the stream's 1 s goal (bench/RESULTS.md, bench.streams).
    stream_max_clients: int = Field(5000, ge=0, le=100_000)
    stream_heartbeat_seconds: float = Field(
        15.0, ge=0.1, le=50.0
    )  # < Sanic's 60 s RESPONSE_TIMEOUT

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings from the process environment, or from ``env`` alone (tests)."""
        try:
            if env is None:
                return cls()
            # pydantic-settings reads the environment even in model_validate: the
            # sources are cut down to the mapping given (settings_customise_sources).
            token = _MAPPING_ONLY.set(True)
            try:
                return cls.model_validate({name.lower(): value for name, value in env.items()})
            finally:
                _MAPPING_ONLY.reset(token)
        except ValidationError as error:
            raise SettingsError(describe(error)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        if _MAPPING_ONLY.get():
            return (init_settings,)
        return (init_settings, env_settings, dotenv_settings, file_secret_settings)

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        """Strip values, drop empty ones, and fill in what the CoinGecko plan implies."""
        if not isinstance(data, dict):
            return data
        values = {
            name: value.strip() if isinstance(value, str) else value
            for name, value in data.items()
            if value is not None and value != ""
        }
        plan = values.get("coingecko_api_plan")
        if isinstance(plan, str):
            values["coingecko_api_plan"] = plan.lower()
        elif values.get("coingecko_api_key"):
            values["coingecko_api_plan"] = "demo"
        if values.get("coingecko_api_plan") == "pro":
            values.setdefault("coingecko_base_url", PRO_BASE_URL)
        if values.get("coingecko_api_plan") == "demo":
            values.setdefault("coingecko_calls_per_month", DEMO_CALLS_PER_MONTH)
        if isinstance(values.get("log_level"), str):
            values["log_level"] = values["log_level"].upper()
        if isinstance(values.get("log_format"), str):
            values["log_format"] = values["log_format"].lower()
        return values

    @field_validator("jwt_secret")
    @classmethod
    def _long_secret(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode()) < MIN_JWT_SECRET_BYTES:
            raise ValueError(
                f"must be at least {MIN_JWT_SECRET_BYTES} bytes long "
                "(try: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return value

    @field_validator("database_url", "listen_database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgres://", "postgresql://")):
            raise ValueError("must be a postgres:// URL")
        return value

    @field_validator("quote_currencies")
    @classmethod
    def _currency_list(cls, value: str) -> str:
        return str(QuoteCurrencies.parse(value))  # normalised: lower case, no spaces

    @property
    def currencies(self) -> QuoteCurrencies:
        return QuoteCurrencies.parse(self.quote_currencies)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL")
        return value

    @field_validator("coingecko_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _plan_needs_key(self) -> Settings:
        if self.coingecko_api_plan != "public" and self.coingecko_api_key is None:
            raise ValueError(
                f"COINGECKO_API_PLAN={self.coingecko_api_plan} needs COINGECKO_API_KEY"
            )
        return self


def describe(error: ValidationError) -> str:
    """pydantic's errors, each led by the environment variable it is about."""
    lines = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        if item["loc"]:
            name = str(item["loc"][0]).upper()
            got = item.get("input")
            shown = f" (got {got!r})" if isinstance(got, str) and name not in SECRET_NAMES else ""
            lines.append(f"{name}: {message}{shown}")
        else:
            lines.append(message)
    return "; ".join(lines)


# Never echoed back in an error message: it would land in a log.
SECRET_NAMES = frozenset({"JWT_SECRET", "COINGECKO_API_KEY", "DATABASE_URL", "REDIS_URL"})
