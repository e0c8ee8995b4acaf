"""The PostgreSQL repositories against the real database (fresh, migrated, emptied
between tests by the ``db`` fixture): what only PostgreSQL can show (races, locks,
statement counts, rows left behind, lost connections). The rules every implementation
of the ports keeps are in test_repository_contract.py."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from tortoise import Tortoise
from tortoise.connection import get_connection

from domain.errors import CryptoAlreadyTracked, StorageUnavailable, UsernameTaken
from domain.model import Crypto, PricePoint, PriceUpdate, QuoteCurrencies, Ticker
from infrastructure.db.config import connect_kwargs, tortoise_config
from infrastructure.db.repositories import (
    TortoiseCryptoRepository,
    TortoiseUserRepository,
    database_ready,
    notify_change,
)
from infrastructure.read_model.repository import ReadModelCryptoRepository
from tests.support.clock import wait_until
from tests.support.cryptos import T0, at, crypto
from tests.support.database import tortoise_session, truncate_tables
from tests.support.read_models import live_read_model
from tests.support.tcp_proxy import tcp_proxy

pytestmark = pytest.mark.integration

KEEP = 100
FOUR = ("usd", "eur", "gbp", "btc")


async def track(repo: TortoiseCryptoRepository, symbol: str, price: float = 100.0) -> int:
    """Add a crypto (its first price at T0); return its id."""
    stored = await repo.add(crypto(symbol, price))
    assert stored.id is not None
    return stored.id


async def rows(sql: str, *args: Any) -> list[Any]:
    _, found = await get_connection("default").execute_query(sql, list(args))
    return list(found)


async def history_rows(crypto_id: int) -> list[tuple[float, datetime]]:
    found = await rows(
        "SELECT (prices->>'usd')::float8 AS price, ts FROM price_history "
        "WHERE crypto_id = $1 ORDER BY ts, id",
        crypto_id,
    )
    return [(r["price"], r["ts"]) for r in found]


async def stored_id(repo: TortoiseCryptoRepository, symbol: str) -> int:
    found = await repo.get(Ticker(symbol))
    assert found is not None and found.id is not None
    return found.id


@pytest.fixture
def sent_sql(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement that reaches asyncpg's query methods (whether it came from
    the models, Tortoise's raw SQL or a bare asyncpg connection) and names one of the
    application's tables; transaction control and pool housekeeping are left out."""
    sent: list[str] = []

    def counting(name: str) -> Any:
        original = getattr(asyncpg.connection.Connection, name)

        async def method(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            if any(table in query for table in ("cryptos", "price_history", "users")):
                sent.append(query)
            return await original(self, query, *args, **kwargs)

        return method

    for name in ("execute", "executemany", "fetch", "fetchrow", "fetchval"):
        monkeypatch.setattr(asyncpg.connection.Connection, name, counting(name))
    return sent


@pytest.fixture
def repo(db: str) -> TortoiseCryptoRepository:
    return TortoiseCryptoRepository()


@pytest.fixture
def users(db: str) -> TortoiseUserRepository:
    return TortoiseUserRepository()


# --- cryptos: add, get, list -------------------------------------------------------


async def test_twenty_concurrent_adds_of_one_symbol_exactly_one_wins(
    repo: TortoiseCryptoRepository,
) -> None:
    results = await asyncio.gather(
        *(repo.add(crypto("DOGE", 0.1 + i)) for i in range(20)), return_exceptions=True
    )

    won = [r for r in results if isinstance(r, Crypto)]
    lost = [r for r in results if isinstance(r, CryptoAlreadyTracked)]
    assert (len(won), len(lost)) == (1, 19), results
    assert await repo.list() == won
    assert len(await rows("SELECT id FROM price_history")) == 1


# --- record_prices ----------------------------------------------------------------


async def waiting_for_a_lock(holder: asyncpg.Connection, task: asyncio.Task[Any]) -> None:
    """Until another session of this database waits for a lock ``holder`` holds,
    failing if ``task`` ends first."""
    blocked = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND $1 = ANY(pg_blocking_pids(pid))"
    )

    async def waiting() -> bool:
        assert not task.done(), "it did not wait for the lock"
        return bool(await holder.fetchval(blocked, holder.get_server_pid()))

    await wait_until(waiting, "a session waiting for the lock")


async def test_a_crypto_deleted_while_the_batch_waits_for_it_is_skipped(
    repo: TortoiseCryptoRepository, db: str
) -> None:
    btc = await track(repo, "BTC", 100.0)
    eth = await track(repo, "ETH", 10.0)
    batch = [PriceUpdate(btc, {"usd": 101.0}, at(1)), PriceUpdate(eth, {"usd": 11.0}, at(1))]
    other = await asyncpg.connect(**connect_kwargs(db))
    try:
        deleting = other.transaction()
        await deleting.start()
        await other.execute("DELETE FROM cryptos WHERE id = $1", eth)
        recording = asyncio.create_task(repo.record_prices(batch, keep=KEEP))
        await waiting_for_a_lock(other, recording)
        assert not recording.done()  # it waits for the deleting transaction
        await deleting.commit()
        updated = await asyncio.wait_for(recording, timeout=10)
    finally:
        await other.close()

    assert updated == {btc}
    assert await history_rows(eth) == []
    assert [p for p, _ in await history_rows(btc)] == [100.0, 101.0]


async def add_cryptos(count: int) -> None:
    """``count`` cryptos C1..C<count> (their prices at T0, no history), in one statement."""
    await rows(
        "INSERT INTO cryptos (symbol, coin_id, name, current_prices, last_updated) "
        "SELECT 'C' || g, 'coin-' || g, 'Coin ' || g, jsonb_build_object('usd', g), $1 "
        "FROM generate_series(1, $2::int) AS g",
        T0,
        count,
    )


async def test_record_prices_uses_the_same_four_statements_for_1_or_500_cryptos_in_4_currencies(
    repo: TortoiseCryptoRepository, sent_sql: list[str]
) -> None:
    await add_cryptos(500)
    coins = await repo.tracked_coins()
    assert len(coins) == 500

    sent_sql.clear()
    assert await repo.record_prices([PriceUpdate(coins[0].crypto_id, {"usd": 7.0}, at(1))], KEEP)
    one = list(sent_sql)
    batch = [
        PriceUpdate(c.crypto_id, {code: 1000.0 + c.crypto_id for code in FOUR}, at(2))
        for c in coins
    ]
    sent_sql.clear()
    updated = await repo.record_prices(batch, KEEP)
    many = list(sent_sql)

    assert updated == {c.crypto_id for c in coins}
    assert len(one) == len(many) == 4, many
    per_crypto = await rows(
        "SELECT crypto_id, count(*) AS n, max((prices->>'gbp')::float8) AS top "
        "FROM price_history GROUP BY crypto_id"
    )
    assert len(per_crypto) == 500
    assert {r["n"] for r in per_crypto if r["crypto_id"] != coins[0].crypto_id} == {1}
    assert all(r["top"] == 1000.0 + r["crypto_id"] for r in per_crypto)
    current = await rows("SELECT id, current_prices FROM cryptos")
    assert all(
        json.loads(r["current_prices"]) == dict.fromkeys(FOUR, 1000.0 + r["id"]) for r in current
    )


async def test_a_batch_with_nothing_newer_writes_and_announces_nothing(
    repo: TortoiseCryptoRepository, sent_sql: list[str]
) -> None:
    btc = await track(repo, "BTC", 100.0)  # at T0
    await repo.record_prices([PriceUpdate(btc, {"usd": 101.0}, at(30))], KEEP)

    sent_sql.clear()
    assert await repo.record_prices([PriceUpdate(btc, {"usd": 101.0}, at(30))], KEEP) == set()

    assert len(sent_sql) == 2, sent_sql  # the lock and the conditional update: no trim, no NOTIFY
    assert not any("pg_notify" in q for q in sent_sql), sent_sql
    assert await history_rows(btc) == [(100.0, T0), (101.0, at(30))]


async def test_rows_that_share_a_moment_from_before_stay_as_they_are(
    repo: TortoiseCryptoRepository,
) -> None:
    btc = await track(repo, "BTC", 100.0)
    await rows(
        """INSERT INTO price_history (crypto_id, prices, ts) VALUES ($1, '{"usd": 100.0}', $2)""",
        btc,
        T0,
    )

    assert await repo.record_prices([PriceUpdate(btc, {"usd": 101.0}, at(1))], KEEP) == {btc}

    assert await history_rows(btc) == [(100.0, T0), (100.0, T0), (101.0, at(1))]


async def test_the_trim_walks_only_each_cryptos_index_entries(
    repo: TortoiseCryptoRepository, sent_sql: list[str]
) -> None:
    # Ranking the batch's whole history by a window over the heap cost about 1.8 s
    # a cycle at 10,000 cryptos; a per-crypto walk of keep index entries, about 0.2 s
    # (index-only while vacuum keeps the visibility map current, which a snapshot held
    # open elsewhere can prevent: so the plan's shape is asserted, not that scan).
    await add_cryptos(300)
    await rows(
        "INSERT INTO price_history (crypto_id, prices, ts) "
        "SELECT c.id, jsonb_build_object('usd', k), $1::timestamptz - k * interval '1 minute' "
        "FROM cryptos AS c, generate_series(1, $2::int) AS k",
        T0,
        KEEP,
    )
    await get_connection("default").execute_script("VACUUM ANALYZE price_history")
    coins = await repo.tracked_coins()
    sent_sql.clear()
    await repo.record_prices([PriceUpdate(c.crypto_id, {"usd": 1.0}, at(1)) for c in coins], KEEP)
    [trim] = [q for q in sent_sql if q.lstrip().upper().startswith("DELETE")]

    plan = "\n".join(
        r["QUERY PLAN"] for r in await rows(f"EXPLAIN {trim}", [c.crypto_id for c in coins], KEEP)
    )

    assert "WindowAgg" not in plan, plan
    walk = plan[plan.index("Subquery Scan on cut") :]
    assert "Limit" in walk and "idx_price_history_crypto_ts_id" in walk, plan
    counts = await rows("SELECT count(*) AS n FROM price_history GROUP BY crypto_id")
    assert {r["n"] for r in counts} == {KEEP}


# --- history ----------------------------------------------------------------------


async def test_history_of_a_crypto_without_rows_is_empty(repo: TortoiseCryptoRepository) -> None:
    btc = await track(repo, "BTC")
    await rows("DELETE FROM price_history WHERE crypto_id = $1", btc)
    assert await repo.history(Ticker("BTC"), KEEP, "usd") == []


async def test_prices_are_stored_as_one_json_object_per_observation(
    repo: TortoiseCryptoRepository,
) -> None:
    stored = await repo.add(crypto("BTC", prices={"usd": 0.1 + 0.2, "eur": 1e-12}))
    assert stored.id is not None
    await repo.record_prices([PriceUpdate(stored.id, {"usd": 1e15, "btc": 45000.5}, at(1))], KEEP)

    found = await rows(
        "SELECT prices::text AS raw, (prices->>'usd')::float8 AS usd FROM price_history "
        "WHERE crypto_id = $1 ORDER BY ts, id",
        stored.id,
    )
    [current] = await rows("SELECT current_prices FROM cryptos WHERE id = $1", stored.id)

    assert [json.loads(r["raw"]) for r in found] == [
        {"usd": 0.1 + 0.2, "eur": 1e-12},
        {"usd": 1e15, "btc": 45000.5},
    ]
    assert [r["usd"] for r in found] == [0.1 + 0.2, 1e15]
    assert json.loads(current["current_prices"]) == {"usd": 1e15, "btc": 45000.5}


async def test_list_and_get_give_every_stored_currency(repo: TortoiseCryptoRepository) -> None:
    # A currency no longer configured is still stored: the database repository hands it
    # out (the read model keeps the configured ones only; HTTP asks for those only).
    btc = await track(repo, "BTC", 1.0)
    await repo.record_prices([PriceUpdate(btc, {"usd": 2.0, "chf": 1.5, "sats": 2e3}, at(1))], KEEP)

    found = await repo.get(Ticker("BTC"))
    [listed] = await repo.list()

    assert found is not None and found.prices == {"usd": 2.0, "chf": 1.5, "sats": 2000.0}
    assert listed == found
    assert all(type(p) is float for p in found.prices.values())


async def test_stored_nan_is_no_price_and_infinity_stays(repo: TortoiseCryptoRepository) -> None:
    # What migration 4 makes of a NaN or an infinity older versions stored: JSON strings.
    btc = await track(repo, "BTC", 1.0)
    await rows(
        "UPDATE cryptos SET current_prices = jsonb_build_object("
        "'usd', 'NaN'::float8, 'eur', 'Infinity'::float8) WHERE id = $1",
        btc,
    )
    await rows(
        "INSERT INTO price_history (crypto_id, prices, ts) "
        "VALUES ($1, jsonb_build_object('usd', 'NaN'::float8), $2)",
        btc,
        at(1),
    )

    found = await repo.get(Ticker("BTC"))
    history = await repo.history(Ticker("BTC"), KEEP, "usd")
    stats = await repo.stats(Ticker("BTC"), KEEP, "usd")

    assert found is not None and found.prices == {"eur": math.inf}
    assert history == [PricePoint(1.0, T0)]
    assert stats is not None and (stats.current_price, stats.records_count) == (None, 1)


# --- stats ------------------------------------------------------------------------


async def test_stats_are_one_query(repo: TortoiseCryptoRepository, sent_sql: list[str]) -> None:
    btc = await track(repo, "BTC", 10.0)
    await repo.record_prices([PriceUpdate(btc, {"usd": 20.0}, at(1))], KEEP)

    sent_sql.clear()
    stats = await repo.stats(Ticker("BTC"), KEEP, "usd")

    assert len(sent_sql) == 1, sent_sql
    assert stats is not None and stats.records_count == 2


async def test_stats_of_a_crypto_without_rows(repo: TortoiseCryptoRepository) -> None:
    btc = await track(repo, "BTC", 5.0)
    await rows("DELETE FROM price_history WHERE crypto_id = $1", btc)

    stats = await repo.stats(Ticker("BTC"), KEEP, "usd")

    assert stats is not None
    assert (stats.current_price, stats.records_count) == (5.0, 0)
    assert stats.min_price is stats.max_price is stats.avg_price is None
    assert stats.oldest_price is stats.newest_price is stats.price_change is None


# --- delete -----------------------------------------------------------------------


async def test_delete_leaves_no_history_rows_behind(repo: TortoiseCryptoRepository) -> None:
    btc = await track(repo, "BTC", 1.0)
    await repo.record_prices([PriceUpdate(btc, {"usd": 2.0}, at(1))], KEEP)

    assert await repo.delete(Ticker("BTC")) is True

    assert await history_rows(btc) == []


# --- users ------------------------------------------------------------------------


async def test_a_user_row_records_when_it_was_made(users: TortoiseUserRepository) -> None:
    alice = await users.add("alice", "hash-a")
    created = await rows("SELECT created_at FROM users WHERE id = $1", alice.id)
    assert created[0]["created_at"] is not None


async def test_a_taken_username_is_refused(users: TortoiseUserRepository) -> None:
    await users.add("alice", "hash-a")
    results = await asyncio.gather(
        *(users.add("alice", f"hash-{i}") for i in range(5)), return_exceptions=True
    )

    assert all(isinstance(r, UsernameTaken) for r in results), results
    stored = await users.get_by_username("alice")
    assert stored is not None and stored.password_hash == "hash-a"


async def test_the_username_lookup_can_use_the_lower_index(
    users: TortoiseUserRepository, sent_sql: list[str], db: str
) -> None:
    await users.add("Carol", "hash-c")
    sent_sql.clear()
    await users.get_by_username("CAROL")
    [lookup] = sent_sql

    conn = await asyncpg.connect(**connect_kwargs(db))
    try:
        await conn.execute("SET enable_seqscan = off")  # a tiny table would be scanned
        plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + lookup, "CAROL"))
    finally:
        await conn.close()
    assert "users_lower_username_key" in plan, plan


# --- a PostgreSQL that drops its connections -------------------------------------


async def drop_every_connection(url: str) -> int:
    """What a PostgreSQL restart does to the pool: every other session is ended."""
    admin = await asyncpg.connect(**connect_kwargs(url))
    try:
        ended: int = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return ended
    finally:
        await admin.close()


async def test_the_repositories_recover_when_postgres_drops_every_connection(
    repo: TortoiseCryptoRepository, users: TortoiseUserRepository, db: str
) -> None:
    btc = await track(repo, "BTC", 1.0)
    usernames = (f"user{n}" for n in itertools.count())
    operations = {
        "record_prices": lambda: repo.record_prices([PriceUpdate(btc, {"usd": 2.0}, at(1))], KEEP),
        "list": repo.list,
        "stats": lambda: repo.stats(Ticker("BTC"), KEEP, "usd"),
        "add": lambda: users.add(next(usernames), "hash"),
        "get": lambda: users.get_by_username("nobody"),
    }
    for _ in range(3):
        await asyncio.gather(*(repo.list() for _ in range(4)))  # several pooled connections
        dropped = await drop_every_connection(db)
        assert dropped >= 1
        # Each connection the server dropped fails the one call that finds it dead...
        failures = 0
        for name, operation in operations.items():
            while True:
                try:
                    await operation()
                    break
                except Exception:
                    failures += 1
                    assert failures <= dropped, f"{name} did not recover"
        # ...and nothing fails after that, in this same task.
        for operation in operations.values():
            await operation()
    pool = get_connection("default")._pool
    assert pool.get_idle_size() == pool.get_size(), "a connection was never given back"
    assert await database_ready() == (True, [])


# --- the read model's repository while PostgreSQL is down ------------------------------


async def test_with_postgres_down_the_last_set_answers_in_the_currency_asked(
    database_url: str,
) -> None:
    """Stale-if-error (``ReadModelCryptoRepository``): history and stats in eur come
    from the set last loaded, in eur."""
    await truncate_tables(database_url)
    target = urlsplit(database_url)
    async with tcp_proxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
        proxied = urlunsplit(target._replace(netloc=f"postgres@127.0.0.1:{proxy.port}"))
        await Tortoise.init(config=tortoise_config(proxied, timeout=2.0))
        try:
            usd_eur = QuoteCurrencies(("usd", "eur"))
            async with live_read_model(proxied, KEEP, usd_eur, notify=notify_change) as model:
                repo = ReadModelCryptoRepository(TortoiseCryptoRepository(), model)
                await repo.add(crypto("BTC", prices={"usd": 1.0, "eur": 0.9}))
                proxy.refuse()
                proxy.cut()
                await wait_until(lambda: not model.live, "the read model to stop serving")
                with pytest.raises(StorageUnavailable):
                    await TortoiseCryptoRepository().list()
                history = await repo.history(Ticker("BTC"), KEEP, "eur")
                stats = await repo.stats(Ticker("BTC"), KEEP, "eur")
                usd = await repo.history(Ticker("BTC"), KEEP, "usd")
        finally:
            await Tortoise.close_connections()
    await truncate_tables(database_url)

    assert history == [PricePoint(0.9, T0)] and usd == [PricePoint(1.0, T0)]
    assert stats is not None and (stats.current_price, stats.records_count) == (0.9, 1)


# --- readiness --------------------------------------------------------------------


async def test_database_ready_when_postgres_answers(db: str) -> None:
    assert await database_ready() == (True, [])


async def test_database_not_ready_when_postgres_is_unreachable() -> None:
    async with tortoise_session("postgres://postgres@127.0.0.1:1/nothing"):
        assert (await database_ready())[0] is False


async def test_database_not_ready_without_tortoise() -> None:
    assert (await database_ready())[0] is False
