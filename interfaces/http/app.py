"""The app factory: the one composition root.

``sanic interfaces.http.app:create_app --factory`` calls it in the main process and
in every worker. It reads the settings, builds the concrete adapters, hands them to
the use cases, and mounts the routes, error handlers and background poller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from dataclasses import replace
from typing import TextIO

from sanic import Sanic
from tortoise.contrib.sanic import register_tortoise

from application.add_crypto import AddCrypto
from application.delete_crypto import DeleteCrypto
from application.get_crypto import GetCrypto
from application.list_cryptos import ListCryptos
from application.login_user import LoginUser
from application.poll_prices import PollPrices
from application.price_history import PriceHistory
from application.price_stats import PriceStatistics
from application.refresh_crypto import RefreshCrypto
from application.register_user import RegisterUser
from application.resolve_ticker import ResolveTicker
from domain.ports import TickerCache
from infrastructure.cache.memory_cache import MemoryTickerCache
from infrastructure.cache.redis_cache import RedisTickerCache
from infrastructure.clock import utc_now
from infrastructure.coingecko.client import CoinGeckoClient
from infrastructure.coingecko.shared_rate_limiter import build_rate_limiter
from infrastructure.db.config import tortoise_config
from infrastructure.db.embedded import start_embedded_postgres
from infrastructure.db.leader_lock import AdvisoryLeaderLock
from infrastructure.db.migrate import upgrade
from infrastructure.db.repositories import TortoiseCryptoRepository, TortoiseUserRepository
from infrastructure.security.passwords import BcryptPasswordHasher
from infrastructure.security.tokens import JwtTokenService, load_or_create_secret
from infrastructure.settings import Settings, SettingsError
from interfaces.http.errors import register_error_handlers
from interfaces.http.poller import run_poller
from interfaces.http.routes import auth, cryptos, health, pages
from interfaces.http.services import Services

log = logging.getLogger(__name__)

APP_NAME = "CryptoPriceServer"
MAX_BODY_BYTES = 1024 * 1024


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as error:
        raise SystemExit(f"configuration error: {error}") from None


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time, not what it was at start-up."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure_logging(level: str) -> None:
    """Our own loggers (the poller, the CoinGecko client, the cache) print beside
    Sanic's, which has handlers of its own."""
    handler = StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("application", "infrastructure", "interfaces", "embedded_postgres"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if not logger.handlers:
            logger.addHandler(handler)


def with_embedded_defaults(settings: Settings) -> tuple[Settings, bool]:
    """Fill in what a newcomer did not configure: an embedded PostgreSQL and a dev
    JWT secret, both kept under DATA_DIR. Returns the settings and whether the
    database is the embedded one (then the server applies migrations itself)."""
    embedded = settings.database_url is None
    if embedded:
        url = start_embedded_postgres(settings.data_dir / "postgres")
        os.environ["DATABASE_URL"] = url  # the workers started after us use the same one
        settings = replace(settings, database_url=url)
    if settings.jwt_secret is None:
        log.warning(
            "JWT_SECRET is not set: using a random secret kept in %s/jwt_secret "
            "(fine for development; set JWT_SECRET in production)",
            settings.data_dir,
        )
        settings = replace(settings, jwt_secret=load_or_create_secret(settings.data_dir))
    return settings, embedded


def build_cache(settings: Settings) -> RedisTickerCache | MemoryTickerCache:
    if settings.redis_url is None:
        log.info("REDIS_URL is not set: caching tickers in process memory")
        return MemoryTickerCache()
    return RedisTickerCache.from_url(
        settings.redis_url, key_prefix=f"{settings.redis_key_prefix}ticker:"
    )


def build_services(settings: Settings, cache: TickerCache, source: CoinGeckoClient) -> Services:
    assert settings.jwt_secret is not None
    cryptos_repo = TortoiseCryptoRepository()
    users = TortoiseUserRepository()
    hasher = BcryptPasswordHasher(rounds=settings.bcrypt_rounds)
    tokens = JwtTokenService(settings.jwt_secret, settings.jwt_expires_seconds)
    keep = settings.history_limit
    return Services(
        register_user=RegisterUser(users, hasher, tokens),
        login_user=LoginUser(users, hasher, tokens),
        list_cryptos=ListCryptos(cryptos_repo),
        add_crypto=AddCrypto(cryptos_repo, ResolveTicker(cache, source), source, utc_now),
        get_crypto=GetCrypto(cryptos_repo),
        refresh_crypto=RefreshCrypto(cryptos_repo, source, utc_now, keep),
        price_history=PriceHistory(cryptos_repo, keep),
        price_stats=PriceStatistics(cryptos_repo),
        delete_crypto=DeleteCrypto(cryptos_repo),
        poll_prices=PollPrices(cryptos_repo, source, utc_now, keep),
        tokens=tokens,
    )


def describe_api(app: Sanic) -> None:
    """The OpenAPI description served at /docs/openapi.json (sanic-ext)."""
    app.ext.openapi.describe(
        "Crypto Price Server",
        version="0.1.0",
        description="Cryptocurrency prices from CoinGecko, with their recent history.",
    )
    app.ext.openapi.add_security_scheme("token", "http", scheme="bearer", bearer_format="JWT")


def create_app(*_cli_args: object, settings: Settings | None = None) -> Sanic:
    """Build the app. Sanic's CLI passes its parsed arguments, which are not needed:
    the configuration comes from the environment (or ``settings``, in tests)."""
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    settings, embedded = with_embedded_defaults(settings)
    assert settings.database_url is not None
    database_url = settings.database_url

    app = Sanic(APP_NAME)
    app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES
    app.config.OAS_UI_DEFAULT = "swagger"
    register_error_handlers(app)
    register_tortoise(app, config=tortoise_config(database_url))

    cache = build_cache(settings)
    limiter = build_rate_limiter(settings)  # shared by every worker through Redis, if any
    source = CoinGeckoClient.from_settings(settings, limiter)
    app.ctx.services = build_services(settings, cache, source)
    app.ctx.cache_ready = cache.ping

    for blueprint in (auth.bp, cryptos.bp, health.bp, pages.bp):
        app.blueprint(blueprint)
    describe_api(app)

    if embedded:

        @app.main_process_start
        async def migrate_embedded_database(app: Sanic) -> None:
            log.info("applying migrations to the embedded PostgreSQL")
            await upgrade(database_url)

    if settings.price_poller_enabled:

        @app.after_server_start
        async def start_poller(app: Sanic) -> None:
            lock = AdvisoryLeaderLock(database_url)
            interval = settings.price_poll_interval_seconds
            poller = run_poller(app.ctx.services.poll_prices, lock, interval)
            # Our own task, not app.add_task: Sanic's shutdown_tasks spins forever on
            # a task that must await while it is cancelled (releasing the lock does).
            app.ctx.poller = asyncio.create_task(poller, name="price-poller")

        @app.before_server_stop
        async def stop_poller(app: Sanic) -> None:
            task: asyncio.Task[None] = app.ctx.poller
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @app.after_server_stop
    async def close_clients(app: Sanic) -> None:
        await source.close()
        await cache.close()
        await limiter.close()

    return app
