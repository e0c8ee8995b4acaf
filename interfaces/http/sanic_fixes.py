"""The two Sanic 25.12 workarounds the single-process server still needs: a stop
signal during start-up, before and after Sanic installs its own handlers.

1. A SIGINT or SIGTERM that reaches the server while its ``after_server_start``
listeners run makes Sanic's handler (``Sanic.stop``) stop the event loop inside that
start-up step (``loop.run_until_complete``), which the server does not survive:

- if the step is still awaiting something, uvloop raises "Event loop stopped before
  Future completed": the process dies with a traceback and status 1, and the
  ``before_server_stop``/``after_server_stop`` listeners never run;
- if the step ends in the same turn of the loop, the stop is used up there, and the
  server then serves for ever: a pod signalled in its first moments waits for SIGKILL.

Fix: ``ServerApp.stop`` leaves a stop asked for during start-up until the server's
main loop runs (Sanic marks that moment with ``state.is_running``), then stops as
Sanic does. A subclass, not a patch of Sanic's internals: it overrides one public
method. Remove it once Sanic stops the loop only once it serves.

2. Sanic installs those handlers only once it listens, after the app factory and the
``before_server_start`` listeners. A signal before that gets Python's defaults: SIGTERM
kills the process (status 143, no stop listener runs; as PID 1 in a container it is
ignored), SIGINT raises KeyboardInterrupt wherever start-up is (a raw traceback, not a
log line). ``StopSignalsWhileStarting``, set up first thing by the app factory,
remembers such a signal instead, and the server stops cleanly as soon as it started.

Both shown by tests/e2e/test_shutdown.py.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from types import FrameType

from sanic import Sanic

log = logging.getLogger(__name__)

# How often a stop asked for during start-up looks whether the main loop runs yet.
START_UP_RETRY_SECONDS = 0.05
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ServerApp(Sanic):
    def stop(self, terminate: bool = True, unregister: bool = False) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not from a loop: not the signal handler of a starting server
            loop = None
        if self.state.is_running or loop is None:
            super().stop(terminate=terminate, unregister=unregister)
            return
        # Still starting: ask again from the main loop (a timer set now fires in
        # whichever run of the loop goes on then, which soon is the main one).
        loop.call_later(START_UP_RETRY_SECONDS, self.stop, terminate, unregister)


class StopSignalsWhileStarting:
    """From now until Sanic's own handlers replace these, a SIGINT or SIGTERM is
    remembered; ``mount`` then stops the server once it can stop cleanly. A second
    signal ends the process at once (the system's default action, nothing printed),
    for a start-up that hangs."""

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._remember)

    def _remember(self, signum: int, _frame: FrameType | None) -> None:
        # Nothing logged here: a handler may run in the middle of a log line's write.
        self.received = signal.Signals(signum)
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)

    def mount(self, app: Sanic) -> None:
        @app.after_server_start  # Sanic's handlers are in place: nothing more comes here
        async def stop_if_signalled(app: Sanic) -> None:
            if self.received is not None:
                log.info("%s while starting: the server stops", self.received.name)
                app.stop(terminate=False)  # as Sanic's handler does
