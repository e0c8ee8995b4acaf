"""The currency picker, on a server quoting usd, eur and btc: the page asks every read
in the currency chosen, shows fiat prices as money (€0.1478) and a crypto quote as a
number with its code (0.00000238 BTC), and remembers the choice in the browser."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import Page, Request, expect

from tests.browser.conftest import SEEDED, Site, log_in

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SERVER_ENV = {"QUOTE_CURRENCIES": "usd,eur,btc"}
COIN, SYMBOL = "dogecoin", "DOGE"
# Three CoinGecko updates of the coin, (usd, eur, btc) each; each run (desktop, phone)
# its own, since a refresh stores only a newer price.
UPDATES = {
    "desktop": [
        (0.1603, 0.1478, 0.00000238),
        (0.1611, 0.1485, 0.00000239),
        (0.162, 0.149, 0.00000241),
    ],
    "phone": [
        (0.1703, 0.1578, 0.00000248),
        (0.1711, 0.1585, 0.00000249),
        (0.172, 0.159, 0.00000251),
    ],
}
# Reads that carry prices, which the page must ask in its currency.
PRICED = re.compile(r"^/(crypto(/[^/]+(/(history|stats|refresh))?)?|coins)$")


def row(page: Page, symbol: str):
    return page.locator(f'#cryptos tbody tr[data-symbol="{symbol}"]')


async def update(site: Site, auth: dict[str, str], prices: tuple[float, float, float]) -> None:
    """CoinGecko's prices of the coin change, and someone else refreshes it: the server
    stores them."""
    for currency, price in zip(("usd", "eur", "btc"), prices, strict=True):
        site.gecko.set_price(COIN, price, currency=currency)
    async with site.client() as client:
        r = await client.put(f"/crypto/{SYMBOL}/refresh", headers=auth)
    assert r.status_code == 200, r.text


def record_reads(page: Page) -> list[tuple[str, str | None]]:
    """The path and the `currency` asked of every priced read the page makes from now on."""
    reads: list[tuple[str, str | None]] = []

    def seen(request: Request) -> None:
        url = urlsplit(request.url)
        if PRICED.match(url.path) and request.method != "DELETE":
            reads.append((url.path, parse_qs(url.query).get("currency", [None])[0]))

    page.on("request", seen)
    return reads


async def test_eur_and_btc_prices_in_the_list_history_and_stats_and_the_choice_is_kept(
    page: Page, site: Site, width: str
):
    username, auth = await site.register()
    first, (usd, eur, btc), last = UPDATES[width]
    await site.track(auth, SYMBOL)
    await update(site, auth, first)
    await update(site, auth, (usd, eur, btc))

    await page.goto("/")
    await log_in(page, username)
    picker = page.get_by_label("Currency")
    await expect(picker).to_be_visible()
    options = await picker.locator("option").all()
    assert [await o.get_attribute("value") for o in options] == ["usd", "eur", "btc"]
    assert [await o.text_content() for o in options] == ["USD", "EUR", "BTC"]
    await expect(picker).to_have_value("usd")  # the server's default
    price = row(page, SYMBOL).locator(".price")
    await expect(price).to_have_text(f"${usd}")

    reads = record_reads(page)
    await picker.select_option("eur")
    await expect(price).to_have_text(f"€{eur}")
    await expect(price).to_have_attribute("data-value", str(eur))
    await expect(page.locator("#cryptos thead th.num")).to_have_text("Price (EUR)")
    # Stored before eur was quoted: no price in it yet, and the page says so.
    seeded = row(page, SEEDED[0]).locator(".price")
    await expect(seeded).to_have_text("—")
    await expect(seeded).to_have_attribute("title", re.compile("^No price in EUR yet"))

    # The coins of a shared ticker, to choose from, in eur too.
    await page.fill("#ticker", "uni")
    await page.get_by_role("button", name="Add", exact=True).click()
    coins = (await site.get(auth, "/coins?symbol=UNI&currency=eur"))["coins"]
    first = page.locator("#coin-choices label").first
    await expect(first).to_contain_text(f"€{coins[0]['current_price']:,.2f}")
    await page.fill("#ticker", "")

    await row(page, SYMBOL).get_by_role("link", name=f"Price history of {SYMBOL}").click()
    history = (await site.get(auth, f"/crypto/{SYMBOL}/history?currency=eur"))["history"]
    cells = page.locator("#history-table tbody tr .num")
    await expect(cells).to_have_count(len(history))
    for i, point in enumerate(reversed(history)):  # newest first
        assert await cells.nth(i).get_attribute("data-value") == str(point["price"])
        assert (await cells.nth(i).inner_text()).startswith("€")
    await expect(page.locator("#history-table thead th.num")).to_have_text("Price (EUR)")
    titles = await page.locator("#chart svg text.title").all_text_contents()
    assert titles[1] == "Price (EUR)", titles
    await expect(page.locator("#detail-price")).to_contain_text(f"Now €{eur}")

    await page.get_by_role("link", name="Statistics").click()
    stats = await site.get(auth, f"/crypto/{SYMBOL}/stats?currency=eur")
    expected = {"current_price": stats["current_price"], **stats["stats"]}
    for key, number in expected.items():
        dd = page.locator(f'#stats dd[data-key="{key}"]')
        await expect(dd).to_have_attribute("data-value", str(number))
        if key in ("current_price", "min_price", "max_price", "avg_price"):
            await expect(dd).to_have_text(re.compile("^€"))
    await expect(page.locator('#stats dd[data-key="price_change_percent"]')).to_have_text(
        re.compile(r" %$")
    )

    # Every read since the choice asked in eur (the stream, reopened, too).
    assert reads and all(currency == "eur" for _, currency in reads), reads
    assert ("/crypto", "eur") in reads

    await page.reload()
    await expect(picker).to_have_value("eur")  # remembered by the browser
    await expect(page.locator('#stats dd[data-key="current_price"]')).to_have_text(f"€{eur}")

    # A crypto quote: a number with its code; the stream, reopened in btc, brings prices in it.
    await page.get_by_role("link", name="All tracked cryptos").click()
    await picker.select_option("btc")
    await expect(price).to_have_text(f"{btc:.8f} BTC")
    await expect(page.locator("#live")).to_have_text("Live")
    await update(site, auth, last)
    await expect(price).to_have_text(f"{last[2]:.8f} BTC")


async def test_a_remembered_currency_no_longer_quoted_falls_back_to_the_default(
    page: Page, site: Site, width: str
):
    username, _auth = await site.register()
    await page.add_init_script(script="localStorage.setItem('cps.currency', 'gbp');")
    await page.goto("/")
    await log_in(page, username)
    await expect(page.get_by_label("Currency")).to_have_value("usd")
    await expect(page.locator("#cryptos thead th.num")).to_have_text("Price (USD)")
