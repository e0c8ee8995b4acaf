"""The page says when prices are stale and why: the server polls every second, and the
CoinGecko stand-in answers 429 for a while."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import TIME_ZONE, Site, log_in, screenshot
from tests.fakes.coingecko_server import Failure

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SERVER_ENV = {"PRICE_POLLER_ENABLED": "true", "PRICE_POLL_INTERVAL_SECONDS": "1"}


def as_of(iso: str) -> str:
    """The time of day the page names (en-US, in the page's time zone): 01:05 PM."""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ZoneInfo(TIME_ZONE))
    return moment.strftime("%I:%M %p")


async def test_a_rate_limited_upstream_shows_a_notice_with_the_prices_time_until_it_recovers(
    page: Page, site: Site, width: str
):
    username, auth = await site.register()
    await site.track(auth, "BTC")
    notice = page.locator("#upstream-notice")
    await page.goto("/")
    await log_in(page, username)
    await expect(page.locator("#live")).to_have_text("Live")
    await expect(notice).to_be_hidden()
    try:
        site.gecko.fail(Failure.rate_limited(1), path="/simple/price")
        await expect(notice).to_contain_text("CoinGecko is rate-limiting; prices as of ")
        # No price moves while every call gets 429: the oldest one the API lists is
        # the one the notice names.
        listed = (await site.get(auth, "/crypto"))["cryptos"]
        oldest = min(listed, key=lambda c: c["last_updated"])["last_updated"]
        text = await notice.text_content()
        assert re.fullmatch(
            r"CoinGecko is rate-limiting; prices as of (\w+ \d+, )?" + re.escape(as_of(oldest)),
            text or "",
        ), (text, oldest)
        assert await notice.get_attribute("role") == "status"  # read out when it changes
        await screenshot(page, "stale", width)
    finally:
        site.gecko.clear_failures()
    await expect(notice).to_be_hidden()
