"""LOG_FORMAT=json: one JSON object a line, whatever starts the process, tracebacks
inside it (``exc_info``). The server runs as deployed, with the ``sanic`` command,
which loads tracerite (a patch of every ``logging.StreamHandler``'s ``emit``)."""

import signal

import asyncpg
import pytest

from infrastructure.db.config import connect_kwargs
from tests.support.database import fresh_database
from tests.support.server_process import json_lines, running_server, server_env

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
