"""``make container-test``: the specification's ``docker-compose up --build``, from the repo,
checked for real, as README's Docker section describes it. One stack (its own Compose
project name) for every check, in the order of this file; ``down -v`` at the end, failed or
not. CoinGecko is the stand-in of tests/fakes, served on the host (0.0.0.0) and reached from
the stack through host.docker.internal, with ``COINGECKO_BASE_URL`` passed through Compose.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.containers.conftest import TIMINGS
from tests.fakes.coingecko_server import FakeCoinGecko
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
PROJECT = f"cpstest{os.getpid()}"
UP_SECONDS = 900  # a cold build fetches every locked wheel
READY_SECONDS = 120
STOP_SECONDS = 5  # SIGTERM to exit; SHUTDOWN_GRACE_SECONDS only bounds requests in flight
USER = {"username": "container-test", "password": "container-test-password"}
APP_UID = 10001
# `docker-compose logs` leads each line with its container: "app_1  | " (v1), "app-1  | " (v2).
LOG_PREFIX = re.compile(r"^[\w.-]+\s*\| ?")


@dataclass
class Stack:
    port: int
    gecko: FakeCoinGecko
    env: dict[str, str]
    token: str = ""
    down: str = ""  # why the stack is not up, once a start failed: the later checks stop at once
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def compose(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            ["docker-compose", "-p", PROJECT, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"docker-compose {' '.join(args)}: {output[-4000:]}"
        return output

    def up(self) -> None:
        """The specification's command (detached), then ready within READY_SECONDS."""
        started = time.monotonic()
        self.down = "docker-compose up --build failed"
        self.compose("up", "--build", "-d", timeout=UP_SECONDS)
        TIMINGS.setdefault("docker-compose up --build -d", []).append(time.monotonic() - started)
        self.wait_ready()
        self.down = ""
        TIMINGS.setdefault("up to /health/ready 200", []).append(time.monotonic() - started)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        last: object = None
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"{self.url}/health/ready", timeout=5)
                if answer.status_code == 200:
                    return
                last = f"{answer.status_code} {answer.text[:200]}"
            except httpx.HTTPError as error:
                last = error
            time.sleep(0.2)
        raise AssertionError(f"not ready after {READY_SECONDS} s: {last}\n{self.app_log()[-4000:]}")

    def container(self, service: str = "app") -> str:
        return self.compose("ps", "-q", service).strip()

    def app_log(self) -> str:
        return self.compose("logs", "--no-color", "app")

    def app_log_lines(self) -> list[dict[str, Any]]:
        """Every line the app container wrote, each of which must be a JSON object."""
        records = []
        for line in self.app_log().splitlines():
            text = LOG_PREFIX.sub("", line, count=1)
            if not text or text.startswith("Attaching to"):
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError:
                raise AssertionError(f"not a JSON line: {text!r}") from None
            assert isinstance(record, dict), text
            records.append(record)
        return records

    def psql(self, sql: str) -> None:
        self.compose("exec", "-T", "postgres", "psql", "-U", "crypto", "-d", "crypto", "-c", sql)

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def log_in(self) -> None:
        self.token = ""
        answer = self.api("POST", "/auth/login", json=USER)
        assert answer.status_code == 200, answer.text
        self.token = answer.json()["token"]

    def btc_history(self) -> list[dict[str, Any]]:
        listed = self.api("GET", "/crypto")
        assert listed.status_code == 200, listed.text
        assert [crypto["symbol"] for crypto in listed.json()["cryptos"]] == ["BTC"]
        answer = self.api("GET", "/crypto/BTC/history")
        assert answer.status_code == 200, answer.text
        history: list[dict[str, Any]] = answer.json()["history"]
        return history


@pytest.fixture(scope="module")
def gecko() -> Iterator[FakeCoinGecko]:
    """The CoinGecko stand-in on its own event loop, on every address of the host, so that
    the containers reach it through the bridge's gateway."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fake = FakeCoinGecko()
    asyncio.run_coroutine_threadsafe(fake.start(host="0.0.0.0"), loop).result(30)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


@pytest.fixture
def stack(up_stack: Stack) -> Stack:
    if up_stack.down:
        pytest.fail(f"not checked: {up_stack.down}", pytrace=False)
    return up_stack


@pytest.fixture(scope="module")
def up_stack(gecko: FakeCoinGecko) -> Iterator[Stack]:
    gecko_port = gecko.base_url.rsplit(":", 1)[1].split("/", 1)[0]
    env = {
        **os.environ,
        "PORT": str(free_port()),
        "COINGECKO_BASE_URL": f"http://host.docker.internal:{gecko_port}/api/v3",
        "BCRYPT_ROUNDS": "4",  # passed through too: logins stay quick
    }
    stack = Stack(int(env["PORT"]), gecko, env)
    started = time.monotonic()
    try:
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans", timeout=300)
        TIMINGS["whole stack, up to down -v"] = [time.monotonic() - started]


def test_up_build_gets_ready(up_stack: Stack) -> None:
    up_stack.up()


def test_register_log_in_add_list_history(stack: Stack) -> None:
    registered = stack.api("POST", "/auth/register", json=USER)
    assert registered.status_code == 201, registered.text
    stack.log_in()
    stack.gecko.set_price("bitcoin", 64000.5)
    added = stack.api("POST", "/crypto", json={"symbol": "BTC"})
    assert added.status_code == 201, added.text
    assert added.json()["crypto"]["current_price"] == 64000.5
    assert stack.gecko.calls(), "the stack did not call the CoinGecko stand-in"
    stack.history = stack.btc_history()
    assert stack.history and stack.history[-1]["price"] == 64000.5


def test_every_log_line_is_json_a_traceback_included(stack: Stack) -> None:
    """A write that hits an unexpected database error (a column gone) is a 500 whose
    traceback the log carries inside one JSON object (``exc_info``)."""
    stack.psql("ALTER TABLE users RENAME COLUMN password_hash TO password_hash_gone")
    try:
        failed = stack.api("POST", "/auth/register", json={**USER, "username": "second-user"})
    finally:
        stack.psql("ALTER TABLE users RENAME COLUMN password_hash_gone TO password_hash")
    assert failed.status_code == 500, failed.text
    assert failed.json() == {"error": "internal server error"}
    records = stack.app_log_lines()
    failures = [record for record in records if "password_hash" in record.get("exc_info", "")]
    assert failures, "no JSON line carries the traceback (exc_info)"
    assert "Traceback" in failures[0]["exc_info"]


def test_one_server_process_not_root(stack: Stack) -> None:
    top = subprocess.run(
        ["docker", "top", stack.container(), "-eo", "pid,uid,args"],  # it needs the pid
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()[1:]
    processes = [line.split(None, 2) for line in top if line.strip()]
    assert len(processes) == 1, top
    _, uid, args = processes[0]
    assert int(uid) == APP_UID
    assert "sanic interfaces.http.app:create_app" in args and "--single-process" in args


def test_data_survives_restart(stack: Stack) -> None:
    stack.down = "docker-compose restart failed"
    stack.compose("restart", timeout=300)
    stack.wait_ready()
    stack.down = ""
    stack.log_in()
    assert stack.btc_history()[: len(stack.history)] == stack.history


def test_stop_ends_the_app_with_exit_code_0_quickly(stack: Stack) -> None:
    container = stack.container()
    started = time.monotonic()
    stack.compose("stop", "app", timeout=60)
    seconds = time.monotonic() - started
    TIMINGS["docker-compose stop app"] = [seconds]
    state = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", container],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert state == ["exited", "0"]
    assert seconds < STOP_SECONDS
    stack.app_log_lines()  # the shutdown's lines are JSON too


def test_data_survives_down_then_up(stack: Stack) -> None:
    stack.compose("down", timeout=300)
    stack.up()
    stack.log_in()
    assert stack.btc_history()[: len(stack.history)] == stack.history
