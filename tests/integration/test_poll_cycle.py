"""One poll cycle with the real pieces: PostgreSQL repository, CoinGecko client, and
the CoinGecko stand-in over HTTP."""

from datetime import UTC, datetime

import pytest

from application.poll_cycle import PollCycle
from domain.errors import UpstreamRateLimited
from domain.model import Crypto, Ticker
from infrastructure.clock import utc_now
from infrastructure.coingecko.call_budget import CallBudget
from infrastructure.coingecko.client import CoinGeckoClient
from infrastructure.db.repositories import TortoiseCryptoRepository
from tests.fakes.coingecko_server import ABSENT, Failure, FakeCoin, FakeCoinGecko

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
            await repo.add(Crypto(Ticker(f"C{i}"), f"coin-{i}", f"Coin {i}", 1.0, start))
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
    assert {c.symbol.value: c.current_price for c in cryptos} == {
        f"C{i}": 100.0 + i for i in range(COUNT)
    }
    history = await repo.history(Ticker("C7"), 100)
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
        assert (await repo.get(Ticker(f"C{i}"))).current_price == 1.0
        assert len(await repo.history(Ticker(f"C{i}"), 100)) == 1
    assert (await repo.get(Ticker("C6"))).current_price == 106.0


async def test_a_rate_limited_cycle_changes_nothing(world):
    fake, repo, poll = world
    fake.fail(Failure.rate_limited(119))
    with pytest.raises(UpstreamRateLimited):
        await poll()
    assert {c.current_price for c in await repo.list()} == {1.0}
