"""PostgreSQL paused (SIGSTOP) or stopped under a serving app: every request that needs it
answers 503 ``{"error": "database unavailable"}`` within about DATABASE_TIMEOUT_SECONDS
(the reads the read model holds answer from memory), readiness
answers within its own timeout, the outage is logged once (no traceback), and the
same app serves again soon after PostgreSQL is back. Readiness stays 200 ("degraded")
through the outage once the schema was found current, so that the pods stay in their
Service and answer that 503; a server that never saw the schema stays 503.

The PostgreSQL paused and stopped here is a private one (the embedded package's, in a
scratch directory), never the machine's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from infrastructure.db.embedded import start_embedded_postgres, stop_embedded_postgres
from infrastructure.db.leader_lock import AdvisoryLeaderLock
from infrastructure.db.repositories import READY_TIMEOUT_SECONDS
from infrastructure.settings import Settings
from interfaces.http.app import create_app
from tests.e2e import conftest
from tests.e2e.conftest import Api
from tests.fakes.coingecko_server import FakeCoinGecko
from tests.support.database import migrate, truncate_tables
from tests.support.live_server import serve

pytestmark = pytest.mark.integration

DEADLINE = 1.0  # DATABASE_TIMEOUT_SECONDS of the app under test
WITHIN = 2 * DEADLINE  # the deadline and as much again for a loaded machine (not waiting
# for a paused server to acknowledge a cancelled query is what keeps it under 2x)
RECOVERY = 20.0  # PostgreSQL back: the same app serves again well before this
UNAVAILABLE = {"error": "database unavailable"}
OUTAGE_LOGGER = "infrastructure.db.engine"


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[tuple[Path, str]]:
    """A PostgreSQL of this module's own, migrated: (its data directory, its URL).

    Not under pytest's temporary directory: every pytest session that starts on this
    machine makes that one private to root again, which locks out the server (it runs
    as another user when we are root) in the middle of its run."""
    scratch = Path(tempfile.mkdtemp(prefix="cps-outage-"))
    pgdata = scratch / "postgres"
    try:
        url = start_embedded_postgres(pgdata)
        try:
            migrate(url)
            yield pgdata, url
        finally:
            resume(server_processes(pgdata))
            stop_embedded_postgres(pgdata)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def server_processes(pgdata: Path) -> list[psutil.Process]:
    """The postmaster and its children (backends, checkpointer, ...), while it runs."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        return [postmaster, *postmaster.children(recursive=True)]
    except (OSError, ValueError, IndexError, psutil.NoSuchProcess):
        return []


def resume(processes: list[psutil.Process]) -> None:
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.resume()


@contextlib.contextmanager
def paused(pgdata: Path) -> Iterator[None]:
    """Every process of the server stopped (SIGSTOP) for the block, resumed after it
    whatever happens."""
    postmaster = server_processes(pgdata)[:1]
    assert postmaster, "the private PostgreSQL is not running"
    stopped: list[psutil.Process] = []
    try:
        # The postmaster first, so that it forks no new backend behind our back.
        postmaster[0].suspend()
        stopped.append(postmaster[0])
        for child in postmaster[0].children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                child.suspend()
                stopped.append(child)
        yield
    finally:
        resume(stopped)


@asynccontextmanager
async def app_on(url: str, gecko: FakeCoinGecko) -> AsyncIterator[Api]:
    """The whole app served on ``url`` with a 1 s database deadline and a user's token,
    once it has answered ready."""
    await truncate_tables(url)
    env = {
        **conftest.test_env(url, gecko.base_url, None),
        "DATABASE_TIMEOUT_SECONDS": str(DEADLINE),
    }
    app = create_app(settings=Settings.from_env(env))
    async with serve(app) as client:
        # Ready first, as Kubernetes sees a pod before sending it any traffic.
        assert (await client.get("/health/ready")).status_code == 200
        r = await client.post(
            "/auth/register", json={"username": "tester", "password": "test password"}
        )
        assert r.status_code == 201, r.text
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        r = await client.post("/crypto", json={"symbol": "BTC"}, headers=auth)
        assert r.status_code == 201, r.text
        yield Api(app, client, gecko, auth)


def database_requests(api: Api) -> list[Callable[[], Awaitable[httpx.Response]]]:
    """A read, a read with SQL of our own, a write and a login: each needs PostgreSQL.
    More list requests than the pool has connections (10), so some wait for one."""
    client, auth = api.client, api.auth
    calls: list[Callable[[], Awaitable[httpx.Response]]] = [
        lambda: client.get("/crypto/BTC/stats", headers=auth),
        lambda: client.delete("/crypto/BTC", headers=auth),
        lambda: client.post("/auth/login", json={"username": "tester", "password": "wrong one"}),
    ]
    calls += [lambda: client.get("/crypto", headers=auth)] * 12
    return calls


async def timed(call: Callable[[], Awaitable[httpx.Response]]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await call()
    return response, time.monotonic() - started


async def all_unavailable_in_time(api: Api, *, reads_from_memory: bool | None = None) -> None:
    """Every request within WITHIN, all at once: those that need PostgreSQL answer 503.
    The reads the read model holds: with ``reads_from_memory`` True they answer what it
    last loaded (stale-if-error: a stopped server closed its listening connection, and
    nothing can be written meanwhile); with None they may do either (a paused server
    does not close that connection: its heartbeat finds out within seconds)."""
    async with asyncio.timeout(WITHIN + 5):  # a hang fails here, not after minutes
        answers = await asyncio.gather(*(timed(call) for call in database_requests(api)))
    for response, seconds in answers:
        request = f"{response.request.method} {response.request.url.path}"
        is_read = response.request.method == "GET"
        if is_read and (reads_from_memory or (reads_from_memory is None and response.is_success)):
            assert response.status_code == 200, request
            assert "BTC" in response.text, request
        else:
            assert (response.status_code, response.json()) == (503, UNAVAILABLE), request
        assert seconds < WITHIN, f"{request} took {seconds:.2f} s"


async def readiness_in_time(api: Api) -> httpx.Response:
    started = time.monotonic()
    async with asyncio.timeout(READY_TIMEOUT_SECONDS + 5):
        r = await api.client.get("/health/ready")
    assert time.monotonic() - started < READY_TIMEOUT_SECONDS + 1.0
    return r


async def still_ready_in_time(api: Api) -> None:
    """The schema was current when PostgreSQL last answered: the pod stays in its Service."""
    r = await readiness_in_time(api)
    assert (r.status_code, r.json()["status"], r.json()["database"]) == (200, "degraded", False)


async def serves_again(api: Api) -> None:
    """The same app answers what needs PostgreSQL again within RECOVERY seconds of its
    return (a wrong password is a 401 once the user can be looked up)."""
    give_up = time.monotonic() + RECOVERY
    while True:
        r = await api.client.post(
            "/auth/login", json={"username": "tester", "password": "wrong one"}
        )
        if r.status_code == 401:
            break
        assert r.status_code == 503, r.text
        assert time.monotonic() < give_up, "the app did not recover"
        await asyncio.sleep(0.2)
    assert (await api.client.get("/health/ready")).status_code == 200
    r = await api.client.post("/crypto", json={"symbol": "ETH"}, headers=api.auth)
    assert r.status_code == 201, r.text
    r = await api.client.get("/crypto", headers=api.auth)
    assert r.status_code == 200 and "ETH" in r.text, r.text


READ_MODEL_LOGGER = "infrastructure.read_model.live"


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What the outage left in the log at WARNING and above; no tracebacks anywhere."""
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    return [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name != "py.warnings"  # imports' deprecations
    ]


def requests_outage_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The outage lines but the read model's: its listening connection says once that it
    was lost, if it noticed (a paused server is found by its heartbeat, every 5 s)."""
    lines = outage_lines(caplog)
    of_the_read_model = [r for r in lines if r.name == READ_MODEL_LOGGER]
    assert len(of_the_read_model) <= 1, [r.getMessage() for r in of_the_read_model]
    return [r for r in lines if r.name != READ_MODEL_LOGGER]


def logged_once(caplog: pytest.LogCaptureFixture) -> None:
    lines = requests_outage_lines(caplog)
    assert [(r.name, r.getMessage().split(" (")[0]) for r in lines] == [
        (OUTAGE_LOGGER, "database unavailable")
    ], [r.getMessage() for r in lines]


async def recovered(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    """The app serves again, says so in the log, and logged nothing else of note."""
    await serves_again(api)
    assert any(
        r.name == OUTAGE_LOGGER and r.getMessage().startswith("database available again")
        for r in caplog.records
    )
    assert len(requests_outage_lines(caplog)) == 1


async def test_paused_postgres_answers_503_in_time_and_recovers(
    private_postgres: tuple[Path, str], gecko: FakeCoinGecko, caplog: pytest.LogCaptureFixture
) -> None:
    pgdata, url = private_postgres
    async with app_on(url, gecko) as api:
        caplog.clear()
        with paused(pgdata):
            await all_unavailable_in_time(api)
            await still_ready_in_time(api)
            # Again: connections closed are reopened.
            await all_unavailable_in_time(api)
        logged_once(caplog)

        await recovered(api, caplog)


async def test_stopped_postgres_answers_503_fast_and_the_same_app_serves_after_restart(
    private_postgres: tuple[Path, str], gecko: FakeCoinGecko, caplog: pytest.LogCaptureFixture
) -> None:
    pgdata, url = private_postgres
    async with app_on(url, gecko) as api:
        caplog.clear()
        await asyncio.to_thread(stop_embedded_postgres, pgdata)
        try:
            assert not server_processes(pgdata)
            for _ in range(3):
                await all_unavailable_in_time(api, reads_from_memory=True)
            await still_ready_in_time(api)
            logged_once(caplog)
        finally:
            assert await asyncio.to_thread(start_embedded_postgres, pgdata) == url

        await recovered(api, caplog)


async def test_the_poller_lock_gives_up_in_time_on_a_paused_postgres_and_warns_once(
    private_postgres: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    pgdata, url = private_postgres
    lock = AdvisoryLeaderLock(url, timeout=DEADLINE)
    try:
        assert await lock.acquire()
        caplog.clear()
        with paused(pgdata):
            for _ in range(3):  # its check, then new connections: each gives up in time
                started = time.monotonic()
                async with asyncio.timeout(WITHIN + 5):
                    assert not await lock.acquire()
                # its query's timeout, then closing that connection's: two timeouts
                assert time.monotonic() - started < DEADLINE + WITHIN
        assert [r.getMessage().split(" (")[0] for r in outage_lines(caplog)] == [
            "poller leader election: database unreachable"
        ]

        give_up = time.monotonic() + RECOVERY
        while not await lock.acquire():  # once the old session is gone, the lock is free
            assert time.monotonic() < give_up, "the lock was never taken again"
            await asyncio.sleep(0.2)
        assert "poller leader election: database reachable again" in caplog.messages
    finally:
        await lock.release()


async def test_a_server_starting_on_a_stopped_postgres_is_not_ready_until_it_sees_the_schema(
    private_postgres: tuple[Path, str], gecko: FakeCoinGecko
) -> None:
    pgdata, url = private_postgres
    env = {
        **conftest.test_env(url, gecko.base_url, None),
        "DATABASE_TIMEOUT_SECONDS": str(DEADLINE),
    }
    await asyncio.to_thread(stop_embedded_postgres, pgdata)
    try:
        app = create_app(settings=Settings.from_env(env))
        async with serve(app) as client:
            api = Api(app, client, gecko, {})
            r = await readiness_in_time(api)
            assert (r.status_code, r.json()["status"], r.json()["database"]) == (
                503,
                "unavailable",
                False,
            )
            assert await asyncio.to_thread(start_embedded_postgres, pgdata) == url
            r = await readiness_in_time(api)
            assert (r.status_code, r.json()["status"]) == (200, "ok"), r.text
            await asyncio.to_thread(stop_embedded_postgres, pgdata)
            await still_ready_in_time(api)
    finally:
        if not server_processes(pgdata):
            assert await asyncio.to_thread(start_embedded_postgres, pgdata) == url
