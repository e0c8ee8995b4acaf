"""A session that expires while the page is open, on a server whose tokens live a few
seconds: the live stream ends when the token expires, the page's next try is refused
(401), and the person is back at the log-in form with a message."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import Site, log_in

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

TOKEN_SECONDS = 6  # long enough to log in and see the stream, short enough to wait for
SERVER_ENV = {"JWT_EXPIRES_SECONDS": str(TOKEN_SECONDS)}


async def test_an_expired_token_brings_the_person_back_to_log_in(
    page: Page, site: Site, width: str
):
    username, auth = await site.register()
    await site.track(auth, "BTC")
    await page.goto("/#/cryptos/BTC/history")
    await log_in(page, username, lands_on="#/cryptos/BTC/history")
    await expect(page.locator("#live")).to_have_text("Live")

    # Nothing to do but wait: the page notices by itself.
    await expect(page).to_have_url(re.compile("#/login$"), timeout=(TOKEN_SECONDS + 20) * 1000)
    await expect(page.locator("#auth-message")).to_have_text(
        "Your session has expired, please log in again."
    )
    await expect(page.locator("#auth-message")).to_be_in_viewport()
    await log_in(page, username, lands_on="#/cryptos/BTC/history")  # back to that view
    await expect(page.locator("#history-table tbody tr").first).to_be_visible()
