"""The one Sanic 25.12 workaround the single-process server still needs.

A SIGINT or SIGTERM that reaches the server while its ``after_server_start``
listeners run makes Sanic's handler (``Sanic.stop``) stop the event loop inside that
start-up step (``loop.run_until_complete``), which the server does not survive:

- if the step is still awaiting something, uvloop raises "Event loop stopped before
  Future completed": the process dies with a traceback and status 1, and the
  ``before_server_stop``/``after_server_stop`` listeners never run;
- if the step ends in the same turn of the loop, the stop is used up there, and the
  server then serves for ever: a pod signalled in its first moments waits for SIGKILL.

Both shown by tests/e2e/test_shutdown.py. Fix: ``ServerApp.stop`` leaves a stop asked
for during start-up until the server's main loop runs (Sanic marks that moment with
``state.is_running``), then stops as Sanic does. A subclass, not a patch of Sanic's
internals: it overrides one public method. Remove it once Sanic stops the loop only
once it serves.
"""

from __future__ import annotations

import asyncio

from sanic import Sanic

# How often a stop asked for during start-up looks whether the main loop runs yet.
START_UP_RETRY_SECONDS = 0.05


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
