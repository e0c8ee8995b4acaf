"""A workaround for a Sanic 25.12 bug in its worker manager: ``apply()`` it before serving.

sanic-org/sanic#2997: a SIGINT or SIGTERM that reaches the main process while it
waits for its workers' start-up acknowledgement hangs it for ever. The signal handler
terminates the workers and posts a stop message; ``wait_for_ack`` takes that message
for a worker's, posts it back, and loops, since terminated workers never acknowledge.
A pod signalled in its first moments would then wait for SIGKILL.

Treating "shutting down" as "acknowledged" ends that wait; the monitor loop that
follows then reads the stop message and shuts down as usual. Remove this module when
the upstream fix (sanic-org/sanic#3063) is released.
"""

from __future__ import annotations

from sanic.worker.manager import WorkerManager

_all_workers_ack = WorkerManager._all_workers_ack


def _all_workers_ack_or_stopping(self: WorkerManager) -> bool:
    return bool(self._shutting_down) or bool(_all_workers_ack(self))


def apply() -> None:
    """Idempotent; the main process runs it when the app factory builds its app."""
    WorkerManager._all_workers_ack = _all_workers_ack_or_stopping  # type: ignore[method-assign]
