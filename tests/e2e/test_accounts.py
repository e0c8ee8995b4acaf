"""Who may use the API: tokens of users that exist, closed sign-up with the create-user
command (a real subprocess on the test database), and who changed which crypto."""

import asyncio
import logging
import sys
import time
from pathlib import Path

import asyncpg
import jwt
import pytest

from infrastructure.db.config import connect_kwargs
from infrastructure.settings import Settings
from interfaces.http.app import create_app
from tests.e2e.conftest import JWT_SECRET
from tests.e2e.conftest import test_env as e2e_env  # not collected as a test
from tests.support.database import truncate_tables
from tests.support.live_server import serve
from tests.support.server_process import server_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


async def delete_user(database_url: str, username: str) -> None:
    conn = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        await conn.execute("DELETE FROM users WHERE username = $1", username)
    finally:
        await conn.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_deleted_users_token_is_refused(api, database_url):
    r = await api.client.post(
        "/auth/register", json={"username": "ghost", "password": "ghost password"}
    )
    ghost = bearer(r.json()["token"])
    await api.client.post("/crypto", headers=api.auth, json={"symbol": "BTC"})
    await delete_user(database_url, "ghost")
    for method, path in (("GET", "/crypto"), ("DELETE", "/crypto/BTC")):
        r = await api.client.request(method, path, headers=ghost)
        assert r.status_code == 401, (method, path)
        assert r.json() == {"error": "invalid token: its user does not exist"}
    r = await api.client.get("/crypto/BTC", headers=api.auth)
    assert r.status_code == 200  # the DELETE did nothing


@pytest.mark.parametrize("sub", ["999", "0", str(2**31), "9" * 30])
async def test_a_token_for_a_user_that_never_existed_is_refused(api, sub):
    now = int(time.time())
    token = jwt.encode({"sub": sub, "iat": now, "exp": now + 600}, JWT_SECRET)
    r = await api.client.get("/crypto", headers=bearer(token))
    assert r.status_code == 401
    assert "does not exist" in r.json()["error"]


async def test_the_user_who_adds_refreshes_or_deletes_is_logged(api, caplog):
    caplog.set_level(logging.INFO, logger="interfaces.http.routes.cryptos")
    user_id = jwt.decode(
        api.auth["Authorization"].removeprefix("Bearer "), JWT_SECRET, algorithms=["HS256"]
    )["sub"]
    await api.client.post("/crypto", headers=api.auth, json={"symbol": "btc"})
    await api.client.put("/crypto/btc/refresh", headers=api.auth)
    await api.client.delete("/crypto/btc", headers=api.auth)
    lines = [r for r in caplog.records if r.name == "interfaces.http.routes.cryptos"]
    assert [r.getMessage() for r in lines] == [
        f"user {user_id} added BTC",
        f"user {user_id} refreshed BTC",
        f"user {user_id} deleted BTC",
    ]
    assert {r.levelno for r in lines} == {logging.INFO}
    assert {r.user_id for r in lines} == {int(user_id)}  # a field of its own in JSON logs


async def create_user(env, username, stdin: bytes) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "interfaces.cli",
        "create-user",
        username,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_closed_registration_and_the_create_user_command(database_url, gecko, tmp_path):
    await truncate_tables(database_url)
    settings = Settings.from_env(
        {**e2e_env(database_url, gecko.base_url, None), "REGISTRATION_OPEN": "false"}
    )
    env = server_env(database_url, gecko.base_url, tmp_path, REGISTRATION_OPEN="false")
    async with serve(create_app(settings=settings)) as client:
        alice = {"username": "alice", "password": "correct horse"}
        r = await client.post("/auth/register", json=alice)
        assert (r.status_code, r.json()) == (403, {"error": "registration is closed"})
        assert (await client.post("/auth/login", json=alice)).status_code == 401

        status, out, err = await create_user(env, "alice", b"correct horse\n")
        assert status == 0, err
        assert out.strip() == "created user 'alice' (id 1)"
        r = await client.post("/auth/login", json=alice)
        assert r.status_code == 200
        assert (await client.get("/crypto", headers=bearer(r.json()["token"]))).status_code == 200

        for username, stdin, expected_status, message in [
            ("ALICE", b"another password\n", 3, "username 'ALICE' is already taken"),
            ("a b", b"correct horse\n", 1, "username must be 3 to 50 characters"),
            ("bob", b"short\n", 1, "password must be at least 8 bytes"),
            ("bob", b"", 1, "password must be at least 8 bytes"),
        ]:
            status, out, err = await create_user(env, username, stdin)
            assert status == expected_status, (username, err)
            assert f"create-user: {message}" in err
            assert "Traceback" not in err and out == ""
        status, _out, err = await create_user(env, "", b"")
        assert status == 1 and "username must be" in err
    conn = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        assert await conn.fetchval("SELECT count(*) FROM users") == 1
    finally:
        await conn.close()


async def test_create_user_without_a_database_says_so(tmp_path):
    env = server_env("postgres://postgres@127.0.0.1:1/nowhere", "http://127.0.0.1:9", tmp_path)
    status, _out, err = await create_user(env, "alice", b"correct horse\n")
    assert status == 4
    assert err.splitlines()[-1].startswith("create-user: failed:")
    assert "Traceback" not in err
