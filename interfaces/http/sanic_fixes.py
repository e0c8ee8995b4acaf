"""The Sanic 25.12 workarounds the single-process server still needs. Each is a
subclass overriding public or documented methods, or a signal handler set before Sanic
sets its own, not a patch of Sanic's internals; remove each once Sanic does it itself.

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
Sanic does. Remove it once Sanic stops the loop only once it serves.

2. Sanic installs those handlers only once it listens, after the app factory and the
``before_server_start`` listeners. A signal before that gets Python's defaults: SIGTERM
kills the process (status 143, no stop listener runs; as PID 1 in a container it is
ignored), SIGINT raises KeyboardInterrupt wherever start-up is (a raw traceback, not a
log line). ``StopSignalsWhileStarting``, set up first thing by the app factory,
remembers such a signal instead, and the server stops cleanly as soon as it started.

Both shown by tests/e2e/test_shutdown.py.

3. A request trickled in. Sanic's ``REQUEST_TIMEOUT`` counts from the last bytes
received, so a client sending a header line or a body byte every few seconds holds its
connection for ever. ``ServerProtocol`` bounds the whole request from its first byte
(408, then the connection closes). It only looks when the server waits for more of a
request: a request that arrives in one piece costs nothing more.

4. A head too large. Sanic answers 413 (meant for bodies) to a request line or headers
over ``REQUEST_MAX_HEADER_SIZE``, and sets no bound on the number of headers.
``ServerHttp`` answers 414 or 431 instead, and 431 past ``MAX_HEADERS`` headers.

``ServerApp`` serves with ``ServerProtocol`` however it is started: the ``sanic`` CLI
(which calls ``prepare``) or ``create_server`` (the tests' in-process servers).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from types import FrameType
from typing import Any

from sanic import Sanic
from sanic.exceptions import HTTPException, PayloadTooLarge, RequestTimeout, URITooLong
from sanic.http import Http, Stage
from sanic.server import AsyncioServer
from sanic.server.protocols.http_protocol import HttpProtocol

log = logging.getLogger(__name__)

# How often a stop asked for during start-up looks whether the main loop runs yet.
START_UP_RETRY_SECONDS = 0.05
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Headers a request may carry (Apache's and Tomcat's default); browsers send about 20.
MAX_HEADERS = 100


class RequestHeaderFieldsTooLarge(HTTPException):
    status_code = 431
    quiet = True


class ServerHttp(Http):
    """Sanic's HTTP/1.1 with 414 and 431 for a head too large, and a bound on headers."""

    protocol: ServerProtocol

    async def http1_request_header(self) -> None:
        self.protocol.request_began()
        try:
            await super().http1_request_header()
        except PayloadTooLarge:  # only the head is read here: no body is too large yet
            limit = self.HEADER_MAX_SIZE
            line_end = self.recv_buffer.find(b"\r\n", 0, limit)
            if line_end == -1:
                raise URITooLong(f"the request line is too long (over {limit} bytes)") from None
            raise RequestHeaderFieldsTooLarge(
                f"the request's headers are too large (the request line and headers "
                f"may take {limit} bytes)"
            ) from None
        if len(self.request.headers) > MAX_HEADERS:
            raise RequestHeaderFieldsTooLarge(f"too many headers (at most {MAX_HEADERS})")


class ServerProtocol(HttpProtocol):
    """Sanic's HTTP/1.1 protocol; a request must arrive whole within ``REQUEST_TIMEOUT``
    seconds of its first byte (Sanic's counts from the last bytes received)."""

    HTTP_CLASS = ServerHttp
    __slots__ = ("_awaiting_request", "_deadline", "_request_started")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._request_started = 0.0
        self._deadline: asyncio.TimerHandle | None = None
        self._awaiting_request = False  # waiting for more bytes of a request

    def request_began(self) -> None:
        self._request_started = self.loop.time()

    def receive_more(self) -> Coroutine[Any, Any, None]:
        http = self._http
        # Waiting for the first byte of the next request (idle) is KEEP_ALIVE_TIMEOUT's:
        # Sanic's own wait, with no frame of ours around it (every keep-alive request).
        if http is None or (http.stage is Stage.IDLE and not http.request_body):
            return super().receive_more()
        return self._receive_more_of_request()

    async def _receive_more_of_request(self) -> None:
        # A request in pieces: the timer is set at its first wait, so a request that
        # arrives in one piece costs none.
        if self._deadline is None:
            self._arm()
        self._awaiting_request = True
        try:
            await super().receive_more()
        finally:
            self._awaiting_request = False

    def _arm(self) -> None:
        at = self._request_started + self.request_timeout
        self._deadline = self.loop.call_at(at, self._check_deadline)

    def _check_deadline(self) -> None:
        self._deadline = None
        http = self._http
        if not self._awaiting_request or http is None or self._task is None:
            return  # the request is whole; a later one sets the timer again
        if self.loop.time() < self._request_started + self.request_timeout:
            self._arm()  # a later request of this connection, with a later deadline
            return
        # As Sanic's own timeout does: the connection's task sends the 408 and closes.
        http.exception = RequestTimeout(
            f"the request did not arrive whole within {self.request_timeout:g} s"
        )
        http.request_body = None  # and reads no more of it after the 408
        self._task.cancel()

    def close(self, timeout: float | None = None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().close(timeout=timeout)


class ServerApp(Sanic):
    def prepare(
        self, *args: Any, protocol: type[asyncio.Protocol] | None = None, **kwargs: Any
    ) -> None:
        super().prepare(*args, protocol=protocol or self._protocol(), **kwargs)

    async def create_server(
        self, *args: Any, protocol: type[asyncio.Protocol] | None = None, **kwargs: Any
    ) -> AsyncioServer | None:
        return await super().create_server(*args, protocol=protocol or self._protocol(), **kwargs)

    def _protocol(self) -> type[asyncio.Protocol] | None:
        # Sanic picks its WebSocketProtocol (None) when the app has websocket routes.
        return None if self.websocket_enabled else ServerProtocol

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
