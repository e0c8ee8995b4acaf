"""The server as deployed, in a process of its own: ``sanic ... --factory`` on a free
port, its output kept in a log file, stopped by a signal.

The sanic CLI cannot be handed a bound socket, so the port is chosen first and may be
taken by another process before the server binds it: ``running_server`` waits until
the server listens on its port (or exits), and starts it again on another port when
it lost that one."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.support.database import insert_cryptos, truncate_tables
from tests.support.live_server import SERVER_APP, sanic_command
from tests.support.ports import MAX_PORT_ATTEMPTS, free_port, lost_the_port

ROOT = Path(__file__).resolve().parents[2]
JWT_SECRET = "test-only-secret-" + "0123456789abcdef" * 3
POLLER_LOGGER = "application.poll_schedule"  # one line a cycle, whatever its outcome
LEADER_LINE = "this process now runs the price poller"


def server_env(
    database_url: str, gecko_url: str, data_dir: Path, **overrides: str
) -> dict[str, str]:
    """The machine's environment plus what a test server needs; no Redis unless given."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "COINGECKO_BASE_URL": gecko_url,
        "COINGECKO_CALLS_PER_MINUTE": "10000",
        "JWT_SECRET": JWT_SECRET,
        "BCRYPT_ROUNDS": "4",
        "DATA_DIR": str(data_dir),
        **overrides,
    }
    if not overrides.get("REDIS_URL"):
        env.pop("REDIS_URL", None)
    return env


async def polling_env(
    database_url: str, gecko_url: str, data_dir: Path, interval: float, *coins: tuple[str, str, str]
) -> dict[str, str]:
    """For servers that poll every ``interval`` s, with JSON logs (``poll_cycles``), on a
    database emptied and then tracking ``(symbol, coin_id, name)`` coins: each poll
    cycle makes one /simple/price call (up to 100 coins) from its first one."""
    await truncate_tables(database_url)
    await insert_cryptos(database_url, *coins)
    return server_env(
        database_url,
        gecko_url,
        data_dir,
        PRICE_POLL_INTERVAL_SECONDS=str(interval),
        LOG_FORMAT="json",
    )


def json_lines(output: str) -> list[dict[str, Any]]:
    """Every line of ``output`` (a whole LOG_FORMAT=json log), parsed; fails on the
    first line that is not one JSON object, as a log shipper would."""
    parsed = []
    for line in output.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        assert isinstance(value, dict), f"not a JSON object: {line!r}\n{output[-3000:]}"
        parsed.append(value)
    return parsed


@dataclass
class ServerProcess:
    process: asyncio.subprocess.Process
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        """The lines of a LOG_FORMAT=json log, but for one still being written."""
        complete = self.log().split("\n")[:-1]
        return [json.loads(line) for line in complete if line.startswith("{")]

    def poll_cycles(self) -> list[dict[str, Any]]:
        """The poller's line for each cycle it ran (in a LOG_FORMAT=json log)."""
        return [
            line
            for line in self.log_lines()
            if line["logger"] == POLLER_LOGGER and line["message"].startswith("poll")
        ]

    def client(self, timeout: float = 30) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def register(
        self, username: str = "ops", password: str = "op password"
    ) -> dict[str, str]:
        """Register a user; the Authorization header that carries its token."""
        async with self.client() as client:
            r = await client.post(
                "/auth/register", json={"username": username, "password": password}
            )
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    def listening(self) -> bool:
        """Whether this server's process listens on its port (then the answers on that
        port are this server's, not another process's that took the port)."""
        try:
            sockets = psutil.Process(self.process.pid).net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False
        return any(s.status == psutil.CONN_LISTEN and s.laddr.port == self.port for s in sockets)

    async def wait_listening(self, seconds: float = 60) -> None:
        """Until the server listens on its port or has exited (or ``seconds`` passed:
        ``wait_ready`` then says why)."""
        deadline = time.monotonic() + seconds
        while self.process.returncode is None and time.monotonic() < deadline:
            if self.listening():
                return
            await asyncio.sleep(0.05)

    async def wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        async with self.client(timeout=5) as client:
            while time.monotonic() < deadline:
                assert self.process.returncode is None, f"server exited:\n{self.log()[-3000:]}"
                with suppress(httpx.TransportError):
                    if (await client.get("/health/ready")).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise AssertionError(f"the server did not become ready:\n{self.log()[-3000:]}")

    async def stop(self, sig: signal.Signals | None = signal.SIGINT, seconds: float = 30) -> int:
        """Send ``sig`` (None: it was sent already) and wait for the exit; kill it (and
        fail) past ``seconds``."""
        if sig is not None and self.process.returncode is None:
            self.process.send_signal(sig)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout=seconds)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(f"server still running {seconds} s after the signal") from None


async def start_server(
    env: Mapping[str, str], log_path: Path, app: str = SERVER_APP
) -> ServerProcess:
    """A server listening on its own port, or one that exited for another reason than
    a port some other process took (up to MAX_PORT_ATTEMPTS ports)."""
    for _ in range(MAX_PORT_ATTEMPTS):
        port = free_port()
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                *sanic_command(port, app),
                cwd=ROOT,
                env=dict(env),
                stdout=log,
                stderr=log,
                start_new_session=True,  # a SIGKILL of the test leaves no orphan on the port
            )
        server = ServerProcess(process, port, log_path)
        await server.wait_listening()
        if process.returncode is None or not lost_the_port(server.log()):
            return server
        await process.wait()
    raise AssertionError(f"{MAX_PORT_ATTEMPTS} ports in a row were taken:\n{server.log()[-3000:]}")


@asynccontextmanager
async def running_servers(
    env: Mapping[str, str], log_dir: Path, count: int
) -> AsyncIterator[list[ServerProcess]]:
    """``count`` servers on one environment (replicas of one deployment), each ready;
    their logs are ``r0.log``, ``r1.log``, ... in ``log_dir``."""
    async with AsyncExitStack() as stack:
        servers = [
            await stack.enter_async_context(running_server(env, log_dir / f"r{i}.log"))
            for i in range(count)
        ]
        for server in servers:
            await server.wait_ready()
        yield servers


@asynccontextmanager
async def running_server(
    env: Mapping[str, str], log_path: Path, app: str = SERVER_APP
) -> AsyncIterator[ServerProcess]:
    """A started server, listening on its own port (not yet ready: call
    ``wait_ready``), stopped on the way out."""
    server = await start_server(env, log_path, app)
    process = server.process
    try:
        yield server
    finally:
        if process.returncode is None:
            with suppress(AssertionError):
                await server.stop()
