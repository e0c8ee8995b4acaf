"""A server on a database whose schema lacks some of the code's migrations says it is
not ready (503, naming them) instead of answering 500 to every request, and the
migrate CLI the Kubernetes init container runs waits for the same condition."""

import asyncio
import os
import sys

import asyncpg
import pytest

from infrastructure.db.config import connect_kwargs
from infrastructure.db.migrate import shipped_migrations, upgrade
from infrastructure.settings import Settings
from interfaces.http.app import create_app
from tests.e2e import conftest
from tests.support.database import fresh_database
from tests.support.live_server import serve
from tests.support.server_process import ROOT

pytestmark = pytest.mark.integration


async def migrate_cli(url: str, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "infrastructure.db.migrate",
        *args,
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_ready_only_once_every_shipped_migration_is_applied(gecko):
    with fresh_database(migrated=False) as url:
        app = create_app(settings=Settings.from_env(conftest.test_env(url, gecko.base_url, None)))
        async with serve(app) as client:
            r = await client.get("/health/ready")
            assert r.status_code == 503
            assert r.json()["database"] is True
            assert r.json()["pending_migrations"] == shipped_migrations()

            assert await migrate_cli(url, "check") == (
                1,
                f"pending: {', '.join(shipped_migrations())}\n",
            )
            code, output = await migrate_cli(url, "wait", "--timeout", "1")
            assert code == 1 and "gave up after 1 s waiting for migrations" in output

            await upgrade(url)
            r = await client.get("/health/ready")
            assert (r.status_code, r.json()["status"]) == (200, "ok"), r.text
            assert "pending_migrations" not in r.json()
            assert await migrate_cli(url, "wait", "--timeout", "5") == (0, "up to date\n")


async def test_a_partly_migrated_database_names_what_it_lacks(gecko):
    with fresh_database() as url:
        latest = shipped_migrations()[-1]
        conn = await asyncpg.connect(**connect_kwargs(url))
        try:
            await conn.execute("DELETE FROM aerich WHERE version = $1", latest)
        finally:
            await conn.close()
        app = create_app(settings=Settings.from_env(conftest.test_env(url, gecko.base_url, None)))
        async with serve(app) as client:
            r = await client.get("/health/ready")
        assert (r.status_code, r.json()["pending_migrations"]) == (503, [latest])


async def test_not_ready_until_every_start_up_listener_has_finished(gecko):
    """Sanic serves while its after_server_start listeners run: a probe then answers
    503 "starting", never 200 (nor a 500 from something not set up yet)."""
    with fresh_database() as url:
        app = create_app(settings=Settings.from_env(conftest.test_env(url, gecko.base_url, None)))
        entered, release = asyncio.Event(), asyncio.Event()

        @app.after_server_start
        async def slow_start_up(app):  # registered after the app's own listeners
            entered.set()
            await release.wait()

        answers = []

        async def probe(client):
            await asyncio.wait_for(entered.wait(), timeout=30)
            try:
                answers.append(await client.get("/health/ready"))
            finally:
                release.set()

        async with serve(app, while_starting=probe) as client:
            (during,) = answers
            assert (during.status_code, during.json()) == (503, {"status": "starting"})
            r = await client.get("/health/ready")
            assert (r.status_code, r.json()["status"]) == (200, "ok"), r.text
