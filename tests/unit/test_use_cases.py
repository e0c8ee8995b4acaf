from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial

import pytest

from application.add_crypto import AddCrypto
from application.delete_crypto import DeleteCrypto
from application.get_crypto import GetCrypto
from application.list_coins import FindCandidates
from application.list_cryptos import ListCryptos
from application.login_user import LoginUser
from application.poll_cycle import PollCycle
from application.price_history import PriceHistory
from application.price_stats import PriceStatistics
from application.refresh_crypto import RefreshCrypto
from application.register_user import RegisterUser
from application.resolve_ticker import ResolveTicker
from domain.errors import (
    CryptoAlreadyTracked,
    CryptoNotFound,
    InvalidCredentials,
    InvalidPassword,
    InvalidTicker,
    InvalidUsername,
    UnknownTicker,
    UpstreamError,
    UsernameTaken,
)
from domain.model import CoinMatch, CoinRef, Crypto, Quote, QuoteCurrencies, Ticker
from tests.unit.fakes import (
    CountingTokens,
    DictTickerCache,
    FakeClock,
    FakePriceSource,
    InMemoryCryptoRepository,
    InMemoryUserRepository,
    PlainHasher,
    RecordingThrottle,
)


@dataclass
class _Stale:
    """The repository, whose first ``get`` answers ``first`` (read before a poll committed)."""

    repo: InMemoryCryptoRepository
    first: Crypto | None

    async def get(self, symbol: Ticker) -> Crypto | None:
        first, self.first = self.first, None
        return first or await self.repo.get(symbol)

    def __getattr__(self, name: str) -> object:
        return getattr(self.repo, name)


BITCOIN = CoinMatch(CoinRef("bitcoin", "Bitcoin"), {"usd": 45000.5})
ETHEREUM = CoinMatch(CoinRef("ethereum", "Ethereum"), {"usd": 3000.0})


@pytest.fixture
def world():
    class World:
        repo = InMemoryCryptoRepository()
        source = FakePriceSource(
            coins={"BTC": BITCOIN, "ETH": ETHEREUM},
            quotes={
                "bitcoin": Quote({"usd": 46000.0}, None),
                "ethereum": Quote({"usd": 3100.0}, None),
            },
        )
        cache = DictTickerCache()
        clock = FakeClock()

    w = World()
    w.add = AddCrypto(
        w.repo,
        ResolveTicker(w.cache, w.source),
        FindCandidates(w.cache, w.source),
        w.source,
        w.clock,
        QuoteCurrencies.parse("usd"),
    )
    w.refresh = RefreshCrypto(w.repo, w.source, w.clock, history_limit=3)
    w.poll = PollCycle(w.repo, w.source, w.clock, history_limit=3)
    return w


async def test_add_resolves_stores_and_caches(world):
    crypto = await world.add("btc")
    assert (crypto.symbol, crypto.name, crypto.coin_id, crypto.price_in("usd")) == (
        Ticker("BTC"),
        "Bitcoin",
        "bitcoin",
        45000.5,
    )
    assert crypto.id is not None
    assert world.cache.refs["BTC"] == BITCOIN.ref
    assert (await world.repo.history(Ticker("BTC"), 10, "usd"))[0].price == 45000.5
    assert world.source.price_calls == []  # the lookup's answer carried the price


async def test_add_with_cached_mapping_asks_only_the_price(world):
    world.cache.refs["BTC"] = BITCOIN.ref
    crypto = await world.add("BTC")
    assert world.source.find_calls == []
    assert world.source.price_calls == [(["bitcoin"], False)]
    assert crypto.price_in("usd") == 46000.0


async def test_add_twice_is_a_conflict_without_asking_upstream(world):
    await world.add("BTC")
    with pytest.raises(CryptoAlreadyTracked, match="BTC is already tracked"):
        await world.add("btc")
    assert world.source.find_calls == ["BTC"]


async def test_add_unknown_ticker(world):
    with pytest.raises(UnknownTicker, match="no coin with the symbol NOPE"):
        await world.add("nope")
    assert await world.repo.list() == []
    assert world.cache.refs == {}


async def test_add_bad_ticker_never_reaches_upstream(world):
    with pytest.raises(InvalidTicker):
        await world.add("not a ticker")
    assert world.source.find_calls == []


async def test_add_upstream_failure_stores_nothing(world):
    world.source.fail = UpstreamError("CoinGecko answered 503")
    with pytest.raises(UpstreamError):
        await world.add("BTC")
    assert await world.repo.list() == []


async def test_add_without_usable_price_stores_nothing(world):
    world.source.coins["BTC"] = CoinMatch(BITCOIN.ref, {})
    world.source.quotes.clear()
    with pytest.raises(UpstreamError, match="no usable price"):
        await world.add("BTC")
    assert await world.repo.list() == []


async def test_get_list_delete(world):
    await world.add("eth")
    await world.add("btc")
    assert [c.symbol.value for c in await ListCryptos(world.repo)()] == ["BTC", "ETH"]
    assert (await GetCrypto(world.repo)("Eth")).name == "Ethereum"
    await DeleteCrypto(world.repo)("ETH")
    with pytest.raises(CryptoNotFound, match="ETH is not tracked"):
        await GetCrypto(world.repo)("eth")
    with pytest.raises(CryptoNotFound):
        await DeleteCrypto(world.repo)("ETH")


async def test_refresh_updates_price_and_trims_history(world):
    await world.add("BTC")
    for price in (1.0, 2.0, 3.0, 4.0):
        world.source.quote("bitcoin", price)
        crypto = await world.refresh("btc")
        assert crypto.price_in("usd") == price
    _symbol, points = await PriceHistory(world.repo, history_limit=100)("BTC", "usd")
    assert [p.price for p in points] == [2.0, 3.0, 4.0]
    assert points[0].timestamp < points[-1].timestamp


async def test_refresh_failure_leaves_crypto_as_it_was(world):
    before = await world.add("BTC")
    world.source.fail = UpstreamError("CoinGecko did not answer within 10 s")
    with pytest.raises(UpstreamError):
        await world.refresh("BTC")
    world.source.fail = None
    world.source.quotes.pop("bitcoin")
    with pytest.raises(UpstreamError, match="stored price is unchanged"):
        await world.refresh("BTC")
    assert await world.repo.get(Ticker("BTC")) == before


async def test_refresh_unknown_is_not_found(world):
    with pytest.raises(CryptoNotFound):
        await world.refresh("BTC")


async def test_stats_and_history_not_found(world):
    with pytest.raises(CryptoNotFound):
        await PriceStatistics(world.repo, 100)("BTC", "usd")
    with pytest.raises(CryptoNotFound):
        await PriceHistory(world.repo, 100)("BTC", "usd")


async def test_stats(world):
    await world.add("BTC")  # 45000.5
    world.source.quote("bitcoin", 50000.0)
    await world.refresh("BTC")
    symbol, stats = await PriceStatistics(world.repo, 100)("btc", "usd")
    assert symbol == Ticker("BTC")
    assert stats.records_count == 2
    assert stats.price_change == Decimal("4999.5")
    assert stats.price_change_percent == Decimal("11.11")


async def test_stats_cover_the_history_the_history_route_shows(world):
    await world.add("BTC")  # 45000.5
    for price in (50000.0, 40000.0):
        world.source.quote("bitcoin", price)
        await world.refresh("BTC")
    _, stats = await PriceStatistics(world.repo, 2)("BTC", "usd")
    assert (stats.records_count, stats.min_price, stats.max_price) == (2, 40000, 50000)


async def test_poll_updates_every_crypto_in_one_batch_and_one_write(world):
    await world.add("BTC")
    await world.add("ETH")
    world.repo.record_calls = 0
    result = await world.poll()
    assert (result.tracked, result.updated, result.skipped) == (2, 2, 0)
    assert world.source.price_calls == [(["bitcoin", "ethereum"], True)]
    assert world.repo.record_calls == 1
    assert (await world.repo.get(Ticker("ETH"))).price_in("usd") == 3100.0


async def test_poll_skips_coins_without_price(world):
    await world.add("BTC")
    await world.add("ETH")
    world.source.quotes.pop("ethereum")
    result = await world.poll()
    assert (result.updated, result.skipped) == (1, 1)
    assert (await world.repo.get(Ticker("ETH"))).price_in("usd") == 3000.0


async def test_poll_with_nothing_tracked_asks_nobody(world):
    assert (await world.poll()).tracked == 0
    assert world.source.price_calls == []


async def test_poll_upstream_failure_propagates_and_changes_nothing(world):
    await world.add("BTC")
    world.source.fail = UpstreamError("down")
    with pytest.raises(UpstreamError):
        await world.poll()
    assert (await world.repo.get(Ticker("BTC"))).price_in("usd") == 45000.5


async def test_prices_are_stamped_with_coingeckos_times(world):
    told = datetime(2024, 1, 1, 11, 59, 20, 736000, tzinfo=UTC)  # before the fake clock's now
    world.source.coins["BTC"] = CoinMatch(BITCOIN.ref, {"usd": 45000.5}, told)
    assert (await world.add("BTC")).last_updated == told.replace(microsecond=0)
    world.source.quote("bitcoin", 45001.0, told + timedelta(seconds=30))
    await world.poll()
    world.source.quote("bitcoin", 45002.0, told + timedelta(seconds=60))
    assert (await world.refresh("BTC")).last_updated == datetime(2024, 1, 1, 12, 0, 20, tzinfo=UTC)
    _symbol, points = await PriceHistory(world.repo, history_limit=100)("BTC", "usd")
    assert [p.timestamp.second for p in points] == [20, 50, 20]


async def test_polls_that_bring_the_same_observation_store_it_once(world):
    await world.add("BTC")
    world.source.quote("bitcoin", 46000.0, datetime(2024, 1, 1, 12, 0, 30, tzinfo=UTC))
    results = [await world.poll() for _ in range(4)]
    assert [(r.updated, r.priced, r.skipped) for r in results] == [(1, 1, 0)] + [(0, 1, 0)] * 3
    _symbol, points = await PriceHistory(world.repo, history_limit=100)("BTC", "usd")
    assert [p.price for p in points] == [45000.5, 46000.0]


async def test_a_refresh_with_nothing_newer_answers_the_stored_crypto_and_writes_nothing(world):
    await world.add("BTC")
    world.source.quote("bitcoin", 46000.0, datetime(2024, 1, 1, 12, 0, 30, tzinfo=UTC))
    refreshed = await world.refresh("BTC")
    world.repo.record_calls = 0
    assert await world.refresh("BTC") == refreshed
    assert world.repo.record_calls == 0


async def test_a_refresh_beaten_by_a_newer_poll_answers_what_is_stored(world):
    stored = await world.add("BTC")
    newer = replace(stored, prices={"usd": 47000.0}, last_updated=datetime(2030, 1, 1, tzinfo=UTC))
    world.repo.rows["BTC"] = newer  # a poll committed while the refresh asked CoinGecko
    world.source.quote("bitcoin", 46000.0, datetime(2024, 1, 1, 12, 0, 30, tzinfo=UTC))
    refresh = RefreshCrypto(_Stale(world.repo, stored), world.source, world.clock, 3)
    assert await refresh("BTC") == newer


@pytest.fixture
def auth():
    users, hasher, tokens = InMemoryUserRepository(), PlainHasher(), CountingTokens()
    login = partial(LoginUser(users, hasher, tokens, RecordingThrottle()), address="127.0.0.1")
    return users, hasher, RegisterUser(users, hasher, tokens), login


async def test_register_then_login(auth):
    users, _hasher, register, login = auth
    assert await register("alice", "correct horse") == "token-for-1"
    assert users.users["alice"].password_hash == "plain$correct horse"
    assert await login("alice", "correct horse") == "token-for-1"


async def test_register_rules(auth):
    users, _hasher, register, _login = auth
    with pytest.raises(InvalidUsername):
        await register("al", "correct horse")
    with pytest.raises(InvalidPassword):
        await register("alice", "short")
    with pytest.raises(InvalidPassword):
        await register("alice", "x" * 73)
    assert users.users == {}
    await register("alice", "correct horse")
    with pytest.raises(UsernameTaken):
        await register("alice", "another one")


async def test_login_failures_look_alike_and_check_a_hash(auth):
    _users, hasher, register, login = auth
    await register("alice", "correct horse")
    messages = []
    for name, password in [("alice", "wrong pass"), ("bob", "correct horse"), ("alice", "x" * 100)]:
        with pytest.raises(InvalidCredentials) as err:
            await login(name, password)
        messages.append(err.value.message)
    assert len(set(messages)) == 1
    assert ("correct horse", None) in hasher.verify_calls  # unknown user still pays a check
