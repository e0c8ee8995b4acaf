"""Loopback ports for tests, on a machine where other test runs pick ports too.

A port found free and closed again may be taken by another process before the
server meant for it binds it. So servers in this process bind port 0 themselves
(``live_server.serve``); servers in other processes get ``free_port()`` and start
again on another one when they lose it (``server_process.running_server``,
``redis_server.RedisServer``): see ``lost_the_port``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

MAX_PORT_ATTEMPTS = 5


def free_port() -> int:
    """A port nothing used a moment ago (it may be taken by the time it is used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def lost_the_port(output: str) -> bool:
    """Whether a server's output says another process had its port."""
    return "address already in use" in output.lower()


@contextmanager
def refusing_port() -> Iterator[int]:
    """A port that refuses connections for the block: bound but not listening, so no
    other process can start listening on it meanwhile."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
