"""Adding a crypto whose ticker several coins share: the page shows them, the person picks."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import Site, log_in

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


def row(page: Page, symbol: str):
    return page.locator(f'#cryptos tbody tr[data-symbol="{symbol}"]')


async def add(page: Page, ticker: str) -> None:
    await page.fill("#ticker", ticker)
    await page.get_by_role("button", name="Add", exact=True).click()


async def test_the_person_picks_one_of_the_coins_of_a_shared_ticker(
    page: Page, site: Site, width: str
):
    username, auth = await site.register()
    await site.untrack(auth, "UNI", "USDT")
    await page.goto("/")
    await log_in(page, username)

    await add(page, "uni")
    picker = page.locator("#coin-picker")
    await expect(picker).to_be_visible()
    await expect(picker.locator("legend")).to_have_text(
        "4 coins have the ticker UNI: choose one, then Add."
    )
    radios = picker.get_by_role("radio")
    values = [await radio.get_attribute("value") for radio in await radios.all()]
    assert values == ["uniswap", "uniswap-wormhole", "uni-ai", "unicorn-token"]  # rank, then none
    await expect(radios.first).to_be_checked()  # the best-ranked, as without a choice
    await expect(picker.locator("label").nth(1)).to_contain_text("rank #3410")
    await expect(picker.locator("label").nth(3)).to_contain_text("unranked")
    await expect(row(page, "UNI")).to_have_count(0)  # nothing added before the choice

    await picker.get_by_role("radio", name="Unicorn Token").check()
    await page.get_by_role("button", name="Add", exact=True).click()
    await expect(row(page, "UNI").locator(".name")).to_have_text("Unicorn Token")
    await expect(page.locator("#add-message")).to_contain_text("Now tracking UNI (Unicorn Token)")
    await expect(picker).to_be_hidden()
    assert (await site.get(auth, "/crypto/UNI"))["name"] == "Unicorn Token"

    # a ticker of one coin is added at once; another ticker typed drops the choices
    await add(page, "grt")
    await expect(picker).to_be_visible()
    await page.fill("#ticker", "usdt")
    await expect(picker).to_be_hidden()
    await page.get_by_role("button", name="Add", exact=True).click()
    await expect(row(page, "USDT").locator(".name")).to_have_text("Tether")
    await expect(picker).to_be_hidden()
