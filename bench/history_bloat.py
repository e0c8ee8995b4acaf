"""Whether price_history stays at its size over many poll cycles: each cycle records
one price per crypto (the real repository's record_prices, so one insert and one
trimmed row per crypto). Runs twice side by side, in two databases: with the migrated
per-table autovacuum settings, and with them reset to the server's defaults.

The databases live in a private embedded PostgreSQL with autovacuum on (a shared
development server may run with it off). Autovacuum visits each database once every
``autovacuum_naptime`` (60 s by default) and the poller runs every 30 s by default:
here the naptime is 2 s and a cycle runs every second, the same two cycles a visit.

Prints, every few cycles: price_history's rows, dead tuples, heap and index sizes,
autovacuum runs so far, and the trim statement's time.

    python -m bench.history_bloat                   # 240 cycles of 1000 cryptos, 1 s apart
    python -m bench.history_bloat 1000 240 1.0      # cryptos, cycles, seconds between cycles
"""

from __future__ import annotations

import asyncio
import multiprocessing
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from bench._support import connect, counting_statements, ms
from bench.poll_cycle import HISTORY_LIMIT, seed
from domain.model import PriceUpdate
from infrastructure.clock import utc_now
from infrastructure.db.embedded import start_embedded_postgres, stop_embedded_postgres
from infrastructure.db.migrate import upgrade
from infrastructure.db.repositories import TortoiseCryptoRepository
from tests.support.database import tortoise_session

REPORT_EVERY = 20
STATS_SETTLE_SECONDS = 1.0
NAPTIME = "2s"
SETTINGS = ("migrated", "defaults")

_RESET = (
    "ALTER TABLE price_history RESET "
    "(autovacuum_vacuum_scale_factor, autovacuum_vacuum_insert_scale_factor)"
)

_SIZES = """
SELECT n_live_tup, n_dead_tup, autovacuum_count,
       pg_size_pretty(pg_relation_size(relid)) AS heap,
       pg_size_pretty(pg_indexes_size(relid)) AS indexes
FROM pg_stat_user_tables WHERE relname = 'price_history'
"""


async def sizes(url: str) -> str:
    conn = await connect(url)
    try:
        row = await conn.fetchrow(_SIZES)
        rows = await conn.fetchval("SELECT count(*) FROM price_history")
    finally:
        await conn.close()
    return (
        f"rows={rows:<8} dead={row['n_dead_tup']:<7} heap={row['heap']:<8} "
        f"indexes={row['indexes']:<8} autovacuums={row['autovacuum_count']}"
    )


async def prepare(admin_url: str, urls: Sequence[str]) -> None:
    conn = await connect(admin_url)
    try:
        await conn.execute(f"ALTER SYSTEM SET autovacuum_naptime = '{NAPTIME}'")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()
    for url in urls:
        await upgrade(url)


async def run(label: str, url: str, count: int, cycles: int, pause: float) -> None:
    await seed(url, count)
    if label == "defaults":
        conn = await connect(url)
        try:
            await conn.execute(_RESET)
        finally:
            await conn.close()
    print(f"[{label}] seeded: {await sizes(url)}", flush=True)
    repo = TortoiseCryptoRepository()
    ids = list(range(1, count + 1))
    async with tortoise_session(url):
        with counting_statements() as sent:
            start = utc_now()
            for cycle in range(1, cycles + 1):
                sent.clear()
                # A second apart: only newer prices are recorded, and cycles are quicker.
                now = start + timedelta(seconds=cycle)
                updates = [PriceUpdate(i, {"usd": 1.0 + cycle}, now) for i in ids]
                await repo.record_prices(updates, HISTORY_LIMIT)
                trim = max(s for q, s in sent.sent if q.lstrip().startswith("DELETE"))
                if cycle % REPORT_EVERY == 0:
                    await asyncio.sleep(STATS_SETTLE_SECONDS)
                    print(
                        f"[{label}] cycle {cycle:>4}: {await sizes(url)} trim {ms(trim)}",
                        flush=True,
                    )
                await asyncio.sleep(pause)


def run_in_process(label: str, url: str, count: int, cycles: int, pause: float) -> None:
    asyncio.run(run(label, url, count, cycles, pause))


def main(argv: Sequence[str] = ()) -> None:
    count = int(argv[0]) if len(argv) > 0 else 1000
    cycles = int(argv[1]) if len(argv) > 1 else 200
    pause = float(argv[2]) if len(argv) > 2 else 0.5
    started = time.perf_counter()
    print(
        f"history bloat: {count} cryptos, {HISTORY_LIMIT} rows each, {cycles} cycles "
        f"{timedelta(seconds=pause)} apart, migrated autovacuum settings vs defaults"
    )
    pgdata = Path(tempfile.mkdtemp(prefix="cps_bloat_"))
    pgdata.chmod(0o777)  # run as root, the package runs the server as its own user
    try:
        urls = {label: start_embedded_postgres(pgdata, f"bloat_{label}") for label in SETTINGS}
        asyncio.run(prepare(start_embedded_postgres(pgdata, "postgres"), list(urls.values())))
        # One process each, so neither's event loop slows the other.
        processes = [
            multiprocessing.Process(target=run_in_process, args=(label, url, count, cycles, pause))
            for label, url in urls.items()
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
    finally:
        stop_embedded_postgres(pgdata)
        shutil.rmtree(pgdata, ignore_errors=True)
    print(f"history bloat done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
