"""The server heals itself: a killed worker is logged and replaced (or, when it cannot
be, the server exits with an error status for its supervisor to restart it); the
workers of a killed main process stop rather than hold the port; and a start that
fails leaves alone the embedded PostgreSQL that another server's workers still use.
Real server processes, killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import psutil
import pytest

from tests.fakes.coingecko_server import Failure
from tests.support.clock import wait_until
from tests.support.live_server import sanic_command
from tests.support.server_process import ROOT, ServerProcess, running_server, server_env

pytestmark = pytest.mark.integration

SERVER_WORKER = "Sanic-Server-"


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def children(pid: int) -> list[psutil.Process]:
    try:
        return [child for child in psutil.Process(pid).children() if not gone(child.pid)]
    except psutil.NoSuchProcess:
        return []


def serving_workers(server: ServerProcess) -> dict[int, str]:
    """The main process's live server workers that said they serve: pid to name."""
    log = server.log()
    workers = {}
    for child in children(server.process.pid):
        with suppress(psutil.Error):
            name = child.environ().get("SANIC_WORKER_NAME", "")
            if name.startswith(SERVER_WORKER) and f"Worker ready [{child.pid}]" in log:
                workers[child.pid] = name
    return workers


async def workers_once_settled(server: ServerProcess, count: int, old: set[int]) -> dict[int, str]:
    """Wait until ``count`` workers serve, none of them in ``old``."""

    def settled() -> dict[int, str] | None:
        workers = serving_workers(server)
        return workers if len(workers) == count and not workers.keys() & old else None

    found = await wait_until(settled, f"{count} serving workers, none of {sorted(old)}", 60)
    assert found is not None
    return found


def error_lines(log: str, text: str) -> list[str]:
    return [line for line in log.splitlines() if " ERROR " in line and text in line]


async def all_answer(server: ServerProcess, requests: int = 20) -> None:
    for _ in range(requests):
        async with server.client(timeout=10) as client:  # a new connection each time
            r = await client.get("/health/ready")
        assert r.status_code == 200, r.text


def kill_group(server: ServerProcess) -> None:
    """Whatever is left of a server started in a session of its own."""
    with suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGKILL)


async def test_a_killed_worker_is_logged_and_replaced(database_url, gecko, tmp_path):
    env = server_env(database_url, gecko.base_url, tmp_path, PRICE_POLLER_ENABLED="false")
    async with running_server(env, tmp_path / "server.log", workers=2) as server:
        try:
            await server.wait_ready()
            first = await workers_once_settled(server, 2, old=set())

            victim = min(first)
            os.kill(victim, signal.SIGKILL)
            await wait_until(
                lambda: error_lines(server.log(), f"worker {first[victim]} (pid {victim})"),
                "an ERROR line naming the killed worker",
                30,
            )
            second = await workers_once_settled(server, 2, old={victim})
            assert set(second.values()) == set(first.values())  # the same slots, refilled
            await all_answer(server)

            # Every worker at once: the server answers from replacements only.
            for pid in second:
                os.kill(pid, signal.SIGKILL)
            await workers_once_settled(server, 2, old=set(first) | set(second))
            await all_answer(server)
            for pid, name in second.items():
                assert error_lines(server.log(), f"worker {name} (pid {pid}) killed by SIGKILL")

            # SIGINT stops the replacements too, as it does the first workers.
            left_behind = [child.pid for child in children(server.process.pid)]
            assert await server.stop() == 0, server.log()[-3000:]
            await wait_until(
                lambda: all(gone(pid) for pid in left_behind), "every child to exit", 15
            )
            assert not error_lines(server.log(), "is gone: this worker"), "orphaned, not stopped"
        finally:
            kill_group(server)
    assert "Traceback" not in server.log()


async def test_a_worker_that_cannot_be_replaced_stops_the_server(database_url, gecko, tmp_path):
    # No JWT_SECRET: every worker reads the dev secret kept in DATA_DIR at its start.
    env = server_env(
        database_url, gecko.base_url, tmp_path, PRICE_POLLER_ENABLED="false", JWT_SECRET=""
    )
    async with running_server(env, tmp_path / "server.log", workers=2) as server:
        try:
            await server.wait_ready()
            workers = await workers_once_settled(server, 2, old=set())
            (tmp_path / "jwt_secret").write_text("too short\n")  # a replacement cannot start

            victim = min(workers)
            os.kill(victim, signal.SIGKILL)
            code = await asyncio.wait_for(server.process.wait(), timeout=60)

            log = server.log()
            assert code == 1, log[-3000:]
            assert error_lines(log, f"worker {workers[victim]} (pid {victim}) killed by SIGKILL")
            assert error_lines(log, "died before it was up (exited with status 1): stopping")
            survivor = max(workers)
            await wait_until(lambda: gone(survivor), "the other worker to stop", 15)
        finally:
            kill_group(server)


async def test_the_workers_of_a_killed_main_process_stop_and_free_the_port(
    database_url, gecko, tmp_path
):
    env = server_env(database_url, gecko.base_url, tmp_path, PRICE_POLLER_ENABLED="false")
    async with running_server(env, tmp_path / "server.log", workers=2) as server:
        try:
            await server.wait_ready()
            workers = await workers_once_settled(server, 2, old=set())
            # The workers, and Sanic's manager and multiprocessing's resource tracker.
            left_behind = [child.pid for child in children(server.process.pid)]
            assert set(workers) < set(left_behind)

            server.process.kill()
            await server.process.wait()

            # Real time is the point here; the bound is generous (they check every second).
            await wait_until(
                lambda: all(gone(pid) for pid in left_behind), "every child to exit", 15
            )
            with socket.socket() as sock:  # as the next server would
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("127.0.0.1", server.port))
                sock.listen()
            for pid in workers:
                assert error_lines(server.log(), f"this worker (pid {pid}) stops")
        finally:
            kill_group(server)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A DATA_DIR outside pytest's own temporary root: the embedded PostgreSQL runs as
    another user when we are root, and every pytest session that starts (another
    checkout's, say) takes that user's way into pytest's root away (chmod 0700)."""
    path = Path(tempfile.mkdtemp(prefix="cps-supervision-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_a_failed_start_leaves_the_embedded_postgres_to_the_workers_using_it(
    gecko, tmp_path, data_dir
):
    """The first server's main process is killed while its worker finishes a slow
    request; a second server that fails to start (its port is taken) must not stop
    the embedded PostgreSQL under that worker."""
    env = server_env(
        "",  # no DATABASE_URL: the embedded PostgreSQL under DATA_DIR
        gecko.base_url,
        data_dir,
        PRICE_POLLER_ENABLED="false",
        SHUTDOWN_GRACE_SECONDS="120",
        COINGECKO_TIMEOUT_SECONDS="60",
    )
    env.pop("DATABASE_URL")
    pgdata = data_dir / "postgres"
    async with running_server(env, tmp_path / "first.log", workers=1) as first:
        try:
            await first.wait_ready(seconds=120)  # initdb
            auth = await first.register()
            async with first.client() as client:
                r = await client.post("/crypto", json={"symbol": "BTC"}, headers=auth)
                assert r.status_code == 201, r.text
                gecko.set_price("bitcoin", 71000.0)
                gecko.fail(Failure.hang(300), path="/simple/price")
                refresh = asyncio.create_task(client.put("/crypto/BTC/refresh", headers=auth))
                await wait_until(lambda: gecko.calls("/simple/price"), "the refresh to start", 30)
                (worker,) = serving_workers(first)

                first.process.kill()
                await first.process.wait()
                await wait_until(
                    lambda: f"this worker (pid {worker}) stops" in first.log(),
                    "the orphaned worker to start stopping",
                    15,
                )

                output = await failed_start(env, tmp_path / "second.log")
                assert "Address already in use" in output, output[-3000:]

                gecko.release_hung()
                r = await refresh
            assert r.status_code == 200, r.text  # PostgreSQL still answered the worker
            assert r.json()["crypto"]["current_price"] == 71000.0

            # The last one using it lets it go: nothing is left running.
            await wait_until(lambda: gone(worker), "the orphaned worker to exit", 30)
            await wait_until(
                lambda: not (pgdata / "postmaster.pid").exists(), "PostgreSQL to stop", 30
            )
        finally:
            kill_group(first)


async def failed_start(env: dict[str, str], log_path: Path) -> str:
    """Start a server on a port in use; return its output once it has exited, failing."""
    with socket.socket() as taken, log_path.open("wb") as log:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = await asyncio.create_subprocess_exec(
            *sanic_command(taken.getsockname()[1], workers=1),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        try:
            code = await asyncio.wait_for(process.wait(), timeout=120)
        finally:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    output = await asyncio.to_thread(log_path.read_text, errors="replace")
    assert code != 0, output[-3000:]
    return output
