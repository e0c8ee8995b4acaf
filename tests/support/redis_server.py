"""Redis for tests: the machine's shared Redis, and private redis-server processes.

``RedisServer`` runs its own ``redis-server`` on a free port (no persistence, files in
a temporary directory) that a test may stop, start again on the same port, or pause
(SIGSTOP: connections are accepted by the kernel but never answered, like a hung
Redis), without touching the machine's Redis at 6379.

Use the ``private_redis`` fixture (import it into a conftest.py or a test module)::

    from tests.support.redis_server import private_redis_fixture  # noqa: F401

    async def test_outage(private_redis):
        private_redis.stop()
        ...
        private_redis.start()

The methods block for a few milliseconds (process start and stop); from an async
test that needs its loop running meanwhile, call them through asyncio.to_thread.

``machine_redis_url()`` is the machine's Redis (``TEST_REDIS_URL``, else ``REDIS_URL``,
else redis://127.0.0.1:6379/0); it fails the test, never skips it, when Redis does
not answer. Fixtures on it, to import into a test module like ``private_redis``:

* ``machine_url``: that URL;
* ``prefix``: a key prefix of the test's own (``cps-test:<random>:``); every key under
  it is deleted after the test;
* ``raw``: a plain redis.asyncio client on it, to look at what the code under test
  wrote (closed after the test).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.ports import MAX_PORT_ATTEMPTS, free_port, lost_the_port

DEFAULT_MACHINE_REDIS_URL = "redis://127.0.0.1:6379/0"


def machine_redis_url() -> str:
    """The machine's Redis URL, after checking it answers PING (pytest.fail if not)."""
    env = os.environ
    url = env.get("TEST_REDIS_URL") or env.get("REDIS_URL") or DEFAULT_MACHINE_REDIS_URL
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"the integration tests need Redis at {url}, which does not answer: {exc}")
    finally:
        client.close()
    return url


def _pid_on(port: int) -> int | None:
    """The process id of the Redis answering on ``port``; None when none answers."""
    client = redis.Redis(
        port=port, socket_connect_timeout=0.2, socket_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    try:
        return int(client.info("server")["process_id"])
    except (redis.RedisError, OSError, KeyError, ValueError):
        return None
    finally:
        client.close()


class RedisServer:
    """A private redis-server on 127.0.0.1:``port`` (a free one by default).

    A port it chose itself and lost to another process before its first start is
    traded for another one; a restart stays on its port (clients have its URL)."""

    def __init__(self, port: int | None = None, *, binary: str = "redis-server") -> None:
        found = shutil.which(binary)
        if found is None:
            raise RuntimeError(f"{binary} is not on PATH: the Redis outage tests need it")
        self.binary = found
        self.port = port or free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="redis-test-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._may_move = port is None  # until it has served on its port once

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Start the server (again, on the same port) and wait until it answers on
        its port: it, not another process that took the port."""
        if self.running:
            return
        for _ in range(MAX_PORT_ATTEMPTS):
            if self._launch(timeout):
                self._may_move = False
                return
            self.port = free_port()
        raise RuntimeError(f"{MAX_PORT_ATTEMPTS} ports in a row were taken")

    def _launch(self, timeout: float) -> bool:
        """True once the server answers on its port; False when it lost a port it may
        trade for another; raises when it did not start otherwise."""
        log_file = self.directory / "redis.log"
        log_file.unlink(missing_ok=True)
        options = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "save": "",  # no snapshots: a restarted server starts empty
            "appendonly": "no",
            "dir": str(self.directory),
            "logfile": str(log_file),
        }
        argv = [self.binary]
        for name, value in options.items():
            argv += [f"--{name}", value]
        self._process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        self._paused = False
        deadline = time.monotonic() + timeout
        while _pid_on(self.port) != self._process.pid:
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = log_file.read_text(errors="replace") if log_file.exists() else ""
                if self._may_move and lost_the_port(log):
                    return False
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log}")
            time.sleep(0.01)
        return True

    def stop(self) -> None:
        """Stop the server and wait for it to exit; its data is gone (no persistence)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        if self._paused:
            process.send_signal(signal.SIGCONT)
            self._paused = False
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): it keeps its port and data but answers nothing."""
        if not self.running:
            raise RuntimeError("the redis-server is not running")
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Undo pause()."""
        if self._process is not None and self._paused:
            self._process.send_signal(signal.SIGCONT)
            self._paused = False

    def cleanup(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()


@pytest.fixture(name="private_redis")
def private_redis_fixture() -> Iterator[RedisServer]:
    """A started private redis-server, stopped and removed after the test."""
    with RedisServer() as server:
        yield server


@pytest.fixture(name="machine_url")
def machine_url_fixture() -> str:
    """The machine's Redis URL (the test fails when it does not answer)."""
    return machine_redis_url()


@pytest.fixture(name="prefix")
def prefix_fixture(machine_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    value = f"cps-test:{uuid.uuid4().hex}:"
    yield value
    with redis.Redis.from_url(machine_url) as client:
        keys = list(client.scan_iter(match=f"{value}*"))
        if keys:
            client.delete(*keys)


@pytest.fixture(name="raw")
async def raw_fixture(machine_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain redis.asyncio client on the machine's Redis."""
    client = redis.asyncio.Redis.from_url(machine_url)
    yield client
    await client.aclose()
