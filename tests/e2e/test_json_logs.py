"""LOG_FORMAT=json: one JSON object a line, whatever starts the process, tracebacks
inside it (``exc_info``). The server runs as deployed, with the ``sanic`` command,
which loads tracerite (a patch of every ``logging.StreamHandler``'s ``emit``)."""

import asyncio
import os
import signal
import sys

import asyncpg
import pytest

from infrastructure.db.config import connect_kwargs
from infrastructure.db.migrate import shipped_migrations
from tests.e2e.conftest import JWT_SECRET
from tests.support.database import fresh_database
from tests.support.live_server import sanic_command
from tests.support.ports import free_port
from tests.support.server_process import ROOT, json_lines, running_server, server_env

pytestmark = pytest.mark.integration


async def test_a_logged_traceback_stays_inside_its_json_line(gecko, tmp_path):
    """A register on a database whose schema changed under the server hits an error
    nobody expects: the 500 handler logs it with its traceback, in the line's exc_info."""
    with fresh_database() as url:
        env = server_env(url, gecko.base_url, tmp_path, PRICE_POLLER_ENABLED="false")
        env["LOG_FORMAT"] = "json"
        async with running_server(env, tmp_path / "server.log") as server:
            await server.wait_ready()
            conn = await asyncpg.connect(**connect_kwargs(url))
            try:
                await conn.execute("ALTER TABLE users RENAME COLUMN username TO renamed")
            finally:
                await conn.close()
            async with server.client() as client:
                r = await client.post(
                    "/auth/register", json={"username": "alice", "password": "a password"}
                )
            assert r.status_code == 500, r.text
            assert await server.stop(signal.SIGTERM) == 0, server.log()[-3000:]

    lines = json_lines(server.log())
    failed = [line for line in lines if line["message"] == "POST /auth/register failed"]
    assert len(failed) == 1, lines
    trace = failed[0]["exc_info"]
    assert trace.startswith("Traceback (most recent call last):")
    assert 'column "username" of relation "users" does not exist' in trace
    assert [line["message"] for line in lines[-1:]] == ["Server Stopped"]


async def python_m(module: str, *args: str, **env: str) -> tuple[int, str]:
    """``python -m module args`` with LOG_FORMAT=json: its status and its output
    (stdout and stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        cwd=ROOT,
        env={**os.environ, "LOG_FORMAT": "json", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_the_migrate_command_of_the_init_container_writes_json_lines():
    """``python -m infrastructure.db.migrate wait`` (the Kubernetes init container, with
    the ConfigMap's LOG_FORMAT=json): what it logs and what it reports."""
    with fresh_database(migrated=False) as url:
        code, output = await python_m(
            "infrastructure.db.migrate", "wait", "--timeout", "1", DATABASE_URL=url
        )
    assert code == 1
    lines = json_lines(output)
    waiting = f"waiting for migrations: {', '.join(shipped_migrations())}"
    assert {"level": "INFO", "message": waiting}.items() <= lines[0].items()
    assert lines[-1]["level"] == "ERROR"
    assert lines[-1]["message"] == f"gave up after 1 s {waiting}"


async def test_an_exception_that_ends_a_command_is_one_json_line():
    """Nobody catches a refused connection in ``migrate check``: the process ends with
    one line, the traceback inside, instead of Python's raw text."""
    unreachable = f"postgres://postgres@127.0.0.1:{free_port()}/nowhere"
    code, output = await python_m("infrastructure.db.migrate", "check", DATABASE_URL=unreachable)
    assert code == 1
    [line] = json_lines(output)
    assert line["level"] == "CRITICAL"
    assert line["message"].startswith("uncaught ") and "the process ends" in line["message"]
    assert line["exc_info"].startswith("Traceback (most recent call last):")
    assert "ConnectionRefusedError" in line["exc_info"]


async def test_a_wrong_setting_stops_the_server_with_one_json_line(database_url):
    process = await asyncio.create_subprocess_exec(
        *sanic_command(free_port()),
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": database_url,
            "JWT_SECRET": JWT_SECRET,
            "LOG_FORMAT": "json",
            "HISTORY_LIMIT": "0",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode != 0
    [line] = json_lines(output.decode())
    assert line["level"] == "CRITICAL"
    assert line["message"].startswith("configuration error: HISTORY_LIMIT")
