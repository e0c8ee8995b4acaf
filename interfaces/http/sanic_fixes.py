"""Workarounds for two Sanic 25.12 bugs in its worker manager (the main process of
``sanic --workers N``): ``apply()`` them before serving.

1. sanic-org/sanic#2997: a SIGINT or SIGTERM that reaches the main process while it
   waits for its workers' start-up acknowledgement hangs it for ever: ``wait_for_ack``
   takes the stop message for a worker's, posts it back and loops, since stopped
   workers never acknowledge. A pod signalled in its first moments would wait for
   SIGKILL. Fix: a stop request counts as "acknowledged", which ends that wait.

2. The signal handler does the shutdown itself: it writes each worker's state to the
   shared ``multiprocessing.Manager`` dict. When the signal lands while the main loop
   is between sending a request to that dict's manager and reading the reply, the
   handler's own request reads the loop's reply and vice versa: the states come back
   as ``None`` or a string, and the main process dies with a TypeError and exit code 1
   after its workers drained (seen under load, with requests in flight). Fix: the
   handler only posts ``__TERMINATE__`` to the manager's own message pipe; the monitor
   loop then runs the same shutdown from the main flow, where nothing interleaves.

3. A worker signalled while its ``after_server_start`` listeners run stops its event
   loop inside that start-up step: the stop is used up there, and the worker then
   serves for ever, so the main process waits on it for ever. Fix: ``Sanic.stop``
   remembers that it was asked, and the last start-up listener asks again once the
   worker's main loop runs.

Remove this module once Sanic ships fixes (the first is sanic-org/sanic#3063).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from functools import partial
from signal import Signals
from types import FrameType
from typing import Any

from sanic import Sanic
from sanic.exceptions import ServerKilled
from sanic.worker.manager import WorkerManager

log = logging.getLogger("sanic.root")  # where Sanic logs the same events

_all_workers_ack = WorkerManager._all_workers_ack
_STOP_REQUESTED = "_cps_stop_requested"


def _stop_requested(manager: WorkerManager) -> bool:
    return bool(getattr(manager, _STOP_REQUESTED, False) or manager._shutting_down)


def _all_workers_ack_or_stopping(self: WorkerManager) -> bool:
    return _stop_requested(self) or bool(_all_workers_ack(self))


def _shutdown_signal(self: WorkerManager, signum: int, frame: FrameType | None) -> None:
    if _stop_requested(self):
        log.info("Shutdown interrupted. Killing.")
        with suppress(ServerKilled):
            self.kill()
        return
    log.info("Received signal %s. Shutting down.", Signals(signum).name)
    setattr(self, _STOP_REQUESTED, True)
    self.monitor_publisher.send("__TERMINATE__")


_sanic_stop = Sanic.stop
# After the start-up step ends: a timer cannot fire within the same loop iteration, so
# it runs in the worker's main loop.
RETRY_STOP_AFTER_SECONDS = 0.1


def _stop_remembered(self: Sanic, *args: Any, **kwargs: Any) -> None:
    self.ctx.stop_requested = True
    _sanic_stop(self, *args, **kwargs)


async def _stop_if_asked_during_start_up(app: Sanic) -> None:
    if getattr(app.ctx, "stop_requested", False):
        stop = partial(app.stop, terminate=False)
        asyncio.get_running_loop().call_later(RETRY_STOP_AFTER_SECONDS, stop)


def apply(app: Sanic) -> None:
    """Idempotent; the app factory runs it for each app, in the main process before
    Sanic creates its worker manager (which registers the signal handler)."""
    WorkerManager._all_workers_ack = _all_workers_ack_or_stopping  # type: ignore[method-assign]
    WorkerManager.shutdown_signal = _shutdown_signal  # type: ignore[method-assign]
    Sanic.stop = _stop_remembered  # type: ignore[method-assign]
    # Lowest priority: after every other start-up listener.
    app.listener(_stop_if_asked_during_start_up, "after_server_start", priority=-10_000)
