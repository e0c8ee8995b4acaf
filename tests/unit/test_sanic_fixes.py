"""The main process's SIGINT or SIGTERM handler leaves the workers' shared state alone
(the monitor loop may be half-way through an exchange with the manager process): it
asks the loop to stop, and the loop stops the workers. A second signal kills them."""

from __future__ import annotations

import signal

import pytest
from sanic.exceptions import ServerKilled
from sanic.worker.manager import WorkerManager

from interfaces.http import sanic_fixes


class FakeManager:
    """What the handler and the loop touch of a WorkerManager."""

    def __init__(self) -> None:
        self._shutting_down = False
        self.posted: list[object] = []
        self.monitor_publisher = self
        self.stopped = 0
        self.killed = 0

    def send(self, message: object) -> None:
        self.posted.append(message)

    def shutdown(self) -> None:  # Sanic's writes each worker's state to the manager process
        self.stopped += 1
        self._shutting_down = True

    def kill(self) -> None:
        self.killed += 1
        raise ServerKilled


@pytest.fixture
def manager(monkeypatch: pytest.MonkeyPatch) -> FakeManager:
    sanic_fixes.apply()
    monkeypatch.setattr(sanic_fixes, "_monitor", lambda manager: None)  # the loop, ended
    return FakeManager()


def test_a_signal_asks_the_monitor_loop_to_stop_the_workers(manager: FakeManager) -> None:
    WorkerManager.shutdown_signal(manager, signal.SIGTERM, None)  # type: ignore[arg-type]

    assert manager.stopped == 0  # not from the handler
    assert manager.posted == [None]  # the message that ends the monitor loop
    assert WorkerManager._all_workers_ack(manager)  # type: ignore[arg-type]

    WorkerManager.monitor(manager)  # type: ignore[arg-type]
    assert manager.stopped == 1


def test_a_second_signal_kills_the_workers(manager: FakeManager) -> None:
    WorkerManager.shutdown_signal(manager, signal.SIGTERM, None)  # type: ignore[arg-type]
    WorkerManager.shutdown_signal(manager, signal.SIGTERM, None)  # type: ignore[arg-type]

    assert manager.killed == 1
    WorkerManager.monitor(manager)  # type: ignore[arg-type]
    assert manager.stopped == 0  # killed: nothing left to stop
