"""The Sanic app factory: mounts routes, middleware and listeners on what ``bootstrap``
wired.

``sanic interfaces.http.app:create_app --factory --single-process`` calls it once:
the server is one process (more cores: more replicas, see README "Using more cores").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping

from sanic import HTTPResponse, Request, Sanic
from sanic.response import redirect
from sanic_ext.extensions.http.extension import HTTPExtension
from sanic_ext.extensions.openapi import openapi
from sanic_ext.extensions.openapi.extension import OpenAPIExtension
from tortoise.contrib.sanic import register_tortoise

from bootstrap import Wiring, bootstrap
from domain.model import QuoteCurrencies
from domain.ports import Clock
from infrastructure.clock import utc_now
from infrastructure.db.migrate import upgrade
from infrastructure.metrics import age_prices_by, count_tracked_by
from infrastructure.open_files import ensure_open_files
from infrastructure.settings import Settings
from interfaces.http.errors import register_error_handlers
from interfaces.http.hooks import mount_hooks
from interfaces.http.routes import auth, coins, cryptos, currencies, health, metrics, pages
from interfaces.http.sanic_fixes import ServerApp, StopSignalsWhileStarting
from interfaces.http.schemas import describe_currency_parameter

log = logging.getLogger(__name__)

APP_NAME = "CryptoPriceServer"
MAX_BODY_BYTES = 1024 * 1024


def describe_api(app: Sanic, quote_currencies: QuoteCurrencies) -> None:
    """The OpenAPI description served at /docs/openapi.json (sanic-ext), with the
    configured quote currencies (known only now) in ``?currency=``'s description."""
    describe_currency_parameter(quote_currencies)
    app.ext.openapi.describe(
        "Crypto Price Server",
        version="0.1.0",
        description="Cryptocurrency prices from CoinGecko, with their recent history.",
    )
    app.ext.openapi.add_security_scheme("token", "http", scheme="bearer", bearer_format="JWT")
    # sanic-ext's start-up banner links to a route of this name, which only its UIs
    # (off: see create_app) would otherwise provide.
    app.add_route(docs_index, "/docs", name="openapi.index")


@openapi.exclude()
async def docs_index(request: Request) -> HTTPResponse:
    """No UI here: /docs leads to the document itself."""
    return redirect(request.app.url_for("openapi.spec"))


def note_ignored_workers(environ: Mapping[str, str]) -> None:
    """WORKERS used to set Sanic's worker processes; one line says it no longer does."""
    if environ.get("WORKERS", "").strip():
        log.warning(
            "WORKERS=%s is ignored: the server is one process; "
            "for more cores run more replicas (README: Using more cores)",
            environ["WORKERS"].strip(),
        )


def mount_poller(app: Sanic, wiring: Wiring) -> None:
    """The process runs the poller's schedule; its leader lock lets one process of the
    deployment (of every replica, and any standalone poller) poll at a time."""

    @app.after_server_start
    async def start_poller(app: Sanic) -> None:
        # Our own task, not app.add_task: Sanic's shutdown_tasks spins forever on a
        # task that must await while it is cancelled (releasing the lock does).
        app.ctx.poller = asyncio.create_task(wiring.poll_schedule().run(), name="price-poller")

    @app.before_server_stop
    async def stop_poller(app: Sanic) -> None:
        # Cancelling rolls back a cycle's open transaction: nothing is half-written.
        task: asyncio.Task[None] = app.ctx.poller
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def mount_read_model(app: Sanic, wiring: Wiring) -> None:
    """The process keeps its own read model, fed by NOTIFY, and serves its price streams."""

    @app.after_server_start
    async def start_read_model(app: Sanic) -> None:
        await wiring.read_model.start()
        # Scraped from the tracked set itself: current as of each add and delete, where a
        # poll cycle's count lags by up to PRICE_POLL_INTERVAL_SECONDS (or never comes
        # without the poller).
        count_tracked_by(wiring.read_model.tracked_count)
        age_prices_by(wiring.read_model.oldest_update)

    @app.before_server_stop
    async def stop_read_model(app: Sanic) -> None:
        # Streams end first, cleanly (their handlers send the last chunk), so that the
        # graceful shutdown does not wait on them.
        wiring.feed.close_all("the server is stopping")
        count_tracked_by(None)
        age_prices_by(None)
        await wiring.read_model.stop()


def create_app(
    *cli_args: object, settings: Settings | None = None, clock: Clock = utc_now
) -> Sanic:
    """Build the app. Sanic's CLI passes its parsed arguments, which are not needed:
    the configuration comes from the environment (or ``settings``, in tests; ``clock``
    too)."""
    # Only the sanic command's process is the server's to stop; a test calls this
    # without arguments, and its own SIGINT must stay its own.
    early_signals = StopSignalsWhileStarting() if cli_args else None
    wiring = bootstrap(settings, clock=clock)
    settings = wiring.settings

    # bootstrap configured logging for every logger, Sanic's included: no defaults of its own.
    note_ignored_workers(os.environ)
    ensure_open_files(settings.stream_max_clients)
    app = ServerApp(APP_NAME, configure_logging=False)
    if early_signals is not None:
        early_signals.mount(app)
    app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = settings.shutdown_grace_seconds
    # From a request's first byte (ServerProtocol), not from its last bytes as Sanic counts.
    app.config.REQUEST_TIMEOUT = settings.request_timeout_seconds
    # Only the document: sanic-ext's UI pages load their scripts from a CDN (and its
    # Swagger OAuth2 page fetches one from there), which this server never relies on.
    app.config.OAS_UI_SWAGGER = False
    app.config.OAS_UI_REDOC = False
    app.config.OAS_UI_DEFAULT = None
    # Of sanic-ext only what is used: the OpenAPI document, and the automatic HEAD and
    # OPTIONS routes. Its dependency injection (a signal dispatched on every request)
    # and CORS (a response middleware; nothing here is served cross-origin) stay off.
    app.extend(
        extensions=[OpenAPIExtension, HTTPExtension],
        built_in_extensions=False,
        config={"cors": False},
    )
    app.config.PROXIES_COUNT = settings.proxies_count  # request.client_ip honours it
    app.ctx.wiring = wiring
    app.ctx.services = wiring.services
    app.ctx.currencies = settings.currencies  # parsed once, read by every ?currency=
    register_error_handlers(app)
    mount_hooks(app)
    health.track_start_up(app)
    register_tortoise(app, config=wiring.tortoise_config())

    for blueprint in (
        auth.bp,
        coins.bp,
        cryptos.bp,
        currencies.bp,
        health.bp,
        metrics.bp,
        pages.bp,
    ):
        app.blueprint(blueprint)
    describe_api(app, settings.currencies)

    if wiring.embedded_database:
        # Before the server listens and its read model loads; here, since a single
        # process runs no main_process_start listener.
        @app.before_server_start
        async def migrate_embedded_database(app: Sanic) -> None:
            log.info("applying migrations to the embedded PostgreSQL")
            await upgrade(wiring.database_url)

    mount_read_model(app, wiring)
    if settings.price_poller_enabled:
        mount_poller(app, wiring)

    @app.after_server_stop
    async def close_clients(app: Sanic) -> None:
        await wiring.close()

    return app
