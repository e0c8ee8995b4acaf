"""Patches to Sanic 25.12's worker manager (the main process): ``apply()`` them before
serving.

sanic-org/sanic#2997: a SIGINT or SIGTERM that reaches the main process while it
waits for its workers' start-up acknowledgement hangs it for ever. The signal handler
terminates the workers and posts a stop message; ``wait_for_ack`` takes that message
for a worker's, posts it back, and loops, since terminated workers never acknowledge.
A pod signalled in its first moments would then wait for SIGKILL. Treating "shutting
down" (or "asked to", below) as "acknowledged" ends that wait; the monitor loop that
follows then reads the stop message and shuts down as usual. Remove this part when
the upstream fix (sanic-org/sanic#3063) is released.

sanic-org/sanic#3062: a worker that dies (SIGKILL, the OOM killer, a crash) stays
dead. The monitor loop notices (it marks the worker FAILED) but says nothing and
starts no other, so the server runs short of workers, and with none left it keeps its
port open and every request hangs. After each look at the workers, a server worker
that died without being asked to stop is now logged at ERROR and replaced. When the
replacement cannot be started, or dies before it is up (the code or configuration it
starts from is broken), replacing again would only loop: the server then stops its
other workers and exits with status 1, for its supervisor (Kubernetes, Compose's
``restart:``, systemd) to start it afresh.

Sanic's handler of SIGINT and SIGTERM in the main process stops the workers at once,
writing their states to the manager process (below) as it goes. When the signal lands
while the monitor loop is itself half-way through such an exchange (it reads the
states ten times a second), the two share one connection and each reads the other's
answer: the shutdown fails with a TypeError and the server exits with status 1, not
0. The handler now only asks the monitor loop to stop (the message it already
posted), and the loop stops the workers once it is out of its exchanges. A second
signal still kills them at once, as before.

The main process also starts a ``multiprocessing`` manager process (the workers'
shared state). Killed with the main process, it would stay behind for ever; it now
exits when its parent is gone (the workers, see ``supervision``, do the same).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from multiprocessing.managers import Server, SyncManager
from types import FrameType

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
_shutdown_signal = WorkerManager.shutdown_signal
_monitor = WorkerManager.monitor


def _all_workers_ack_or_stopping(self: WorkerManager) -> bool:
    return bool(self._shutting_down or _stop_requested(self) or _all_workers_ack(self))


def _stop_requested(manager: WorkerManager) -> bool:
    return bool(getattr(manager, "_stop_requested", False))


def _shutdown_signal_later(self: WorkerManager, signum: int, frame: FrameType | None) -> None:
    if _stop_requested(self):
        self._shutting_down = True  # a second signal: Sanic's own handler kills the workers
    if self._shutting_down:
        _shutdown_signal(self, signum, frame)
        return
    sanic_logger.info("Received signal %s. Shutting down.", signal.Signals(signum).name)
    self._stop_requested = True  # type: ignore[attr-defined]
    self.monitor_publisher.send(None)  # ends the monitor loop; then _monitor_then_stop


def _monitor_then_stop(self: WorkerManager) -> None:
    _monitor(self)
    if _stop_requested(self) and not self._shutting_down:
        self.shutdown()


def _sync_states_and_replace_the_dead(self: WorkerManager) -> None:
    if self._shutting_down or _stop_requested(self):
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


def apply() -> None:
    """Idempotent; the main process runs it when the app factory builds its app."""
    WorkerManager._all_workers_ack = _all_workers_ack_or_stopping  # type: ignore[method-assign]
    WorkerManager._sync_states = _sync_states_and_replace_the_dead  # type: ignore[method-assign]
    WorkerManager.shutdown_signal = _shutdown_signal_later  # type: ignore[method-assign]
    WorkerManager.monitor = _monitor_then_stop  # type: ignore[method-assign]
    startup.Manager = _start_sync_manager  # type: ignore[attr-defined]
