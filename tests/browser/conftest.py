"""The web page in a real browser: Debian's Chromium (/usr/bin/chromium), driven by
Playwright, against a live server (a process of its own) on the real PostgreSQL and
Redis and the CoinGecko stand-in.

One server for each test module, one browser for the session, and a fresh browser
context (its own sessionStorage) for each test, at a desktop and at a phone width.
A test fails on any console error, uncaught exception or Content-Security-Policy
violation in the page. Without Chromium the tests fail; they never skip."""

from __future__ import annotations

import json
import math
import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from infrastructure.db.config import connect_kwargs
from tests.e2e.conftest import forget_keys
from tests.fakes.coingecko_server import FakeCoinGecko
from tests.support.database import truncate_tables
from tests.support.redis_server import machine_redis_url
from tests.support.server_process import ROOT, ServerProcess, running_server, server_env

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
# Every run writes its screenshots to build/screenshots (not committed); with
# UPDATE_SCREENSHOTS=1 (make screenshots) to docs/screenshots, which the README shows.
SCREENSHOTS = ROOT / (
    "docs/screenshots" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else "build/screenshots"
)
TIME_ZONE = "Europe/Berlin"
PASSWORD = "browser password"

# Chromium logs every 4xx answer to fetch() as a console error ("Failed to load
# resource"), also those the page expects and shows (an unknown ticker, a bad token).
EXPECTED_HTTP_ERROR = re.compile(
    r"^Failed to load resource: the server responded with a status of 4\d\d"
)

# Records every CSP violation into the page, to read after the test.
CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""

expect.set_options(timeout=15_000)

# A crypto with a day of history, stored before the server starts: the history view
# as it looks after a day of polling (hours on the time axis).
SEEDED = ("SOL", "solana", "Solana")
SEEDED_POINTS = 48  # every 30 min


async def seed_day_of_history(database_url: str) -> None:
    symbol, coin_id, name = SEEDED
    now = datetime.now(UTC).replace(microsecond=0)
    points = [
        (
            now - timedelta(minutes=30 * (SEEDED_POINTS - 1 - i)),
            round(172 + 6 * math.sin(i / 7) + 2.5 * math.sin(i / 2.3), 2),
        )
        for i in range(SEEDED_POINTS)
    ]
    conn = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        # Prices in usd only: in any other currency configured it has none yet.
        crypto_id = await conn.fetchval(
            "INSERT INTO cryptos (symbol, coin_id, name, current_prices, last_updated) "
            "VALUES ($1, $2, $3, $4::jsonb, $5) RETURNING id",
            symbol,
            coin_id,
            name,
            json.dumps({"usd": points[-1][1]}),
            points[-1][0],
        )
        await conn.executemany(
            "INSERT INTO price_history (crypto_id, prices, ts) VALUES ($1, $2::jsonb, $3)",
            [(crypto_id, json.dumps({"usd": price}), ts) for ts, price in points],
        )
    finally:
        await conn.close(timeout=10)


@dataclass
class Site:
    server: ServerProcess
    gecko: FakeCoinGecko

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def client(self) -> httpx.AsyncClient:
        return self.server.client()

    async def register(self, username: str | None = None) -> tuple[str, dict[str, str]]:
        """A new user (a random name unless given): its name and Authorization header."""
        username = username or f"user-{uuid.uuid4().hex[:12]}"
        return username, await self.server.register(username, PASSWORD)

    async def track(self, auth: dict[str, str], *symbols: str) -> None:
        """Make sure these are tracked (the list is shared: another test may have added them)."""
        async with self.client() as client:
            for symbol in symbols:
                r = await client.post("/crypto", json={"symbol": symbol}, headers=auth)
                assert r.status_code in (201, 409), r.text

    async def untrack(self, auth: dict[str, str], *symbols: str) -> None:
        async with self.client() as client:
            for symbol in symbols:
                r = await client.delete(f"/crypto/{symbol}", headers=auth)
                assert r.status_code in (200, 404), r.text

    async def new_price(
        self, auth: dict[str, str], coin_id: str, symbol: str, price: float
    ) -> None:
        """CoinGecko now says ``price``, and the server stores it (a refresh by another user)."""
        self.gecko.set_price(coin_id, price)
        async with self.client() as client:
            r = await client.put(f"/crypto/{symbol}/refresh", headers=auth)
        assert r.status_code == 200, r.text
        assert r.json()["crypto"]["current_price"] == price

    async def get(self, auth: dict[str, str], path: str) -> Any:
        async with self.client() as client:
            r = await client.get(path, headers=auth)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium; its absence fails the tests."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium); "
            "the browser tests never download a browser"
        )
    return CHROMIUM


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def site(
    request: pytest.FixtureRequest, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Site]:
    """The module's server; a module may set SERVER_ENV, settings of its own."""
    await truncate_tables(database_url)
    await seed_day_of_history(database_url)
    data_dir = tmp_path_factory.mktemp("browser-server")
    redis_url = machine_redis_url()
    prefix = f"cps-test-{uuid.uuid4().hex[:10]}:"
    async with FakeCoinGecko() as gecko:
        env = server_env(
            database_url,
            gecko.base_url,
            data_dir,
            REDIS_URL=redis_url,
            REDIS_KEY_PREFIX=prefix,
            **{"PRICE_POLLER_ENABLED": "false", **getattr(request.module, "SERVER_ENV", {})},
        )
        try:
            async with running_server(env, data_dir / "server.log") as server:
                await server.wait_ready()
                yield Site(server, gecko)
        finally:
            await forget_keys(redis_url, prefix)


@pytest.fixture(params=list(VIEWPORTS))
def width(request: pytest.FixtureRequest) -> str:
    """desktop (1280x800) or phone (390x844)."""
    return request.param


@pytest.fixture
def allowed_errors() -> list[re.Pattern[str]]:
    """Console errors the test expects (a test may add patterns): the API's 4xx answers."""
    return [EXPECTED_HTTP_ERROR]


@pytest_asyncio.fixture(loop_scope="session")
async def page(
    browser: Browser, site: Site, width: str, allowed_errors: list[re.Pattern[str]]
) -> AsyncIterator[Page]:
    phone = width == "phone"
    context = await browser.new_context(
        base_url=site.base_url,
        viewport=VIEWPORTS[width],
        locale="en-US",
        timezone_id=TIME_ZONE,
        is_mobile=phone,
        has_touch=phone,
    )
    await context.add_init_script(script=CSP_RECORDER)
    page = await context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    try:
        yield page
        if not page.is_closed():
            problems += [f"CSP: {v}" for v in await page.evaluate("window.__cspViolations || []")]
    finally:
        await context.close()
    unexpected = [p for p in problems if not any(a.match(p) for a in allowed_errors)]
    assert unexpected == [], unexpected


def api_url(path: str) -> re.Pattern[str]:
    """What page.route() matches for the API's ``path`` ("/crypto"), whatever its query:
    the page asks every read in its currency (``?currency=usd``), which a glob such as
    ``**/crypto`` would not match."""
    return re.compile(re.escape(path) + r"(\?|$)")


async def screenshot(page: Page, view: str, width: str) -> None:
    """<view>-<width>.png in SCREENSHOTS: what the viewport shows."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{view}-{width}.png", full_page=False)


async def log_in(page: Page, username: str, *, lands_on: str = "#/cryptos") -> None:
    """Through the log-in form (the page is on it, or is sent to it)."""
    await expect(page).to_have_url(re.compile("#/login$"))
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.get_by_role("button", name="Log in", exact=True).click()
    await expect(page).to_have_url(re.compile(re.escape(lands_on) + "$"))
