"""Workarounds for Sanic 25.12 bugs in its worker manager (the main process of
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

4. sanic-org/sanic#3062: a worker that dies (SIGKILL, the OOM killer, a crash) stays
   dead. The monitor loop notices (it marks the worker FAILED) but says nothing and
   starts no other, so the server runs short of workers, and with none left it keeps
   its port open and every request hangs. After each look at the workers, a server
   worker that died without being asked to stop is now logged at ERROR and replaced.
   When the replacement cannot be started, or dies before it is up (the code or
   configuration it starts from is broken), replacing again would only loop: the
   server then stops its other workers and exits with status 1, for its supervisor
   (Kubernetes, Compose's ``restart:``, systemd) to start it afresh.

5. The main process also starts a ``multiprocessing`` manager process (the workers'
   shared state). Killed with the main process, it would stay behind for ever; it now
   exits when its parent is gone (the workers, see ``supervision``, do the same).

Remove this module once Sanic ships fixes (the first is sanic-org/sanic#3063).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
from contextlib import suppress
from functools import partial
from multiprocessing.managers import Server, SyncManager
from types import FrameType
from typing import Any

from sanic import Sanic
from sanic.exceptions import ServerKilled
from sanic.log import logger as sanic_logger
from sanic.mixins import startup
from sanic.worker.constants import ProcessState
from sanic.worker.manager import WorkerManager
from sanic.worker.process import Worker, WorkerProcess

from interfaces.http.supervision import when_orphaned

log = logging.getLogger(__name__)

SERVER_PREFIX = f"{Worker.WORKER_PREFIX}-{WorkerProcess.SERVER_LABEL}-"

_all_workers_ack = WorkerManager._all_workers_ack
_sync_states = WorkerManager._sync_states
_STOP_REQUESTED = "_cps_stop_requested"


def _stop_requested(manager: WorkerManager) -> bool:
    return bool(getattr(manager, _STOP_REQUESTED, False) or manager._shutting_down)


def _all_workers_ack_or_stopping(self: WorkerManager) -> bool:
    return _stop_requested(self) or bool(_all_workers_ack(self))


def _shutdown_signal(self: WorkerManager, signum: int, frame: FrameType | None) -> None:
    if _stop_requested(self):
        sanic_logger.info("Shutdown interrupted. Killing.")
        with suppress(ServerKilled):
            self.kill()
        return
    sanic_logger.info("Received signal %s. Shutting down.", signal.Signals(signum).name)
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


def _sync_states_and_replace_the_dead(self: WorkerManager) -> None:
    if _stop_requested(self):
        _sync_states(self)
        return
    # Sanic's sync decides which workers died (it marks them FAILED or COMPLETED):
    # compare with their states before it, rather than look at them apart, or a worker
    # dying between the two looks would be marked without ever being replaced.
    running = {
        process: _came_up(self, process)
        for process in self.transient_processes
        if process.name.startswith(SERVER_PREFIX)
        and process.state in (ProcessState.STARTED, ProcessState.ACKED)
    }
    _sync_states(self)
    for process, came_up in running.items():
        if process.state not in (ProcessState.FAILED, ProcessState.COMPLETED):
            continue
        if came_up:
            _replace(self, process)
        else:
            _give_up(self, process, "died before it was up")


def _came_up(manager: WorkerManager, process: WorkerProcess) -> bool:
    """Whether the worker acknowledged its start (the worker writes the shared state;
    the manager's own copy catches up in the sync)."""
    if process.state is ProcessState.ACKED:
        return True
    shared = manager.worker_state.get(process.name) or {}
    return bool(shared.get("state") == ProcessState.ACKED.name)


def _replace(manager: WorkerManager, process: WorkerProcess) -> None:
    log.error(
        "worker %s (pid %s) %s: starting another in its place",
        process.name,
        process.pid,
        how_it_ended(process.exitcode),
    )
    try:
        manager.restart([process.name])
    except Exception:
        log.exception("could not start a worker in place of %s", process.name)
        _give_up(manager, process, "could not be replaced")


def _give_up(manager: WorkerManager, process: WorkerProcess, what: str) -> None:
    log.error(
        "worker %s (pid %s) %s (%s): stopping the server, exit status 1, "
        "for its supervisor to start it again",
        process.name,
        process.pid,
        what,
        how_it_ended(process.exitcode),
    )
    manager.shutdown()  # the other workers finish what they are answering
    manager.cleanup()  # waits for them, a while
    raise ServerKilled  # Sanic's own way out: the main process exits with status 1


def how_it_ended(exitcode: int | None) -> str:
    """'killed by SIGKILL', 'exited with status 3': from ``Process.exitcode``."""
    if exitcode is None:
        return "ended"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


class _OrphanAwareServer(Server):
    """The manager process's server: stops, as on its owner's shutdown call, once
    its parent is gone."""

    def serve_forever(self) -> None:
        parent = multiprocessing.parent_process()
        if parent is not None and parent.pid is not None:
            when_orphaned(parent.pid, self._stop)
        super().serve_forever()

    def _stop(self) -> None:
        self.stop_event.set()  # made by serve_forever, well before the first look


class _OrphanAwareManager(SyncManager):
    _Server = _OrphanAwareServer


def _start_sync_manager() -> SyncManager:
    manager = _OrphanAwareManager(ctx=multiprocessing.get_context())
    manager.start()
    return manager


def apply(app: Sanic) -> None:
    """Idempotent; the app factory runs it for each app, in the main process before
    Sanic creates its worker manager (which registers the signal handler)."""
    WorkerManager._all_workers_ack = _all_workers_ack_or_stopping  # type: ignore[method-assign]
    WorkerManager.shutdown_signal = _shutdown_signal  # type: ignore[method-assign]
    WorkerManager._sync_states = _sync_states_and_replace_the_dead  # type: ignore[method-assign]
    startup.Manager = _start_sync_manager  # type: ignore[attr-defined]
    Sanic.stop = _stop_remembered  # type: ignore[method-assign]
    # Lowest priority: after every other start-up listener.
    app.listener(_stop_if_asked_during_start_up, "after_server_start", priority=-10_000)
