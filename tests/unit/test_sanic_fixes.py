"""The main process's SIGINT or SIGTERM handler leaves the workers' shared state alone
(the monitor loop may be half-way through an exchange with the manager process that
holds it): it asks the monitor loop to stop the workers. A second signal kills them."""

from __future__ import annotations

import signal
from multiprocessing import Pipe

import pytest
from sanic import Sanic
from sanic.exceptions import ServerKilled
from sanic.worker.manager import WorkerManager

from interfaces.http import sanic_fixes


class WorkerlessManager(WorkerManager):
    """Sanic's worker manager, with its own monitor loop and message pipe, but no
    workers, no manager process and no signal handlers of its own."""

    def __init__(self) -> None:
        self.monitor_subscriber, self.monitor_publisher = Pipe(True)
        self._shutting_down = False
        self.transient = {}
        self.durable = {}
        self.num_server = 0
        self.worker_state = {}
        self.stopped = 0
        self.killed = 0

    def shutdown(self) -> None:  # Sanic's writes each worker's state to the manager process
        self.stopped += 1
        self._shutting_down = True

    def kill(self) -> None:
        self.killed += 1
        raise ServerKilled


@pytest.fixture
def manager() -> WorkerlessManager:
    sanic_fixes.apply(Sanic("SanicFixesTest"))
    return WorkerlessManager()


def test_the_signal_handler_leaves_stopping_the_workers_to_the_monitor_loop(
    manager: WorkerlessManager,
) -> None:
    manager.shutdown_signal(signal.SIGTERM, None)
    assert manager.stopped == 0

    manager.monitor()  # reads what the handler posted
    assert manager.stopped == 1


def test_a_second_signal_kills_the_workers(manager: WorkerlessManager) -> None:
    manager.shutdown_signal(signal.SIGTERM, None)
    manager.shutdown_signal(signal.SIGTERM, None)
    assert manager.killed == 1
