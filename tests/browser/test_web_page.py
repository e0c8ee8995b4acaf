"""The web page as a person uses it, in Chromium, at a desktop and a phone width."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page, Route, expect

from tests.browser.conftest import (
    PASSWORD,
    SEEDED,
    TIME_ZONE,
    VIEWPORTS,
    Site,
    api_url,
    log_in,
    screenshot,
)
from tests.support.clock import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


def row(page: Page, symbol: str):
    return page.locator(f'#cryptos tbody tr[data-symbol="{symbol}"]')


async def value(locator) -> float:
    return float(await locator.get_attribute("data-value"))


async def test_register_track_refresh_delete_and_log_out(page: Page, site: Site, width: str):
    _, admin = await site.register()
    await site.untrack(admin, "BTC", "ETH")

    await page.goto("/")
    await expect(page).to_have_url(re.compile("#/login$"))
    await expect(page.locator("#auth-view")).to_be_visible()
    await screenshot(page, "login", width)

    username = f"alice-{width}"  # the module's database starts empty
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.get_by_role("button", name="Register").click()
    await expect(page).to_have_url(re.compile("#/cryptos$"))
    await expect(page.locator("#whoami")).to_have_text(f"Signed in as {username}")
    await expect(page.locator("#shared-note")).to_contain_text("shared by everyone signed in")
    await expect(page.locator("#currency-picker")).to_be_hidden()  # only usd: nothing to pick

    for ticker, symbol in (("btc", "BTC"), ("ETH", "ETH")):
        await page.fill("#ticker", ticker)
        await page.get_by_role("button", name="Add", exact=True).click()
        # several coins have each ticker: the best-ranked one is chosen already
        await expect(page.locator("#coin-picker")).to_be_visible()
        await page.get_by_role("button", name="Add", exact=True).click()
        await expect(row(page, symbol)).to_be_visible()
        await expect(page.locator("#add-message")).to_contain_text(f"Now tracking {symbol}")
    await screenshot(page, "cryptos", width)

    await page.fill("#ticker", "NOSUCHCOIN42")
    await page.get_by_role("button", name="Add", exact=True).click()
    message = page.locator("#add-message.error")
    await expect(message).not_to_be_empty()
    await expect(message).to_be_in_viewport()

    site.gecko.set_price("bitcoin", 70_123.45)
    await row(page, "BTC").get_by_role("button", name="Refresh the price of BTC").click()
    toast = page.locator("#toast.shown")
    await expect(toast).to_contain_text("BTC is now $70,123.45")
    await expect(toast).to_be_in_viewport()
    await expect(row(page, "BTC").locator(".price")).to_have_attribute("data-value", "70123.45")

    questions: list[str] = []

    async def accept(dialog) -> None:
        questions.append(dialog.message)
        await dialog.accept()

    page.once("dialog", accept)
    await row(page, "ETH").get_by_role("button", name="Stop tracking ETH for everyone").click()
    await expect(row(page, "ETH")).to_have_count(0)
    assert "everyone" in questions[0], questions
    await expect(toast).to_contain_text("ETH is no longer tracked")
    await expect(toast).to_be_in_viewport()
    assert "ETH" not in {c["symbol"] for c in (await site.get(admin, "/crypto"))["cryptos"]}

    await page.get_by_role("button", name="Log out").click()
    await expect(page).to_have_url(re.compile("#/login$"))
    await expect(page.locator("#auth-message")).to_contain_text("logged out")
    await expect(page.locator("#session")).to_be_hidden()
    await log_in(page, username)
    await expect(row(page, "BTC")).to_be_visible()


async def test_history_and_stats_show_what_the_api_stores(page: Page, site: Site, width: str):
    username, auth = await site.register(f"bob-{width}")  # named in the screenshots
    symbol = SEEDED[0]  # a day of prices, every 30 min

    await page.goto("/")
    await log_in(page, username)
    await row(page, symbol).get_by_role("link", name=f"Price history of {symbol}").click()
    await expect(page).to_have_url(re.compile(f"#/cryptos/{symbol}/history$"))

    history = (await site.get(auth, f"/crypto/{symbol}/history"))["history"]
    rows = page.locator("#history-table tbody tr")
    await expect(rows).to_have_count(len(history))
    zone = ZoneInfo(TIME_ZONE)
    for i, point in enumerate(reversed(history)):  # newest first
        cells = rows.nth(i)
        assert await cells.locator("time").get_attribute("datetime") == point["timestamp"]
        assert await value(cells.locator(".num")) == point["price"]
        local = datetime.fromisoformat(point["timestamp"]).astimezone(zone)
        assert local.strftime("%I:%M:%S").lstrip("0") in await cells.locator("time").inner_text()
    offset = datetime.now(zone).strftime("%z")
    await expect(page.locator("#history-caption")).to_contain_text(
        f"Times in {TIME_ZONE} (UTC{offset[:3]}:{offset[3:]})"
    )

    # The chart fills its card, labels both axes, and keeps its labels readable.
    chart = page.locator("#chart")
    svg = chart.locator("svg")
    await expect(svg).to_be_visible()
    box, drawn = await chart.bounding_box(), await svg.bounding_box()
    panel = await page.locator("#history-panel").bounding_box()
    assert abs(drawn["width"] - box["width"]) <= 1
    assert box["width"] >= panel["width"] - 2 * 16 - 4  # the card's padding and border
    titles = await svg.locator("text.title").all_text_contents()
    assert titles == [f"Time ({TIME_ZONE})", "Price (USD)"]
    sizes = await svg.locator("text").evaluate_all(  # as drawn: the font size, scaled
        "texts => texts.map(t => { const m = t.getScreenCTM(); "
        "return parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b); })"
    )
    assert len(sizes) > 4 and min(sizes) >= 11, sizes
    ticks = await svg.locator("text.axis.time").all_text_contents()
    assert len(ticks) >= 2, ticks
    hours = r"\d\d:\d\d [AP]M|[A-Z][a-z]{2} \d{1,2}"  # a day: hours, and midnight's date
    assert all(re.fullmatch(hours, t) for t in ticks), ticks

    # Every point can be read, from the keyboard and by pointing.
    readout = page.locator("#chart-readout")
    await chart.focus()
    await page.keyboard.press("End")
    n = len(history)
    await expect(readout).to_contain_text(f"${history[-1]['price']:,.2f} at")
    await expect(readout).to_contain_text(f"({n} of {n})")
    await page.keyboard.press("ArrowLeft")
    await expect(readout).to_contain_text(f"({n - 1} of {n})")
    if width == "phone":
        await chart.tap(position={"x": 5, "y": 50})
    else:
        await chart.hover(position={"x": 5, "y": 50})
    await expect(readout).to_contain_text(f"(1 of {n})")
    await screenshot(page, "history", width)

    await page.get_by_role("link", name="Statistics").click()
    await expect(page).to_have_url(re.compile(f"#/cryptos/{symbol}/stats$"))
    stats = await site.get(auth, f"/crypto/{symbol}/stats")
    expected = {"current_price": stats["current_price"], **stats["stats"]}
    await expect(page.locator("#stats dd")).to_have_count(len(expected))
    for key, number in expected.items():
        assert await value(page.locator(f'#stats dd[data-key="{key}"]')) == number, key
    await screenshot(page, "stats", width)

    # Narrower (a window resized, a phone turned): the chart is drawn again to fit.
    await page.go_back()
    await expect(svg).to_be_visible()
    narrower = {"desktop": 800, "phone": 320}[width]  # the page is 60rem wide at most
    await page.set_viewport_size({"width": narrower, "height": VIEWPORTS[width]["height"]})

    async def fits() -> bool:
        drawn, room = await chart.evaluate(
            "box => [Number(box.querySelector('svg').getAttribute('width')), box.clientWidth]"
        )
        return drawn == room < box["width"]

    await wait_until(fits, "the chart to be drawn again at its card's new width")


@pytest.mark.parametrize("ends_at", ["23:55", "11:55", "00:05", "17:45"])
async def test_a_day_of_history_draws_two_time_ticks_at_any_time_of_day(
    page: Page, site: Site, width: str, ends_at: str
):
    """A day of prices every 30 min shows at least two time labels, whenever the day
    ends: 12 h steps draw one label for a day that misses midnight and noon (which
    is what the clock of a test run ending near midnight found), so the chart takes
    the step whose labels it really draws."""
    username, _auth = await site.register()
    symbol = SEEDED[0]
    zone = ZoneInfo(TIME_ZONE)
    hour, minute = map(int, ends_at.split(":"))
    last = datetime.now(zone).replace(hour=hour, minute=minute, second=0, microsecond=0)
    history = [
        {
            "price": 170 + i % 7,
            "timestamp": (last - timedelta(minutes=30 * (47 - i)))
            .astimezone(UTC)
            .isoformat()
            .replace("+00:00", "Z"),
        }
        for i in range(48)
    ]

    async def day(route: Route) -> None:
        await route.fulfill(status=200, json={"symbol": symbol, "history": history})

    await page.route(api_url(f"/crypto/{symbol}/history"), day)
    await page.goto("/")
    await log_in(page, username)
    await page.goto(f"/#/cryptos/{symbol}/history")
    ticks = page.locator("#chart svg text.axis.time")
    await expect(ticks.first).to_be_visible()
    labels = await ticks.all_text_contents()
    assert len(labels) >= 2, labels


async def test_shared_links_reload_back_and_forward(page: Page, site: Site, width: str):
    username, auth = await site.register()
    await site.track(auth, "BTC")

    await page.goto("/#/cryptos/BTC/stats")  # logged out: the log-in form first
    await log_in(page, username, lands_on="#/cryptos/BTC/stats")
    await expect(page.locator("#stats-panel")).to_be_visible()
    await expect(page.locator('#stats dd[data-key="records_count"]')).to_be_visible()

    await page.reload()
    await expect(page).to_have_url(re.compile("#/cryptos/BTC/stats$"))
    await expect(page.locator('#stats dd[data-key="records_count"]')).to_be_visible()

    await page.get_by_role("link", name="History", exact=True).click()
    await expect(page).to_have_url(re.compile("#/cryptos/BTC/history$"))
    await expect(page.locator("#history-table tbody tr").first).to_be_visible()
    await page.go_back()
    await expect(page).to_have_url(re.compile("#/cryptos/BTC/stats$"))
    await expect(page.locator("#stats-panel")).to_be_visible()
    await expect(page.locator("#history-panel")).to_be_hidden()
    await page.go_forward()
    await expect(page).to_have_url(re.compile("#/cryptos/BTC/history$"))
    await expect(page.locator("#history-panel")).to_be_visible()
    await page.go_back()
    await page.go_back()
    await expect(page).to_have_url(re.compile("#/cryptos$"))
    await expect(row(page, "BTC")).to_be_visible()

    await page.goto("/#/cryptos/NOPE/history")
    await expect(page.locator("#not-tracked")).to_be_visible()
    await expect(page.locator("#not-tracked")).to_contain_text("NOPE is not tracked")
    await expect(page.locator("#history-panel")).to_be_hidden()


async def test_a_price_change_arrives_without_a_reload(page: Page, site: Site, width: str):
    username, auth = await site.register()
    await site.track(auth, "BTC")
    await page.goto("/")
    await log_in(page, username)
    await expect(page.locator("#live")).to_have_text("Live")

    await site.new_price(auth, "bitcoin", "BTC", 71_001.25)
    await expect(row(page, "BTC").locator(".price")).to_have_attribute("data-value", "71001.25")

    await row(page, "BTC").get_by_role("link", name="Price history of BTC").click()
    await expect(page.locator("#history-table tbody tr").first).to_be_visible()
    await site.new_price(auth, "bitcoin", "BTC", 71_002.5)
    newest = page.locator("#history-table tbody tr").first.locator(".num")
    await expect(newest).to_have_attribute("data-value", "71002.5")
    history = (await site.get(auth, "/crypto/BTC/history"))["history"]
    await expect(page.locator("#history-table tbody tr")).to_have_count(len(history))

    await page.get_by_role("link", name="Statistics").click()
    current = page.locator('#stats dd[data-key="current_price"]')
    await expect(current).to_have_attribute("data-value", "71002.5")
    await site.new_price(auth, "bitcoin", "BTC", 71_003.75)
    await expect(current).to_have_attribute("data-value", "71003.75")


async def test_a_price_streamed_while_the_list_is_fetched_is_not_undone(
    page: Page, site: Site, width: str
):
    """The list's answer may leave the server before a price the stream then sends:
    the page applies that price to the answer again, instead of showing the older one
    (seen in a run: the page kept a price that had since changed)."""
    username, auth = await site.register()
    await site.track(auth, "BTC")
    await site.new_price(auth, "bitcoin", "BTC", 70_500.5)
    held = asyncio.Event()
    release = asyncio.Event()
    hold = False

    async def late_list(route: Route) -> None:
        nonlocal hold
        if hold and "text/event-stream" not in (route.request.headers.get("accept") or ""):
            hold = False
            answer = await route.fetch()  # the list as it is now: 70,500.5
            held.set()
            await release.wait()
            await route.fulfill(response=answer)
            return
        await route.continue_()

    await page.route(api_url("/crypto"), late_list)
    await page.goto("/#/cryptos/BTC/history")
    await log_in(page, username, lands_on="#/cryptos/BTC/history")
    await expect(page.locator("#live")).to_have_text("Live")
    hold = True
    await page.locator("#back-to-list").click()  # the list view asks for the list
    await held.wait()
    await site.new_price(auth, "bitcoin", "BTC", 70_600.75)
    price = row(page, "BTC").locator(".price")
    await expect(price).to_have_attribute("data-value", "70600.75")  # from the stream

    status = page.locator("#list-status")
    await status.evaluate("element => { element.textContent = ''; }")
    release.set()
    await expect(status).not_to_have_text("")  # the held answer has been applied
    await expect(price).to_have_attribute("data-value", "70600.75")


async def test_an_expired_session_goes_back_to_log_in(page: Page, site: Site, width: str):
    username, auth = await site.register()
    await site.track(auth, "BTC")
    await page.goto("/")
    await log_in(page, username)
    await expect(row(page, "BTC")).to_be_visible()

    await page.evaluate("sessionStorage.setItem('cps.token', 'not.a.token')")
    await row(page, "BTC").get_by_role("button", name="Refresh the price of BTC").click()
    await expect(page).to_have_url(re.compile("#/login$"))
    await expect(page.locator("#auth-message")).to_have_text(
        "Your session has expired, please log in again."
    )
    await expect(page.locator("#auth-message")).to_be_in_viewport()
    await log_in(page, username)  # back where the person was
    await expect(row(page, "BTC")).to_be_visible()


def sse(*events: tuple[str, object]) -> str:
    """A text/event-stream body: each event, a heartbeat comment between them."""
    return "".join(
        f"event: {name}\ndata: {json.dumps(data)}\n\n: heartbeat\n\n" for name, data in events
    )


async def test_the_page_follows_the_stream_it_is_sent(
    page: Page, site: Site, width: str, allowed_errors
):
    """The client side of the stream's contract, with the stream played by the browser
    itself (page.route): events change the list without a reload; a stream that ends
    turns the badge to "Reconnecting…", and a 503 (too many streams) keeps it there."""
    allowed_errors.append(re.compile(r"^Failed to load resource: .* status of 503"))
    username, auth = await site.register()
    await site.track(auth, "BTC", "ETH")
    btc = await site.get(auth, "/crypto/BTC")
    doge = {**btc, "symbol": "DOGE", "name": "Dogecoin", "current_price": 0.1603}
    released = asyncio.Event()
    streams: list[str] = []

    async def play(route: Route) -> None:
        if "text/event-stream" not in (route.request.headers.get("accept") or ""):
            await route.continue_()
            return
        streams.append(route.request.headers.get("authorization", ""))
        if len(streams) > 1:
            await route.fulfill(status=503, json={"error": "too many live streams"})
            return
        await released.wait()  # until the page shows the list it asked for
        now = btc["last_updated"]
        body = sse(
            ("snapshot", {"cryptos": [btc, await site.get(auth, "/crypto/ETH")]}),
            ("price", {"symbol": "BTC", "current_price": 12345.5, "last_updated": now}),
            ("added", doge),
            ("removed", {"symbol": "ETH"}),
        )
        await route.fulfill(status=200, content_type="text/event-stream", body=body)

    await page.route(api_url("/crypto"), play)
    await page.goto("/")
    await log_in(page, username)
    await expect(row(page, "ETH")).to_be_visible()
    released.set()

    await expect(row(page, "BTC").locator(".price")).to_have_attribute("data-value", "12345.5")
    await expect(row(page, "DOGE")).to_contain_text("Dogecoin")
    await expect(row(page, "ETH")).to_have_count(0)
    await expect(page.locator("#live")).to_have_text("Reconnecting…")
    assert streams[0].startswith("Bearer ")
    await wait_until(lambda: len(streams) > 1, "the page to open the stream again")


async def test_a_stream_refused_with_401_goes_back_to_log_in(page: Page, site: Site, width: str):
    username, _ = await site.register()

    async def refuse(route: Route) -> None:
        if "text/event-stream" in (route.request.headers.get("accept") or ""):
            await route.fulfill(status=401, json={"error": "token expired"})
        else:
            await route.continue_()

    await page.route(api_url("/crypto"), refuse)
    await page.goto("/#/cryptos")
    await log_in(page, username, lands_on="#/login")
    await expect(page.locator("#auth-message")).to_have_text(
        "Your session has expired, please log in again."
    )


async def test_while_the_stream_is_refused_the_page_asks_every_30_s(
    page: Page, site: Site, width: str, allowed_errors
):
    """503 (too many streams): the page falls back to asking GET /crypto every 30 s
    (on the page's own clock, moved on by the test) and keeps trying the stream."""
    allowed_errors.append(re.compile(r"^Failed to load resource: .* status of 503"))
    username, auth = await site.register()
    await site.track(auth, "BTC")
    refused: list[str] = []

    async def too_many(route: Route) -> None:
        if "text/event-stream" in (route.request.headers.get("accept") or ""):
            refused.append(route.request.url)
            await route.fulfill(status=503, json={"error": "too many live streams"})
        else:
            await route.continue_()

    await page.route(api_url("/crypto"), too_many)
    await page.clock.install()
    await page.goto("/")
    await log_in(page, username)
    await expect(page.locator("#live")).to_have_text("Reconnecting…")
    await expect(row(page, "BTC")).to_be_visible()

    # Nothing but the 30 s timer reloads the list: the stream is refused, nobody navigates.
    await site.new_price(auth, "bitcoin", "BTC", 72_000.5)
    await page.clock.run_for(31_000)
    await expect(row(page, "BTC").locator(".price")).to_have_attribute("data-value", "72000.5")
    assert len(refused) > 1  # and it tried the stream again meanwhile
