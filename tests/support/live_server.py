"""Serve a Sanic app on a loopback port inside the test's own event loop.

It drives the same lifecycle as sanic-testing's ReusableClient (startup, the
before/after start listeners, a real socket, then the stop listeners), but from an
async fixture, so a test can fire concurrent requests with asyncio.gather.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from sanic import Sanic

from tests.support.ports import free_port  # noqa: F401 (where tests used to find it)


@asynccontextmanager
async def serve(
    app: Sanic, *, while_starting: Callable[[httpx.AsyncClient], Awaitable[None]] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """Start ``app``; yield an httpx client aimed at it; stop it cleanly.

    As Sanic's own server does, it serves while the ``after_server_start`` listeners
    run: ``while_starting`` is awaited with the client meanwhile (hold a listener of
    your own on an event to make that moment last)."""
    Sanic.test_mode = True
    # The server gets a socket on a port the kernel picked, bound from the start, so no
    # other process can take the port between choosing it and listening on it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    try:
        server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    except BaseException:
        sock.close()
        raise
    assert server is not None
    await server.startup()
    await server.before_start()
    await server.start_serving()
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        starting = asyncio.ensure_future(server.after_start())
        try:
            if while_starting is not None:
                await while_starting(client)
        finally:
            await starting
        yield client
    finally:
        await client.aclose()
        await server.before_stop()
        await server.close()
        await server.after_stop()


SERVER_APP = "interfaces.http.app:create_app"


def sanic_command(port: int, app: str = SERVER_APP, *, factory: bool = True) -> list[str]:
    """The server as deployed: the sanic CLI of this environment on the app factory
    (``app``; an app object itself when not ``factory``), one process."""
    return [
        str(Path(sys.executable).with_name("sanic")),
        app,
        *(["--factory"] if factory else []),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--single-process",
    ]
