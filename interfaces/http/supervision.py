"""A worker whose main process is gone stops, rather than serve on as an orphan.

Sanic's workers serve on the socket their main process opened. When the main process
dies without stopping them (SIGKILL, the OOM killer), nothing tells them: they go on
serving, unsupervised, and hold the port, so the next start of the server fails with
"Address already in use". So each worker looks, once a second, whether its parent is
still the process that spawned it (an orphan is adopted by init or a subreaper, so
its parent pid changes), and if not, stops as on SIGTERM: it closes its socket,
finishes the requests in flight, and exits.

Why a look at the parent pid rather than Linux's ``prctl(PR_SET_PDEATHSIG)``: the
kernel sends that signal when the *thread* that spawned the worker ends, not the
process, so a worker started from a short-lived thread would be stopped for nothing;
it is Linux-only (``make run`` also serves on macOS); and a worker spawned just as
its parent died would miss it. The parent pid the worker compares with is the one
its parent recorded (``multiprocessing.parent_process()``), not the one it sees at
start, so that last case is caught too. The price is a wake-up a second and up to a
second's delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable

from sanic import Sanic

log = logging.getLogger(__name__)

PARENT_CHECK_SECONDS = 1.0


def when_orphaned(
    parent_pid: int, then: Callable[[], object], interval: float = PARENT_CHECK_SECONDS
) -> threading.Thread:
    """Call ``then``, from a daemon thread of its own, once this process's parent is no
    longer ``parent_pid``. A thread rather than a task, so that nothing has to stop it."""

    def watch() -> None:
        while True:
            time.sleep(interval)  # first: the caller may need the moment to get ready
            if os.getppid() != parent_pid:
                then()
                return

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


def mount_supervision(app: Sanic) -> None:
    """In a Sanic worker, stop when the main process is gone. Elsewhere (a single
    process, the tests' in-process servers) there is no main process to watch."""
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid is None or not os.environ.get("SANIC_WORKER_NAME"):
        return
    main_pid: int = parent.pid

    @app.after_server_start
    async def watch_the_main_process(app: Sanic) -> None:
        loop = asyncio.get_running_loop()

        def stop_soon() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: stopping anyway
                loop.call_soon_threadsafe(stop_orphaned_worker, app, main_pid)

        when_orphaned(main_pid, stop_soon)


def stop_orphaned_worker(app: Sanic, main_pid: int) -> None:
    log.error(
        "the main process (pid %s) is gone: this worker (pid %s) stops, "
        "after the requests in flight",
        main_pid,
        os.getpid(),
    )
    app.stop(terminate=False)  # what Sanic's own SIGTERM handler does in a worker
