"""The server's app factory, then this process sends itself a stop signal at a given
moment of start-up (``SIGNAL_AT_START``), SIGTERM or the one ``SIGNAL_NAME`` names:

- ``built``: once the factory built the app, before Sanic serves it;
- ``before_server_start``: from a listener of that event, the last, before Sanic
  listens and installs its own signal handlers;
- ``await``: from the last ``after_server_start`` listener, which still awaits
  something when Sanic's handler runs;
- ``return``: from there too, returning at once, so that the start-up step ends in
  the same turn of the loop as the handler runs.

Served by tests/e2e/test_shutdown.py with ``sanic tests.support.signal_at_start:create_app
--factory --single-process``."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from sanic import Sanic

from interfaces.http.app import create_app as create_server_app

APP = "tests.support.signal_at_start:create_app"
STOPPED_LINE = "after_server_stop listeners ran"
log = logging.getLogger("interfaces.test_signal_at_start")  # an "interfaces" logger: INFO


def create_app(*cli_args: object) -> Sanic:
    app = create_server_app(*cli_args)
    moment = os.environ["SIGNAL_AT_START"]
    sig = signal.Signals[os.environ.get("SIGNAL_NAME", "SIGTERM")]

    def send() -> None:
        os.kill(os.getpid(), sig)

    if moment == "built":
        send()

    @app.listener("before_server_start", priority=-1_000)  # the lowest: after the app's own
    async def signal_before_start(app: Sanic) -> None:
        if moment == "before_server_start":
            send()

    @app.listener("after_server_start", priority=-1_000)
    async def signal_after_start(app: Sanic) -> None:
        if moment in ("await", "return"):
            send()
        if moment == "await":
            await asyncio.sleep(0.5)

    @app.listener("after_server_stop")
    async def say_stopped(app: Sanic) -> None:
        log.info(STOPPED_LINE)

    return app
