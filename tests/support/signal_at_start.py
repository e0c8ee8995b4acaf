"""The server's app factory plus one more ``after_server_start`` listener, the last,
which sends this process SIGTERM: the signal lands while Sanic runs its start-up
listeners. ``SIGNAL_AT_START=await``: the listener then still awaits something when
Sanic's handler runs; ``=return``: it returns at once, so that the start-up step ends
in the same turn of the loop as the handler runs. Served by tests/e2e/test_shutdown.py
with ``sanic tests.support.signal_at_start:create_app --factory --single-process``."""

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

    @app.listener("after_server_start", priority=-1_000)  # the lowest: after the app's own
    async def signal_this_process(app: Sanic) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        if moment == "await":
            await asyncio.sleep(0.5)

    @app.listener("after_server_stop")
    async def say_stopped(app: Sanic) -> None:
        log.info(STOPPED_LINE)

    return app
