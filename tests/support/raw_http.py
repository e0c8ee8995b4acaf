"""HTTP/1.1 over a bare socket, for what an HTTP client library will not send: a request
in pieces over time, cut off halfway, or with a head far too long."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class RawConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def trickle(self, pieces: Iterable[bytes], every: float) -> None:
        """Send each piece ``every`` seconds apart, until done or the server hangs up."""
        with contextlib.suppress(ConnectionError):
            for piece in pieces:
                await self.send(piece)
                await asyncio.sleep(every)

    async def response(self, seconds: float = 30) -> RawResponse:
        """The next response (with a Content-Length body, as this server sends them)."""
        async with asyncio.timeout(seconds):
            head = await self.reader.readuntil(b"\r\n\r\n")
            status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
            headers = {}
            for line in lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return RawResponse(int(status_line.split(" ")[1]), headers, body)

    async def closed_by_server(self, seconds: float = 10) -> bool:
        """Whether the server closes the connection within ``seconds`` (sending nothing more)."""
        try:
            async with asyncio.timeout(seconds):
                return await self.reader.read() == b""
        except TimeoutError:
            return False
        except ConnectionError:
            return True

    def hang_up(self) -> None:
        self.writer.close()


@asynccontextmanager
async def raw_connection(base_url: str) -> AsyncIterator[RawConnection]:
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        yield RawConnection(reader, writer)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
