"""One poll cycle with the real pieces: PostgreSQL repository, CoinGecko client, and
the CoinGecko stand-in over HTTP."""

from datetime import UTC, datetime

import pytest

from application.add_crypto import AddCrypto
from application.list_coins import FindCandidates
from application.poll_cycle import PollCycle
from application.refresh_crypto import RefreshCrypto
from application.resolve_ticker import ResolveTicker
from domain.errors import UpstreamRateLimited
from domain.model import Crypto, QuoteCurrencies, Ticker
from infrastructure.cache import MemoryTickerCache
from infrastructure.clock import utc_now
from infrastructure.coingecko.call_budget import CallBudget
from infrastructure.coingecko.client import CoinGeckoClient
from infrastructure.db.repositories import TortoiseCryptoRepository
from tests.fakes.coingecko_server import ABSENT, UPDATED_AT, Failure, FakeCoin, FakeCoinGecko

pytestmark = pytest.mark.integration

COUNT = 250


@pytest.fixture
async def world(db):
    coins = [FakeCoin(f"coin-{i}", f"c{i}", f"Coin {i}", 100.0 + i, 1e6 - i) for i in range(COUNT)]
    async with FakeCoinGecko(coins) as fake:
        client = CoinGeckoClient(fake.base_url, limiter=CallBudget(10_000), timeout_seconds=2)
        repo = TortoiseCryptoRepository()
        start = datetime(2024, 1, 1, tzinfo=UTC)
        for i in range(COUNT):
            await repo.add(Crypto(Ticker(f"C{i}"), f"coin-{i}", f"Coin {i}", {"usd": 1.0}, start))
        try:
            yield fake, repo, PollCycle(repo, client, utc_now, history_limit=100)
        finally:
            await client.close()


async def test_a_cycle_refreshes_every_crypto_in_batches(world):
    fake, repo, poll = world
    result = await poll()
    assert (result.tracked, result.updated) == (COUNT, COUNT)
    calls = fake.calls("/simple/price")
    assert len(calls) == 3  # 100 + 100 + 50 ids
    assert sorted(len(c.query["ids"].split(",")) for c in calls) == [50, 100, 100]
    cryptos = await repo.list()
    assert {c.symbol.value: c.price_in("usd") for c in cryptos} == {
        f"C{i}": 100.0 + i for i in range(COUNT)
    }
    history = await repo.history(Ticker("C7"), 100, "usd")
    assert [p.price for p in history] == [1.0, 107.0]


async def test_a_bad_price_skips_only_that_crypto(world):
    fake, repo, poll = world
    fake.set_price("coin-1", None)
    fake.set_price("coin-2", ABSENT)
    fake.set_price("coin-3", -5)
    fake.set_price("coin-4", 1.7e308)
    fake.set_price("coin-5", 5e-324)
    result = await poll()
    assert (result.updated, result.skipped) == (COUNT - 5, 5)
    for i in (1, 2, 3, 4, 5):
        assert (await repo.get(Ticker(f"C{i}"))).price_in("usd") == 1.0
        assert len(await repo.history(Ticker(f"C{i}"), 100, "usd")) == 1
    assert (await repo.get(Ticker("C6"))).price_in("usd") == 106.0


async def test_a_rate_limited_cycle_changes_nothing(world):
    fake, repo, poll = world
    fake.fail(Failure.rate_limited(119))
    with pytest.raises(UpstreamRateLimited):
        await poll()
    assert {c.price_in("usd") for c in await repo.list()} == {1.0}


@pytest.fixture
async def tracked_btc(db):
    """BTC added through the add path (CoinGecko's /coins/markets), with a poll cycle
    and a refresh on the real client and PostgreSQL."""
    async with FakeCoinGecko() as fake:
        client = CoinGeckoClient(fake.base_url, limiter=CallBudget(10_000), timeout_seconds=2)
        repo = TortoiseCryptoRepository()
        cache = MemoryTickerCache()
        resolve, candidates = ResolveTicker(cache, client), FindCandidates(cache, client)
        add = AddCrypto(repo, resolve, candidates, client, utc_now, QuoteCurrencies(("usd",)))
        await add("BTC")
        try:
            yield (
                fake,
                repo,
                PollCycle(repo, client, utc_now, history_limit=100),
                RefreshCrypto(repo, client, utc_now, history_limit=100),
            )
        finally:
            await client.close()


def unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


async def test_four_polls_of_an_unchanged_price_store_one_point_not_five(tracked_btc):
    fake, repo, poll, _refresh = tracked_btc
    results = [await poll() for _ in range(4)]
    assert [(r.updated, r.skipped) for r in results] == [(0, 0)] * 4
    history = await repo.history(Ticker("BTC"), 100, "usd")
    assert [(p.price, p.timestamp) for p in history] == [(67187.3358936566, unix(UPDATED_AT))]
    assert len(fake.calls("/simple/price")) == 4


async def test_times_are_coingeckos_not_the_fetch_times(tracked_btc):
    fake, repo, poll, refresh = tracked_btc
    fake.set_price("bitcoin", 67200.0, updated_at=UPDATED_AT + 60)
    await poll()
    fake.set_price("bitcoin", 67300.0, updated_at=UPDATED_AT + 120)
    refreshed = await refresh("BTC")
    assert refreshed.last_updated == unix(UPDATED_AT + 120)
    history = await repo.history(Ticker("BTC"), 100, "usd")
    assert [p.timestamp for p in history] == [unix(UPDATED_AT + k) for k in (0, 60, 120)]
    assert (await repo.get(Ticker("BTC"))).last_updated == unix(UPDATED_AT + 120)


async def test_a_refresh_with_nothing_newer_answers_the_stored_crypto(tracked_btc):
    _fake, repo, _poll, refresh = tracked_btc
    stored = await repo.get(Ticker("BTC"))
    assert await refresh("BTC") == stored
    assert len(await repo.history(Ticker("BTC"), 100, "usd")) == 1


async def test_a_sub_cent_price_is_kept_whole(tracked_btc):
    fake, repo, poll, _refresh = tracked_btc
    fake.set_price("bitcoin", 0.000012345678912)
    await poll()
    assert (await repo.get(Ticker("BTC"))).price_in("usd") == 0.000012345678912
    assert fake.calls("/simple/price")[-1].query["precision"] == "full"


@pytest.mark.parametrize("absurd", [0, 4102444800])  # the Unix epoch; 2100-01-01
async def test_an_absurd_coingecko_time_gives_way_to_the_fetch_time(tracked_btc, absurd):
    fake, repo, poll, _refresh = tracked_btc
    fake.set_price("bitcoin", 67200.0, updated_at=absurd)
    before = utc_now()
    assert (await poll()).updated == 1
    stored = await repo.get(Ticker("BTC"))
    assert before <= stored.last_updated <= utc_now()
