"""Helpers shared by the benchmarks: timing figures, SQL statement counting, table sizes."""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from infrastructure.db.config import connect_kwargs
from tests.support.database import TABLES, fresh_database

SCRATCH_PREFIX = "cps_bench"
QUERY_METHODS = ("execute", "executemany", "fetch", "fetchrow", "fetchval")


@contextmanager
def scratch_database() -> Iterator[str]:
    """A new database, migrated with the committed migrations, dropped afterwards."""
    with fresh_database(SCRATCH_PREFIX) as url:
        yield url


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(math.ceil(q / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def statement_label(query: str) -> str:
    """A short name for a statement: its first words, whitespace collapsed."""
    words = " ".join(query.split())
    return words if len(words) <= 48 else words[:45] + "..."


@dataclass
class StatementLog:
    """Statements sent through asyncpg's query methods while counting, with the
    seconds each took (from the call to its answer)."""

    sent: list[tuple[str, float]] = field(default_factory=list)

    def clear(self) -> None:
        self.sent.clear()

    @property
    def total(self) -> int:
        return len(self.sent)

    @property
    def on_tables(self) -> int:
        """Those naming an application table (transaction control left out)."""
        return sum(any(table in query for table in TABLES) for query, _ in self.sent)


@contextmanager
def counting_statements() -> Iterator[StatementLog]:
    """Record every statement that reaches an asyncpg connection's query methods
    (from the models, Tortoise's raw SQL or a bare connection, pool proxies too)
    until the block ends; the original methods are put back afterwards."""
    log = StatementLog()
    originals = {name: getattr(asyncpg.connection.Connection, name) for name in QUERY_METHODS}

    def counting(original: Any) -> Any:
        async def method(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(self, query, *args, **kwargs)
            finally:
                log.sent.append((query, time.perf_counter() - started))

        return method

    for name, original in originals.items():
        setattr(asyncpg.connection.Connection, name, counting(original))
    try:
        yield log
    finally:
        for name, original in originals.items():
            setattr(asyncpg.connection.Connection, name, original)


_TABLE_SIZES = """
SELECT relname AS table_name,
       n_dead_tup AS dead_rows,
       pg_total_relation_size(relid) AS total_bytes,
       pg_size_pretty(pg_total_relation_size(relid)) AS total_size,
       pg_size_pretty(pg_relation_size(relid)) AS heap_size,
       pg_size_pretty(pg_indexes_size(relid)) AS index_size
FROM pg_stat_user_tables
WHERE relname = ANY($1::text[])
ORDER BY relname
"""


async def table_sizes(conn: asyncpg.Connection) -> list[str]:
    """One line per application table: exact row count, dead tuples (from the
    statistics; VACUUM clears them) and the on-disk size (heap, indexes and TOAST).
    Other backends send their statistics at most once a second and when they end:
    close the pools that wrote first, and read this a moment later."""
    lines = []
    for row in await conn.fetch(_TABLE_SIZES, list(TABLES)):
        rows = await conn.fetchval(f'SELECT count(*) FROM "{row["table_name"]}"')
        lines.append(
            f"{row['table_name']:<14} rows={rows:<8} "
            f"dead={row['dead_rows']:<8} total={row['total_size']:<9} "
            f"(heap {row['heap_size']}, indexes {row['index_size']})"
        )
    return lines


async def connect(url: str) -> asyncpg.Connection:
    """A plain asyncpg connection to ``url`` (seeding, sizes), outside any pool."""
    return await asyncpg.connect(**connect_kwargs(url))


# The read model's listening connections (infrastructure.read_model.live names them
# "cps-read-model <pid>") on one database, that have loaded the tracked set: idle
# after a statement other than their LISTEN (the load, then notifications' queries
# and heartbeats). The worker turns live in the same step that ends the load.
_LIVE_READ_MODELS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND application_name LIKE 'cps-read-model%'
  AND state = 'idle' AND query NOT ILIKE 'LISTEN%'
"""


async def wait_read_models(url: str, workers: int, seconds: float = 60.0) -> float:
    """Wait until ``workers`` read models on ``url``'s database are live (as above);
    returns the seconds it took. Reads are answered from memory from then on."""
    started = time.perf_counter()
    conn = await connect(url)
    try:
        while (live := await conn.fetchval(_LIVE_READ_MODELS)) < workers:
            if time.perf_counter() - started > seconds:
                raise SystemExit(f"{live} of {workers} read models went live in {seconds:.0f} s")
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    return time.perf_counter() - started


RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def hand_sections() -> list[str]:
    """The lines of bench/RESULTS.md's sections whose title ends in "(by hand)": notes
    written by people, which a new run keeps."""
    if not RESULTS.exists():
        return []
    kept: list[str] = []
    keeping = False
    for line in RESULTS.read_text().rstrip("\n").split("\n"):
        if line.startswith("## "):
            keeping = line.endswith("(by hand)")
        if keeping:
            kept.append(line)
    return [*kept, ""] if kept else []


def write_section(title: str, lines: Sequence[str]) -> None:
    """Put ``## title`` and ``lines`` into bench/RESULTS.md (written by bench.goals),
    in place of that section when it is there already, else at the end."""
    heading = f"## {title}"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    kept: list[str] = []
    skipping = False
    for line in text.rstrip("\n").split("\n"):
        if line.startswith("## "):
            skipping = line == heading
        if not skipping:
            kept.append(line)
    RESULTS.write_text("\n".join([*kept, "", heading, "", *lines, ""]) + "\n")
