"""The committed aerich migrations: they build the schema from an empty database,
the way a newcomer runs them, and they agree with the models."""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg
import pytest

from infrastructure.db.config import connect_kwargs
from infrastructure.db.migrate import MIGRATIONS_DIR, upgrade
from infrastructure.db.repositories import TortoiseCryptoRepository
from tests.support.database import REPO_ROOT, fresh_database, run_aerich, tortoise_session

pytestmark = pytest.mark.integration

MODELS_DIR = MIGRATIONS_DIR / "models"


def committed_migrations() -> list[str]:
    return sorted(p.name for p in MODELS_DIR.glob("[0-9]*_*.py"))


async def fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(**connect_kwargs(url))
    try:
        return list(await conn.fetch(sql))
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
            "column_default FROM information_schema.columns WHERE table_schema = 'public'",
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
    assert types["cryptos", "current_price"]["data_type"] == "double precision"
    assert types["cryptos", "last_updated"]["data_type"] == "timestamp with time zone"
    assert types["price_history", "id"]["data_type"] == "bigint"
    assert types["price_history", "price"]["data_type"] == "double precision"
    assert types["price_history", "ts"]["data_type"] == "timestamp with time zone"
    assert types["users", "created_at"]["column_default"] == "CURRENT_TIMESTAMP"
    assert types["cryptos", "created_at"]["column_default"] == "CURRENT_TIMESTAMP"
    assert [r["confdeltype"] for r in cascade] == ["c"]  # ON DELETE CASCADE
    assert any("(crypto_id, ts)" in r["indexdef"] for r in index)
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


def drift_check(workdir: Path, database_url: str, tortoise_orm: str) -> tuple[str, list[str]]:
    """Run ``aerich migrate --name drift_check`` on a scratch copy of the committed
    migrations, so it can never write into the repository. Returns aerich's output
    and the migration files the copy holds afterwards."""
    scratch = workdir / "migrations"
    shutil.copytree(MIGRATIONS_DIR, scratch, ignore=shutil.ignore_patterns("__pycache__"))
    config = workdir / "aerich.ini"
    config.write_text(
        f'[tool.aerich]\ntortoise_orm = "{tortoise_orm}"\nlocation = "{scratch}"\n'
        f'src_folder = "./."\n'
    )
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
    output, files = drift_check(tmp_path, database_url, "infrastructure.db.config.TORTOISE_ORM")

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
