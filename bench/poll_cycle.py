"""One poll cycle (PollCycle with the real repository and CoinGecko client) for
10 to 10,000 tracked cryptos whose history is already at the 100-row limit.

Prints, for each size: wall time per cycle (median of a few; the fetch and store
parts too), CoinGecko calls and SQL statements per cycle, and the table sizes after.
CoinGecko is the local stand-in (tests/fakes/coingecko_server.py), served in this
process's event loop, so its time is part of the fetch figure.

    python -m bench.poll_cycle              # every size
    python -m bench.poll_cycle 5000 10000   # just these
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from application.poll_cycle import PollCycle
from bench._support import (
    connect,
    counting_statements,
    median,
    ms,
    scratch_database,
    statement_label,
    table_sizes,
)
from domain.model import PriceUpdate, Quote
from infrastructure.clock import utc_now
from infrastructure.coingecko.call_budget import CallBudget
from infrastructure.coingecko.client import CoinGeckoClient
from infrastructure.db.repositories import TortoiseCryptoRepository
from tests.fakes.coingecko_server import FakeCoin, FakeCoinGecko
from tests.support.database import tortoise_session

SIZES = (10, 100, 1000, 5000, 10_000)
HISTORY_LIMIT = 100
WARMUP_CYCLES = 1
MEASURED_CYCLES = 5
STATS_SETTLE_SECONDS = 0.5

_SEED_CRYPTOS = """
INSERT INTO cryptos (symbol, coin_id, name, current_prices, last_updated)
SELECT 'B' || i, 'bench-coin-' || i, 'Bench Coin ' || i, jsonb_build_object('usd', 100.0 + i),
       now() - interval '1 day'
FROM generate_series(1, $1) AS i
"""

# HISTORY_LIMIT rows per crypto, older than any price a cycle records.
_SEED_HISTORY = """
INSERT INTO price_history (crypto_id, prices, ts)
SELECT c.id, jsonb_build_object('usd', (c.current_prices->>'usd')::float8 + k * 0.01),
       now() - interval '1 day' - k * interval '30 seconds'
FROM cryptos AS c CROSS JOIN generate_series(0, $1 - 1) AS k
"""


@dataclass
class TimedSource:
    """The CoinGecko client, timing its ``prices`` calls."""

    client: CoinGeckoClient
    seconds: list[float] = field(default_factory=list)

    async def find_coin(self, symbol: object) -> None:
        raise NotImplementedError("the poller never resolves tickers")

    async def prices(self, coin_ids: Sequence[str], *, wait: bool = False) -> dict[str, Quote]:
        started = time.perf_counter()
        try:
            return await self.client.prices(coin_ids, wait=wait)
        finally:
            self.seconds.append(time.perf_counter() - started)


@dataclass
class TimedRepository(TortoiseCryptoRepository):
    """The real repository, timing ``record_prices``."""

    seconds: list[float] = field(default_factory=list)

    async def record_prices(self, updates: Sequence[PriceUpdate], keep: int) -> set[int]:
        started = time.perf_counter()
        try:
            return await super().record_prices(updates, keep)
        finally:
            self.seconds.append(time.perf_counter() - started)


async def seed(url: str, count: int) -> None:
    conn = await connect(url)
    try:
        await conn.execute(_SEED_CRYPTOS, count)
        await conn.execute(_SEED_HISTORY, HISTORY_LIMIT)
        await conn.execute("VACUUM ANALYZE cryptos, price_history")
    finally:
        await conn.close()


@dataclass
class Figures:
    walls: list[float] = field(default_factory=list)
    gecko_calls: set[int] = field(default_factory=set)
    statements: set[tuple[int, int]] = field(default_factory=set)
    statement_seconds: dict[str, list[float]] = field(default_factory=dict)
    updated: set[tuple[int, int]] = field(default_factory=set)


async def run_cycles(
    url: str, gecko: FakeCoinGecko
) -> tuple[Figures, TimedSource, TimedRepository]:
    client = CoinGeckoClient(gecko.base_url, limiter=CallBudget(100_000))  # usd only
    source = TimedSource(client)
    repo = TimedRepository()
    poll = PollCycle(repo, source, utc_now, HISTORY_LIMIT)
    figures = Figures()
    try:
        async with tortoise_session(url):
            with counting_statements() as sent:
                for cycle in range(WARMUP_CYCLES + MEASURED_CYCLES):
                    # Every price moves each cycle, so every cycle records them all
                    # (an unchanged price would store nothing).
                    for coin in list(gecko.coins.values()):
                        gecko.set_price(coin.id, coin.price + 0.01)
                    gecko.clear_requests()
                    sent.clear()
                    started = time.perf_counter()
                    result = await poll()
                    wall = time.perf_counter() - started
                    if cycle < WARMUP_CYCLES:
                        continue
                    figures.walls.append(wall)
                    figures.gecko_calls.add(len(gecko.calls()))
                    figures.statements.add((sent.on_tables, sent.total))
                    figures.updated.add((result.updated, result.tracked))
                    for query, seconds in sent.sent:
                        label = statement_label(query)
                        figures.statement_seconds.setdefault(label, []).append(seconds)
    finally:
        await client.close()
    return figures, source, repo


async def measure(url: str, count: int) -> None:
    started = time.perf_counter()
    await seed(url, count)
    seeded_in = time.perf_counter() - started
    coins = [
        FakeCoin(f"bench-coin-{i}", f"b{i}", f"Bench Coin {i}", 200.0 + i)
        for i in range(1, count + 1)
    ]
    async with FakeCoinGecko(coins=coins) as gecko:
        figures, source, repo = await run_cycles(url, gecko)
    walls = figures.walls
    fetch = source.seconds[WARMUP_CYCLES:]
    store = repo.seconds[WARMUP_CYCLES:]
    print(
        f"--- {count} tracked cryptos, {HISTORY_LIMIT} history rows each "
        f"(seeded in {seeded_in:.1f} s)"
    )
    print(
        f"cycle wall time: median {ms(median(walls))}, min {ms(min(walls))}, "
        f"max {ms(max(walls))} over {len(walls)} cycles (after {WARMUP_CYCLES} warm-up); "
        f"{median(walls) / count * 1e6:.0f} us per crypto"
    )
    print(
        f"  fetch (CoinGecko client + stand-in) median {ms(median(fetch))}, "
        f"store (record_prices) median {ms(median(store))}"
    )
    print(f"coingecko calls per cycle: {sorted(figures.gecko_calls)}")
    print(
        "sql statements per cycle (naming app tables, all incl. transaction control): "
        f"{sorted(figures.statements)}"
    )
    for label, seconds in figures.statement_seconds.items():
        print(f"  {ms(median(seconds)):>10} median  {label}")
    print(f"cryptos updated per cycle (updated, tracked): {sorted(figures.updated)}")
    await asyncio.sleep(STATS_SETTLE_SECONDS)  # the closed pool's statistics arrive
    conn = await connect(url)
    try:
        print(f"table sizes after {WARMUP_CYCLES + MEASURED_CYCLES} cycles:")
        for line in await table_sizes(conn):
            print(f"  {line}")
    finally:
        await conn.close()


def main(argv: Sequence[str] = ()) -> None:
    sizes = [int(arg) for arg in argv] or SIZES
    started = time.perf_counter()
    print(
        f"poll cycle benchmark: history limit {HISTORY_LIMIT}, CoinGecko batch size 100 ids "
        "a call, a scratch database for each size"
    )
    for count in sizes:
        with scratch_database() as url:
            asyncio.run(measure(url, count))
    print(f"poll cycle benchmark done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
