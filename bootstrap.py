"""The composition root: settings in, wired use cases out. No web framework here.

``bootstrap()`` reads the settings, fills in the laptop defaults (an embedded
PostgreSQL, a dev JWT secret), builds the concrete adapters and hands them to the
use cases. The HTTP app (``interfaces.http.app``), the standalone poller
(``python -m interfaces.standalone_poller``), the tests and the benchmarks all start
here, so each gets the same wiring. Opening and closing the database pool is left to the
caller (Sanic's ``register_tortoise``, or ``database()`` below), because where
Tortoise's state lives depends on who runs the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tortoise import Tortoise

from application.add_crypto import AddCrypto
from application.authenticate import Authenticate
from application.check_quote_currencies import CheckQuoteCurrencies
from application.delete_crypto import DeleteCrypto
from application.get_crypto import GetCrypto
from application.list_coins import FindCandidates, ListCoins
from application.list_cryptos import ListCryptos
from application.login_user import LoginUser
from application.poll_cycle import PollCycle, PollResult
from application.poll_schedule import PollPace, PollSchedule
from application.price_history import PriceHistory
from application.price_stats import PriceStatistics
from application.refresh_crypto import RefreshCrypto
from application.register_user import RegisterUser
from application.resolve_ticker import ResolveTicker
from application.watch_prices import WatchPrices
from domain.ports import Clock, MonthlyCalls, PollerMonitor
from infrastructure.cache import ManagedTickerCache, MemoryTickerCache, RedisTickerCache
from infrastructure.cache.known_users import KnownUsers
from infrastructure.clock import utc_now
from infrastructure.coingecko.call_budget import CallBudget, build_call_budget
from infrastructure.coingecko.client import CoinGeckoClient
from infrastructure.db.config import tortoise_config
from infrastructure.db.engine import database_deadline
from infrastructure.db.leader_lock import AdvisoryLeaderLock
from infrastructure.db.migrate import upgrade
from infrastructure.db.month_calls import PostgresMonthlyCalls
from infrastructure.db.repositories import (
    TortoiseCryptoRepository,
    TortoiseUserRepository,
    notify_change,
)
from infrastructure.db.upstream import AnnouncedUpstream
from infrastructure.log_setup import configuration_error, configure_logging
from infrastructure.metrics import (
    PrometheusPollerMonitor,
    observe_month_budget,
    observe_read_model,
)
from infrastructure.read_model.feed import BroadcastFeed
from infrastructure.read_model.live import LiveReadModel
from infrastructure.read_model.repository import ReadModelCryptoRepository
from infrastructure.security.login_throttle import ManagedLoginThrottle, build_login_throttle
from infrastructure.security.passwords import BcryptPasswordHasher
from infrastructure.security.token_cache import CachingTokenService
from infrastructure.security.tokens import JwtTokenService, load_or_create_secret
from infrastructure.settings import Settings, SettingsError

log = logging.getLogger(__name__)

PROMETHEUS_POLLER_MONITOR = PrometheusPollerMonitor()

# Nobody waits on a poll cycle, and one cut short wastes the CoinGecko call it made:
# its database work (a batch over every tracked crypto, behind requests' row locks)
# gets longer than a request's DATABASE_TIMEOUT_SECONDS, though still a bound.
POLLER_DATABASE_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Services:
    """One use case per user action, plus the poll cycle."""

    register_user: RegisterUser
    login_user: LoginUser
    list_cryptos: ListCryptos
    add_crypto: AddCrypto
    list_coins: ListCoins
    get_crypto: GetCrypto
    refresh_crypto: RefreshCrypto
    price_history: PriceHistory
    price_stats: PriceStatistics
    delete_crypto: DeleteCrypto
    poll_cycle: PollCycle
    authenticate: Authenticate
    watch_prices: WatchPrices


@dataclass(frozen=True, slots=True)
class Wiring:
    """What ``bootstrap`` built: the services and the adapters their owner must close."""

    settings: Settings  # complete: database_url and jwt_secret are set
    embedded_database: bool  # then the process that serves applies the migrations
    services: Services
    cache: ManagedTickerCache
    limiter: CallBudget
    month: MonthlyCalls | None  # None: no monthly budget (COINGECKO_CALLS_PER_MONTH=0)
    source: CoinGeckoClient
    clock: Clock
    poller_monitor: PollerMonitor | None
    login_throttle: ManagedLoginThrottle
    # Started by whoever serves reads (the HTTP server); until then, and without
    # it, every read goes to the database.
    read_model: LiveReadModel
    feed: BroadcastFeed

    @property
    def database_url(self) -> str:
        assert self.settings.database_url is not None
        return self.settings.database_url

    def tortoise_config(self) -> dict[str, Any]:
        return tortoise_config(self.database_url, self.settings.database_timeout_seconds)

    def poll_schedule(self) -> PollSchedule:
        """The poll cycle on its schedule, with its own leader lock (one per process)."""
        poll = self.services.poll_cycle
        seconds = max(self.settings.database_timeout_seconds, POLLER_DATABASE_TIMEOUT_SECONDS)

        async def poll_with_deadline() -> PollResult:
            with database_deadline(seconds):
                return await poll()

        floor = self.settings.price_poll_interval_seconds
        poller = PollSchedule(
            poll_with_deadline,
            AdvisoryLeaderLock(self.database_url),
            floor,
            upstream=AnnouncedUpstream(notify_change, self.clock, lambda: self.read_model.upstream),
            check=CheckQuoteCurrencies(self.source, self.settings.currencies),
        )
        if self.month is not None:
            source = self.source
            poller.pace = PollPace(
                self.month, poll.cryptos, self.clock, floor, lambda: source.batch_size
            )
        if self.poller_monitor is not None:
            poller.monitor = self.poller_monitor
        return poller

    async def close(self) -> None:
        await self.source.close()
        await self.cache.close()
        await self.limiter.close()
        await self.login_throttle.close()


def load_settings() -> Settings:
    """The settings from the environment; a bad one ends the process with a clear line."""
    try:
        return Settings.from_env()
    except SettingsError as error:
        raise configuration_error(error) from None


def start_embedded_postgres(pgdata: Path) -> str:
    """The embedded PostgreSQL's URL, from the optional ``embedded`` extra; without it
    (the image) no DATABASE_URL is a configuration error, not a database that would die
    with the container."""
    try:
        from infrastructure.db.embedded import start_embedded_postgres as start
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] != "embedded_postgres":
            raise
        raise configuration_error(
            SettingsError(
                "DATABASE_URL is not set and the embedded PostgreSQL that would stand in for "
                "it is not installed (pip install 'crypto-price-server[embedded]'); set "
                "DATABASE_URL=postgres://user:password@host:5432/dbname"
            )
        ) from None
    return start(pgdata)


def with_laptop_defaults(settings: Settings) -> tuple[Settings, bool]:
    """Fill in what a newcomer did not configure: an embedded PostgreSQL and a dev
    JWT secret, both kept under DATA_DIR. Returns the settings and whether the
    database is the embedded one."""
    embedded = settings.database_url is None
    updates: dict[str, Any] = {}
    if embedded:
        updates["database_url"] = start_embedded_postgres(settings.data_dir / "postgres")
    if settings.jwt_secret is None:
        log.warning(
            "JWT_SECRET is not set: using a random secret kept in %s/jwt_secret "
            "(fine for development; set JWT_SECRET in production)",
            settings.data_dir,
        )
        try:
            updates["jwt_secret"] = load_or_create_secret(settings.data_dir)
        except SettingsError as error:
            raise configuration_error(error) from None
    return settings.model_copy(update=updates), embedded


def build_cache(settings: Settings) -> ManagedTickerCache:
    if settings.redis_url is None:
        log.info("REDIS_URL is not set: caching tickers in process memory")
        return MemoryTickerCache()
    return RedisTickerCache.from_url(
        settings.redis_url, key_prefix=f"{settings.redis_key_prefix}ticker:"
    )


def build_services(
    settings: Settings,
    cache: ManagedTickerCache,
    source: CoinGeckoClient,
    clock: Clock,
    login_throttle: ManagedLoginThrottle,
    read_model: LiveReadModel,
    feed: BroadcastFeed,
) -> Services:
    assert settings.jwt_secret is not None
    cryptos = ReadModelCryptoRepository(TortoiseCryptoRepository(), read_model)
    users = TortoiseUserRepository()
    hasher = BcryptPasswordHasher(rounds=settings.bcrypt_rounds)
    tokens = CachingTokenService(JwtTokenService(settings.jwt_secret, settings.jwt_expires_seconds))
    keep = settings.history_limit
    candidates = FindCandidates(cache, source)
    currencies = settings.currencies
    return Services(
        register_user=RegisterUser(users, hasher, tokens, open=settings.registration_open),
        login_user=LoginUser(users, hasher, tokens, login_throttle),
        list_cryptos=ListCryptos(cryptos),
        add_crypto=AddCrypto(
            cryptos, ResolveTicker(cache, source), candidates, source, clock, currencies
        ),
        list_coins=ListCoins(candidates),
        get_crypto=GetCrypto(cryptos),
        refresh_crypto=RefreshCrypto(cryptos, source, clock, keep),
        price_history=PriceHistory(cryptos, keep),
        price_stats=PriceStatistics(cryptos, keep),
        delete_crypto=DeleteCrypto(cryptos),
        poll_cycle=PollCycle(cryptos, source, clock, keep),
        authenticate=Authenticate(tokens, KnownUsers(users)),
        watch_prices=WatchPrices(cryptos, feed, lambda: read_model.upstream),
    )


def bootstrap(
    settings: Settings | None = None,
    *,
    clock: Clock = utc_now,
    poller_monitor: PollerMonitor | None = PROMETHEUS_POLLER_MONITOR,
    setup_logging: Callable[[Settings], None] = configure_logging,
) -> Wiring:
    """Everything wired, from ``settings`` (the environment's when None)."""
    settings = settings or load_settings()
    setup_logging(settings)
    settings, embedded = with_laptop_defaults(settings)
    cache = build_cache(settings)
    limiter = build_call_budget(settings)  # shared by every replica through Redis, if any
    budget = settings.coingecko_calls_per_month
    month = PostgresMonthlyCalls(budget, clock) if budget else None  # shared through PostgreSQL
    observe_month_budget(budget)
    source = CoinGeckoClient.from_settings(settings, limiter, month)
    login_throttle = build_login_throttle(settings)  # shared through Redis too, if any
    feed = BroadcastFeed(settings.stream_max_clients)
    read_model = LiveReadModel(
        settings.listen_database_url or settings.database_url or "",
        settings.history_limit,
        settings.currencies,
        notify=notify_change,
        publish=feed.publish,
        observe=observe_read_model,
    )
    return Wiring(
        settings=settings,
        embedded_database=embedded,
        services=build_services(settings, cache, source, clock, login_throttle, read_model, feed),
        cache=cache,
        limiter=limiter,
        month=month,
        source=source,
        clock=clock,
        poller_monitor=poller_monitor,
        login_throttle=login_throttle,
        read_model=read_model,
        feed=feed,
    )


@asynccontextmanager
async def database(wiring: Wiring) -> AsyncIterator[None]:
    """Tortoise open on the wired database for the block (outside Sanic). An embedded
    database is migrated first, as the server does when it starts on one."""
    if wiring.embedded_database:
        await upgrade(wiring.database_url)
    await Tortoise.init(config=wiring.tortoise_config(), _enable_global_fallback=True)
    try:
        yield
    finally:
        await Tortoise.close_connections()
