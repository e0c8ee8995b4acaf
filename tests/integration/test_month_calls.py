"""The monthly budget of CoinGecko calls in PostgreSQL, on an injected clock: the
count is the deployment's (every instance shares it), restarts with each calendar
month (UTC), and never passes the budget, however many callers race for it."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from application.poll_schedule import PollPace
from bootstrap import bootstrap
from domain.errors import CallBudgetSpent
from domain.model import Ticker
from infrastructure.coingecko.call_budget import CallBudget
from infrastructure.coingecko.client import CoinGeckoClient
from infrastructure.db.month_calls import PostgresMonthlyCalls
from infrastructure.db.repositories import TortoiseCryptoRepository
from infrastructure.metrics import exposition
from infrastructure.settings import Settings
from tests.fakes.coingecko_server import FakeCoinGecko
from tests.support.clock import SetClock
from tests.support.cryptos import crypto

pytestmark = pytest.mark.integration


LATE_NOVEMBER = datetime(2024, 11, 30, 23, 59, 50, tzinfo=UTC)


async def test_the_count_is_shared_and_restarts_with_the_calendar_month(db):
    clock = SetClock(LATE_NOVEMBER)
    one, other = PostgresMonthlyCalls(10, clock), PostgresMonthlyCalls(10, clock)
    for _ in range(3):
        await one.take(polling=True)
    await other.take(polling=False)
    assert (await one.used(), await other.used()) == (4, 4)  # one count for both
    clock.now += timedelta(seconds=10)  # 1 December, 00:00:00 UTC
    assert await one.used() == 0
    await other.take(polling=True)
    assert await one.used() == 1
    clock.now = LATE_NOVEMBER  # November's count is still November's
    assert await one.used() == 4


async def test_polls_leave_the_reserve_and_a_spent_budget_names_when_it_renews(db):
    clock = SetClock(LATE_NOVEMBER)
    month = PostgresMonthlyCalls(10, clock)
    for _ in range(9):  # the poll share: all but 10% (one call)
        await month.take(polling=True)
    with pytest.raises(CallBudgetSpent, match="kept for polls"):
        await month.take(polling=True)
    await month.take(polling=False)  # the reserve is an add's or a refresh's
    with pytest.raises(CallBudgetSpent) as refused:
        await month.take(polling=False)
    assert "budget of 10 CoinGecko calls (COINGECKO_CALLS_PER_MONTH) is spent" in str(refused.value)
    assert "renews at 2024-12-01T00:00:00Z" in str(refused.value)
    assert refused.value.retry_after == 10.0
    assert await month.used() == 10  # a refused call counts nothing


async def test_racing_callers_never_pass_the_budget(db):
    month = PostgresMonthlyCalls(25, SetClock(LATE_NOVEMBER))

    async def take() -> bool:
        try:
            await month.take(polling=False)
        except CallBudgetSpent:
            return False
        return True

    taken = await asyncio.gather(*(take() for _ in range(40)))
    assert sum(taken) == 25 and await month.used() == 25


async def test_the_interval_in_effect_recomputes_across_the_month_boundary(db):
    cryptos = TortoiseCryptoRepository()
    await cryptos.add(crypto("BTC"))
    clock = SetClock(datetime(2024, 11, 16, tzinfo=UTC))  # 15 days left
    month = PostgresMonthlyCalls(100, clock)
    pace = PollPace(month, cryptos, clock, floor=30.0, batch_size=lambda: 100)
    for _ in range(60):
        await month.take(polling=False)
    # 90 calls for polls, 60 spent: 30 polls over 15 days, one every 12 hours
    assert await pace() == pytest.approx(12 * 3600)
    for _ in range(30):
        await month.take(polling=True)
    # the poll share is spent: wait for December
    assert await pace() == pytest.approx(15 * 86_400)
    clock.now = datetime(2024, 12, 1, tzinfo=UTC)
    # a new month, a new count: 90 polls over December's 31 days
    assert await pace() == pytest.approx(31 * 86_400 / 90)


async def test_the_client_counts_every_call_and_its_polls_leave_the_reserve(db):
    month = PostgresMonthlyCalls(10, SetClock(LATE_NOVEMBER))
    async with FakeCoinGecko() as fake:
        client = CoinGeckoClient(fake.base_url, limiter=CallBudget(10_000), month=month)
        try:
            for _ in range(8):
                await client.prices(["bitcoin"], wait=True)  # the poller's calls
            assert await client.find_coin(Ticker("ETH")) is not None  # an add's
            assert await month.used() == 9 == len(fake.requests)
            with pytest.raises(CallBudgetSpent, match="kept for polls"):
                await client.prices(["bitcoin"], wait=True)
            assert "bitcoin" in await client.prices(["bitcoin"])  # a refresh's: the reserve
            with pytest.raises(CallBudgetSpent):
                await client.prices(["bitcoin"])
            assert await month.used() == 10 == len(fake.requests)
        finally:
            await client.close()


async def test_the_wired_poller_paces_itself_by_the_monthly_budget(db):
    await TortoiseCryptoRepository().add(crypto("BTC"))
    clock = SetClock(datetime(2024, 11, 1, tzinfo=UTC))
    env = {
        "DATABASE_URL": db,
        "JWT_SECRET": "j" * 32,
        "COINGECKO_API_KEY": "CG-demo",  # the demo plan: 10,000 calls a month
        "PRICE_POLL_INTERVAL_SECONDS": "60",
    }
    wiring = bootstrap(Settings.from_env(env), clock=clock, setup_logging=lambda _: None)
    try:
        schedule = wiring.poll_schedule()
        # 9,000 polls of one call over November's 30 days
        assert await schedule.interval_in_effect() == pytest.approx(288.0)
        assert "cps_poll_interval_seconds 288.0" in exposition()[0].decode()
        assert "cps_coingecko_month_budget 10000.0" in exposition()[0].decode()
    finally:
        await wiring.close()
