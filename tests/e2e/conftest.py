"""The whole app over real HTTP: a fresh PostgreSQL database, the machine's Redis
(under a key prefix of the test's own), the real CoinGecko client against the local
CoinGecko stand-in, and a registered user's token."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
import redis.asyncio as redis
from sanic import Sanic

from infrastructure.settings import Settings
from interfaces.http.app import create_app
from tests.fakes.coingecko_server import FakeCoinGecko
from tests.support.database import truncate_tables
from tests.support.live_server import serve
from tests.support.redis_server import machine_redis_url

JWT_SECRET = "test-only-secret-" + "0123456789abcdef" * 3  # 64 bytes: HS512 forgeries too


@dataclass
class Api:
    app: Sanic
    client: httpx.AsyncClient
    gecko: FakeCoinGecko
    auth: dict[str, str]


def test_env(database_url: str, gecko_url: str, redis_url: str | None) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url,
        "COINGECKO_BASE_URL": gecko_url,
        "COINGECKO_CALLS_PER_MINUTE": "10000",
        "COINGECKO_TIMEOUT_SECONDS": "1",
        "JWT_SECRET": JWT_SECRET,
        "BCRYPT_ROUNDS": "4",
        "PRICE_POLLER_ENABLED": "false",
        "REDIS_KEY_PREFIX": f"cps-test-{uuid.uuid4().hex[:10]}:",
        # Generous: a loaded machine's PostgreSQL stalling past the 2 s default must not
        # look like an outage to a test that is not about one (those set their own).
        "DATABASE_TIMEOUT_SECONDS": "10",
    }
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


async def forget_keys(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


MakeApi = Callable[..., AbstractAsyncContextManager[Api]]


@pytest.fixture
async def gecko() -> AsyncIterator[FakeCoinGecko]:
    async with FakeCoinGecko() as fake:
        yield fake


@pytest.fixture
def make_api(database_url: str, gecko: FakeCoinGecko) -> MakeApi:
    """``async with make_api(HISTORY_LIMIT="5") as api:`` serves an app built from the
    test environment plus these overrides (``REDIS_URL=""`` for the in-process cache), on
    an emptied database; ``restart=True`` keeps what an app before it stored (a server
    restarted with other settings), its user included."""

    @asynccontextmanager
    async def make(*, restart: bool = False, **overrides: str) -> AsyncIterator[Api]:
        env: Mapping[str, str] = {
            **test_env(database_url, gecko.base_url, machine_redis_url()),
            **overrides,
        }
        if not restart:
            await truncate_tables(database_url)
        app = create_app(settings=Settings.from_env(env))
        try:
            async with serve(app) as client:
                user = {"username": "tester", "password": "test password"}
                r = await client.post("/auth/register", json=user)
                if restart and r.status_code == 409:
                    r = await client.post("/auth/login", json=user)
                assert r.status_code in (200, 201), r.text
                yield Api(app, client, gecko, {"Authorization": f"Bearer {r.json()['token']}"})
        finally:
            if env.get("REDIS_URL"):
                await forget_keys(env["REDIS_URL"], env["REDIS_KEY_PREFIX"])

    return make


@pytest.fixture
async def api(make_api: MakeApi) -> AsyncIterator[Api]:
    async with make_api() as served:
        yield served
