"""The committed aerich migrations: they build the schema from an empty database,
the way a newcomer runs them, and they agree with the models."""

from __future__ import annotations

import json
import math
import shutil
import struct
from collections.abc import Collection
from pathlib import Path

import asyncpg
import pytest

from domain.model import PricePoint, Ticker
from infrastructure.db.config import connect_kwargs
from infrastructure.db.migrate import MIGRATIONS_DIR, upgrade
from infrastructure.db.repositories import TortoiseCryptoRepository
from tests.support.cryptos import at
from tests.support.database import (
    REPO_ROOT,
    database_name,
    fresh_database,
    run_aerich,
    tortoise_session,
)

pytestmark = pytest.mark.integration

MODELS_DIR = MIGRATIONS_DIR / "models"
TORTOISE_ORM = "infrastructure.db.config.TORTOISE_ORM"
LOWER_USERNAME_INDEX = "users_lower_username_key"
ADD_USER = "INSERT INTO users (username, password_hash) VALUES ($1, 'hash')"


def committed_migrations() -> list[str]:
    return sorted(p.name for p in MODELS_DIR.glob("[0-9]*_*.py"))


async def fetch(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(**connect_kwargs(url))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def test_aerich_upgrade_at_the_repo_root_migrates_an_empty_database() -> None:
    assert committed_migrations(), "no committed migration under infrastructure/db/migrations"
    with fresh_database(migrated=False) as url:
        first = run_aerich("upgrade", database_url=url)
        again = run_aerich("upgrade", database_url=url)

        columns = await fetch(
            url,
            "SELECT table_name, column_name, data_type, character_maximum_length, "
            "column_default, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'public'",
        )
        cascade = await fetch(
            url,
            "SELECT confdeltype::text FROM pg_constraint "
            "WHERE conrelid = 'price_history'::regclass AND contype = 'f'",
        )
        index = await fetch(
            url, "SELECT indexdef FROM pg_indexes WHERE tablename = 'price_history'"
        )
        uniques = await fetch(
            url,
            "SELECT conrelid::regclass::text AS tab, pg_get_constraintdef(oid) AS def "
            "FROM pg_constraint WHERE contype = 'u'",
        )

    assert first.returncode == 0, first.stdout + first.stderr
    for name in committed_migrations():
        assert f"Success upgrading to {name}" in first.stdout
    assert again.returncode == 0 and "No upgrade items found" in again.stdout

    types = {(c["table_name"], c["column_name"]): c for c in columns}
    assert {t for t, _ in types} >= {"users", "cryptos", "price_history", "aerich"}
    assert types["users", "username"]["character_maximum_length"] == 50
    assert types["cryptos", "symbol"]["character_maximum_length"] == 20
    assert types["cryptos", "current_prices"]["data_type"] == "jsonb"
    assert types["cryptos", "current_prices"]["is_nullable"] == "NO"
    assert types["cryptos", "last_updated"]["data_type"] == "timestamp with time zone"
    assert types["price_history", "id"]["data_type"] == "bigint"
    assert types["price_history", "prices"]["data_type"] == "jsonb"
    assert types["price_history", "prices"]["is_nullable"] == "NO"
    assert ("cryptos", "current_price") not in types and ("price_history", "price") not in types
    assert types["price_history", "ts"]["data_type"] == "timestamp with time zone"
    assert types["users", "created_at"]["column_default"] == "CURRENT_TIMESTAMP"
    assert types["cryptos", "created_at"]["column_default"] == "CURRENT_TIMESTAMP"
    assert [r["confdeltype"] for r in cascade] == ["c"]  # ON DELETE CASCADE
    assert any("(crypto_id, ts, id)" in r["indexdef"] for r in index)
    assert {(r["tab"], r["def"]) for r in uniques} >= {
        ("users", "UNIQUE (username)"),
        ("cryptos", "UNIQUE (symbol)"),
    }


async def test_programmatic_upgrade_is_idempotent_and_leaves_tortoise_usable() -> None:
    with fresh_database(migrated=False) as url:
        assert await upgrade(url) == committed_migrations()
        assert await upgrade(url) == []
        async with tortoise_session(url):
            assert await TortoiseCryptoRepository().list() == []


def scratch_migrations(
    workdir: Path, tortoise_orm: str = TORTOISE_ORM, only: Collection[str] | None = None
) -> Path:
    """A copy of the committed migrations under ``workdir`` (just the files named in
    ``only``, when given) and an aerich config that points at it; returns the config.
    aerich run with it can never write into the repository."""
    scratch = workdir / "migrations"
    shutil.copytree(MIGRATIONS_DIR, scratch, ignore=shutil.ignore_patterns("__pycache__"))
    if only is not None:
        for path in (scratch / "models").glob("[0-9]*_*.py"):
            if path.name not in only:
                path.unlink()
    config = workdir / "aerich.ini"
    config.write_text(
        f'[tool.aerich]\ntortoise_orm = "{tortoise_orm}"\nlocation = "{scratch}"\n'
        f'src_folder = "./."\n'
    )
    return config


def drift_check(workdir: Path, database_url: str, tortoise_orm: str) -> tuple[str, list[str]]:
    """Run ``aerich migrate --name drift_check`` on a scratch copy of the committed
    migrations. Returns aerich's output and the migration files the copy holds
    afterwards."""
    config = scratch_migrations(workdir, tortoise_orm)
    scratch = config.parent / "migrations"
    before = committed_migrations()
    done = run_aerich(
        "migrate",
        "--name",
        "drift_check",
        database_url=database_url,
        config=config,
        extra_env={"PYTHONPATH": str(workdir)},
    )
    assert committed_migrations() == before, "the drift check wrote into the repository"
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, sorted(p.name for p in (scratch / "models").glob("[0-9]*_*.py"))


def test_models_and_committed_migrations_agree(tmp_path: Path, database_url: str) -> None:
    output, files = drift_check(tmp_path, database_url, TORTOISE_ORM)

    assert "No changes detected" in output, (
        "the models differ from the committed migrations: run "
        "`aerich -c aerich.ini migrate --name <change>` and commit the new file\n" + output
    )
    assert files == committed_migrations()


def test_the_drift_check_notices_a_model_change(tmp_path: Path, database_url: str) -> None:
    """Guards the guard: a model with one more column must produce a migration."""
    models = (REPO_ROOT / "infrastructure" / "db" / "models.py").read_text()
    marker = "    password_hash = fields.CharField(max_length=255)\n"
    assert marker in models
    drifted = models.replace(
        marker, marker + "    nickname = fields.CharField(max_length=30, null=True)\n"
    )
    (tmp_path / "drifted_models.py").write_text(drifted)
    (tmp_path / "drifted_config.py").write_text(
        "import os\n"
        "from infrastructure.db.config import tortoise_config\n"
        "TORTOISE_ORM = tortoise_config(os.environ['DATABASE_URL'])\n"
        "TORTOISE_ORM['apps']['models']['models'] = ['drifted_models', 'aerich.models']\n"
    )

    output, files = drift_check(tmp_path, database_url, "drifted_config.TORTOISE_ORM")

    assert "Success creating migration file" in output, output
    new = [f for f in files if f not in committed_migrations()]
    assert len(new) == 1 and new[0].endswith("_drift_check.py")
    assert "nickname" in (tmp_path / "migrations" / "models" / new[0]).read_text()


# --- usernames unique regardless of case ----------------------------------------------


def migration_named(suffix: str) -> str:
    [name] = [n for n in committed_migrations() if n.endswith(suffix)]
    return name


def migrations_before(name: str) -> list[str]:
    """The committed migrations that apply before ``name``, by number."""
    number = int(name.split("_", 1)[0])
    return [n for n in committed_migrations() if int(n.split("_", 1)[0]) < number]


async def lower_username_indexes(url: str) -> list[str]:
    rows = await fetch(
        url, "SELECT indexname FROM pg_indexes WHERE indexname = $1", LOWER_USERNAME_INDEX
    )
    return [r["indexname"] for r in rows]


async def test_usernames_that_differ_only_in_case_collide() -> None:
    with fresh_database() as url:
        await fetch(url, ADD_USER, "Carol")
        with pytest.raises(asyncpg.UniqueViolationError, match=LOWER_USERNAME_INDEX):
            await fetch(url, ADD_USER, "carol")
        await fetch(url, ADD_USER, "carol2")  # only the case is folded
        names = await fetch(url, "SELECT username FROM users ORDER BY id")

    assert [r["username"] for r in names] == ["Carol", "carol2"]


async def test_the_migration_refuses_usernames_that_already_collide(tmp_path: Path) -> None:
    init = migration_named("_init.py")
    case_insensitive = migration_named("_username_case_insensitive.py")
    with fresh_database(migrated=False) as url:
        at_init = run_aerich(
            "upgrade", database_url=url, config=scratch_migrations(tmp_path, only=[init])
        )
        assert at_init.returncode == 0, at_init.stdout + at_init.stderr
        for name in ("Dave", "dave", "erin", "ERIN", "frank"):
            await fetch(url, ADD_USER, name)

        with pytest.raises(asyncpg.RaiseError, match="differ only in case") as refused:
            await upgrade(url)
        by_hand = run_aerich("upgrade", database_url=url)
        index_after_refusal = await lower_username_indexes(url)
        applied_after_refusal = await fetch(url, "SELECT version FROM aerich")

        await fetch(url, "DELETE FROM users WHERE username IN ('dave', 'erin')")
        applied = await upgrade(url)
        index = await lower_username_indexes(url)

    message = (
        "cannot make usernames case-insensitive: these usernames differ only in case: "
        "(Dave, dave), (ERIN, erin); rename or delete all but one of each, then migrate again"
    )
    assert message in str(refused.value)
    assert by_hand.returncode != 0 and message in by_hand.stdout + by_hand.stderr
    assert index_after_refusal == []
    assert [r["version"] for r in applied_after_refusal] == [init]
    assert applied == [n for n in committed_migrations() if n != init]
    assert case_insensitive in applied and index == [LOWER_USERNAME_INDEX]


async def history_tuning(url: str) -> tuple[list[str], list[str]]:
    """The indexes on price_history other than its key, and its storage options."""
    indexes = await fetch(
        url,
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'price_history' "
        "AND indexname <> 'price_history_pkey' ORDER BY indexname",
    )
    [table] = await fetch(url, "SELECT reloptions FROM pg_class WHERE relname = 'price_history'")
    return [r["indexdef"] for r in indexes], sorted(table["reloptions"] or [])


async def test_the_history_migration_indexes_the_trim_and_vacuums_sooner(tmp_path: Path) -> None:
    history_trim = migration_named("_history_trim.py")
    before = migrations_before(history_trim)
    with fresh_database(migrated=False) as url:
        earlier = run_aerich(
            "upgrade", database_url=url, config=scratch_migrations(tmp_path, only=before)
        )
        assert earlier.returncode == 0, earlier.stdout + earlier.stderr
        await fetch(
            url,
            "INSERT INTO cryptos (symbol, coin_id, name, current_price, last_updated) "
            "VALUES ('BTC', 'bitcoin', 'Bitcoin', 1.0, now())",
        )
        await fetch(
            url,
            "INSERT INTO price_history (crypto_id, price, ts) "
            "SELECT id, k, now() FROM cryptos, generate_series(1, 3) AS k",
        )
        applied = await upgrade(url)
        indexes, options = await history_tuning(url)
        kept = await fetch(url, "SELECT count(*) AS n FROM price_history")

    assert applied == [n for n in committed_migrations() if n not in before]
    assert indexes == [
        "CREATE INDEX idx_price_history_crypto_ts_id ON public.price_history "
        "USING btree (crypto_id, ts, id)"
    ]
    assert options == [
        "autovacuum_vacuum_insert_scale_factor=0.02",
        "autovacuum_vacuum_scale_factor=0.02",
    ]
    assert kept[0]["n"] == 3


# --- prices per quote currency (migration 4) ------------------------------------------

# Doubles that a decimal detour could change: a sum with a 17th digit, the sane range's
# ends, a tie, the smallest subnormal and normal, the largest double; then what JSON
# numbers cannot hold, which versions before prices were checked may have stored.
EXACT = [0.1 + 0.2, 1e-12, 1e15, 45000.5, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308]
NOT_NUMBERS = [math.nan, math.inf, -math.inf]
ADD_OLD_CRYPTO = (
    "INSERT INTO cryptos (symbol, coin_id, name, current_price, last_updated) "
    "VALUES ($1, $2, $3, $4, $5) RETURNING id"
)
ADD_OLD_ROW = "INSERT INTO price_history (crypto_id, price, ts) VALUES ($1, $2, $3)"


def bits(price: float) -> bytes:
    """The double's 8 bytes: NaN equals NaN here, and 0.0 differs from -0.0."""
    return struct.pack("<d", price)


async def old_layout_rows(url: str) -> tuple[list[tuple], list[tuple]]:
    """Three cryptos and their histories in the float8 layout of migration 3."""
    conn = await asyncpg.connect(**connect_kwargs(url))
    try:
        histories = {
            "BTC": EXACT,
            "ETH": [2000.0, *NOT_NUMBERS, 2001.25],
            "SOL": [150.0],
        }
        for symbol, prices in histories.items():
            current = prices[-1] if symbol != "ETH" else math.nan
            crypto_id = await conn.fetchval(
                ADD_OLD_CRYPTO, symbol, symbol.lower(), symbol, current, at(len(prices))
            )
            await conn.executemany(
                ADD_OLD_ROW, [(crypto_id, p, at(k)) for k, p in enumerate(prices, start=1)]
            )
        cryptos = await conn.fetch("SELECT id, current_price, last_updated FROM cryptos")
        rows = await conn.fetch("SELECT id, crypto_id, price, ts FROM price_history")
    finally:
        await conn.close()
    return (
        sorted((r["id"], bits(r["current_price"]), r["last_updated"]) for r in cryptos),
        sorted((r["id"], r["crypto_id"], bits(r["price"]), r["ts"]) for r in rows),
    )


async def usd_rows(url: str) -> tuple[list[tuple], list[tuple], set[str]]:
    """The same, read back from the jsonb layout as usd, and every key the objects hold."""
    cryptos = await fetch(
        url,
        "SELECT id, (current_prices->>'usd')::float8 AS price, last_updated, "
        "current_prices::text AS raw FROM cryptos",
    )
    rows = await fetch(
        url,
        "SELECT id, crypto_id, (prices->>'usd')::float8 AS price, ts, prices::text AS raw "
        "FROM price_history",
    )
    keys = {key for r in [*cryptos, *rows] for key in json.loads(r["raw"])}
    return (
        sorted((r["id"], bits(r["price"]), r["last_updated"]) for r in cryptos),
        sorted((r["id"], r["crypto_id"], bits(r["price"]), r["ts"]) for r in rows),
        keys,
    )


async def float_rows(url: str) -> tuple[list[tuple], list[tuple]]:
    """After a downgrade: the float8 layout again."""
    cryptos = await fetch(url, "SELECT id, current_price, last_updated FROM cryptos")
    rows = await fetch(url, "SELECT id, crypto_id, price, ts FROM price_history")
    return (
        sorted((r["id"], bits(r["current_price"]), r["last_updated"]) for r in cryptos),
        sorted((r["id"], r["crypto_id"], bits(r["price"]), r["ts"]) for r in rows),
    )


async def test_the_currency_migration_moves_todays_prices_in_as_usd_bit_for_bit(
    tmp_path: Path,
) -> None:
    quote_currencies = migration_named("_quote_currencies.py")
    earlier = migrations_before(quote_currencies)
    with fresh_database(migrated=False) as url:
        # A server configured to print floats to 15 digits must not round them either.
        await fetch(url, f'ALTER DATABASE "{database_name(url)}" SET extra_float_digits = 0')
        at_3 = run_aerich(
            "upgrade", database_url=url, config=scratch_migrations(tmp_path, only=earlier)
        )
        assert at_3.returncode == 0, at_3.stdout + at_3.stderr
        before_cryptos, before_rows = await old_layout_rows(url)

        applied = await upgrade(url)
        after_cryptos, after_rows, keys = await usd_rows(url)
        nan_kept = await fetch(
            url, "SELECT prices->'usd' AS v FROM price_history WHERE prices->>'usd' = 'NaN'"
        )
        indexes, options = await history_tuning(url)
        async with tortoise_session(url):
            repo = TortoiseCryptoRepository()
            btc = await repo.history(Ticker("BTC"), 100, "usd")
            eth = await repo.history(Ticker("ETH"), 100, "usd")
            eth_now = await repo.get(Ticker("ETH"))
            listed = await repo.list()

    assert applied == [quote_currencies]
    assert after_cryptos == before_cryptos and len(after_cryptos) == 3
    assert after_rows == before_rows and len(after_rows) == len(EXACT) + 6
    assert keys == {"usd"}
    assert [r["v"] for r in nan_kept] == ['"NaN"']  # PostgreSQL's own JSON for it
    assert indexes == [
        "CREATE INDEX idx_price_history_crypto_ts_id ON public.price_history "
        "USING btree (crypto_id, ts, id)"
    ]
    assert "autovacuum_vacuum_scale_factor=0.02" in options
    assert btc == [PricePoint(p, at(k)) for k, p in enumerate(EXACT, start=1)]
    # A NaN is read as no price; the infinities stay what they were.
    assert eth is not None and [p.price for p in eth] == [2000.0, math.inf, -math.inf, 2001.25]
    assert eth_now is not None and eth_now.prices == {}
    assert {c.symbol.value: c.prices for c in listed}["SOL"] == {"usd": 150.0}


async def test_the_currency_migration_downgrades_the_usd_prices_and_drops_the_rest(
    tmp_path: Path,
) -> None:
    with fresh_database(migrated=False) as url:
        config = scratch_migrations(tmp_path)
        earlier = migrations_before(migration_named("_quote_currencies.py"))
        at_3 = run_aerich(
            "upgrade",
            database_url=url,
            config=scratch_migrations(tmp_path / "to_3", only=earlier),
        )
        assert at_3.returncode == 0, at_3.stdout + at_3.stderr
        before_cryptos, before_rows = await old_layout_rows(url)
        await upgrade(url)
        # What only the new layout can hold: a crypto whose latest price has no usd one
        # (usd no longer configured), and rows in other currencies only.
        [kept] = await fetch(url, "SELECT id FROM cryptos WHERE symbol = 'BTC'")
        await fetch(
            url,
            """INSERT INTO price_history (crypto_id, prices, ts) """
            """VALUES ($1, '{"eur": 1.5}', $2)""",
            kept["id"],
            at(100),
        )
        [eurs] = await fetch(
            url,
            """INSERT INTO cryptos (symbol, coin_id, name, current_prices, last_updated) """
            """VALUES ('ADA', 'cardano', 'Cardano', '{"eur": 0.4}', $1) RETURNING id""",
            at(1),
        )
        await fetch(
            url,
            """INSERT INTO price_history (crypto_id, prices, ts) """
            """VALUES ($1, '{"usd": 0.5, "eur": 0.4}', $2)""",
            eurs["id"],
            at(1),
        )

        down = run_aerich("downgrade", "--yes", database_url=url, config=config)
        down_cryptos, down_rows = await float_rows(url)
        versions = await fetch(url, "SELECT version FROM aerich ORDER BY id")
        again = await upgrade(url)
        up_cryptos, up_rows, _ = await usd_rows(url)

    assert down.returncode == 0, down.stdout + down.stderr
    assert (down_cryptos, down_rows) == (before_cryptos, before_rows)
    assert [r["version"] for r in versions] == earlier
    assert again == [migration_named("_quote_currencies.py")]
    assert (up_cryptos, up_rows) == (before_cryptos, before_rows)
