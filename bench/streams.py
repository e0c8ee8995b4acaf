"""Issue 7's other goals: the live stream, reads while logins hash, and the read
model's memory. Writes its section into bench/RESULTS.md (after bench.goals).

1. 1,000, then 5,000 SSE subscribers (``GET /crypto``, ``Accept: text/event-stream``)
   on one server process; once all have their snapshot, this process commits one
   price batch for the 100 cryptos (``TortoiseCryptoRepository.record_prices``, its
   NOTIFY included) and times, from right after the commit, when each subscriber has
   received all 100 ``price`` events. Goal: all within 1 s. The subscribers are
   parsed in this process, on the same 2 cores, so the delays include the client's
   own work. The server's memory per stream: its RSS growth from before the streams
   opened to when all had their snapshot, over their number (what
   STREAM_MAX_CLIENTS's default rests on).
2. ``GET /crypto/{symbol}`` p50 with wrk, idle and while 8 login loops run against
   the same worker at BCRYPT_ROUNDS=12. Goal: within twice the idle p50.
3. The read model at 10,000 cryptos x 100 history rows: a ``LiveReadModel`` loads
   them in this process from a scratch database; tracemalloc's figure (what it keeps)
   and the RSS growth, with QUOTE_CURRENCIES=usd and with usd,eur,gbp,btc (its own
   section, "Quote currencies: memory": the cost of each currency more). Budget:
   about 100 MiB per worker.

    python -m bench.streams
    python -m bench.streams memory   # only 3
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import psutil

from bench._support import connect, percentile, scratch_database, wait_read_models, write_section
from bench.api import forget_keys
from bench.goals import (
    CRYPTOS,
    SYMBOL,
    Servers,
    load_average,
    say,
    seed,
    seed_sql,
    server_env,
    wrk,
)
from domain.model import PriceUpdate, QuoteCurrencies
from infrastructure.db.repositories import TortoiseCryptoRepository
from infrastructure.read_model.live import LiveReadModel, Queries, _states
from infrastructure.read_model.store import TrackedSet
from tests.support.database import tortoise_session
from tests.support.live_server import free_port, sanic_command
from tests.support.read_models import went_live

SUBSCRIBERS = 1_000
# What one process is asked to carry (issue 14), and so STREAM_MAX_CLIENTS's default.
SUBSCRIBERS_AT_SCALE = 5_000
OPENING_AT_ONCE = 100  # connections being opened at a time (Sanic's backlog is 100)
STREAM_GOAL_SECONDS = 1.0
WAIT_SECONDS = 60.0
LOGIN_LOOPS = 8
LOGIN_ROUNDS = 12
READ_SECONDS = 10
BIG_CRYPTOS = 10_000
BIG_HISTORY = 100
MEMORY_BUDGET_MIB = 100
# What the memory scratch database holds (code, rate to usd), and the configurations
# its read model is measured in: the default alone, then four currencies.
SEEDED_CURRENCIES = (("usd", 1.0), ("eur", 0.92), ("gbp", 0.79), ("btc", 1 / 67000))
MEMORY_CONFIGURATIONS = (QuoteCurrencies.parse("usd"), QuoteCurrencies.parse("usd,eur,gbp,btc"))
CURRENCY_SECTION = "Quote currencies: memory (bench.streams)"
USERNAME, PASSWORD = "bench-login", "bench password 1"
PRICE_MARKER = b"event: price\n"
SNAPSHOT_MARKER = b"event: snapshot\n"


def raise_open_files(needed: int) -> str:
    """Lift this process's open-file limit (the servers it starts inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft < needed:
        raise SystemExit(f"RLIMIT_NOFILE is {soft} (hard {hard}); {needed} are needed")
    return f"RLIMIT_NOFILE {soft}"


class Subscriber:
    """One SSE connection, counting price events in the raw bytes (cheap enough for
    1,000 of them in one process)."""

    def __init__(self) -> None:
        self.snapshot = asyncio.Event()
        self.prices = 0
        self.expected = 0
        self.all_at: float | None = None
        self.done = asyncio.Event()
        self.failure: str | None = None

    async def run(
        self, session: aiohttp.ClientSession, url: str, token: str, opening: asyncio.Semaphore
    ) -> None:
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        try:
            async with opening:
                response = await session.get(url, headers=headers)
            async with response:
                if response.status != 200:
                    self.failure = f"HTTP {response.status}"
                    return
                pending = b""
                async for chunk in response.content.iter_any():
                    pending += chunk
                    if not self.snapshot.is_set():
                        at = pending.find(SNAPSHOT_MARKER)
                        end = pending.find(b"\n\n", at) if at >= 0 else -1
                        if end < 0:
                            continue
                        self.snapshot.set()
                        pending = pending[end + 2 :]
                    # Whole events only: a marker may be split across chunks.
                    cut = pending.rfind(b"\n\n")
                    if cut >= 0:
                        self.prices += pending.count(PRICE_MARKER, 0, cut)
                        pending = pending[cut + 2 :]
                    if self.expected and self.prices >= self.expected and self.all_at is None:
                        self.all_at = time.perf_counter()
                        self.done.set()
        except (aiohttp.ClientError, TimeoutError) as error:
            self.failure = f"{type(error).__name__}: {error}"
        finally:
            self.snapshot.set()
            self.done.set()


async def commit_prices(database_url: str) -> float:
    """One price batch for every tracked crypto, committed here; returns the
    perf_counter right after the commit."""
    conn = await connect(database_url)
    try:
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM cryptos ORDER BY id")]
    finally:
        await conn.close()
    now = datetime.now(UTC)
    updates = [PriceUpdate(crypto_id=i, prices={"usd": 200.0 + i * 0.5}, at=now) for i in ids]
    async with tortoise_session(database_url):
        repository = TortoiseCryptoRepository()
        # Opens the pool first, a second before the batch: only newer prices are recorded.
        await repository.record_prices([replace(updates[0], at=now - timedelta(seconds=1))], 100)
        started = time.perf_counter()
        updated = await repository.record_prices(updates, keep=100)
        committed = time.perf_counter()
    print(f"  record_prices for {len(updated)} cryptos took {(committed - started) * 1000:.1f} ms")
    return committed


def server_rss_mib(server: asyncio.subprocess.Process) -> float:
    return psutil.Process(server.pid).memory_info().rss / 2**20


async def stream_fan_out(
    base: str, token: str, database_url: str, server: asyncio.subprocess.Process, count: int
) -> list[str]:
    gc.collect()
    rss_before = server_rss_mib(server)
    subscribers = [Subscriber() for _ in range(count)]
    opening = asyncio.Semaphore(OPENING_AT_ONCE)
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        tasks = [
            asyncio.create_task(s.run(session, f"{base}/crypto", token, opening))
            for s in subscribers
        ]
        async with asyncio.timeout(WAIT_SECONDS):
            await asyncio.gather(*(s.snapshot.wait() for s in subscribers))
        failed = Counter(s.failure for s in subscribers if s.failure)
        if failed:
            raise SystemExit(f"subscribers failed before their snapshot: {dict(failed)}")
        opened = time.perf_counter() - started
        rss_open = server_rss_mib(server)
        per_stream_kib = (rss_open - rss_before) * 1024 / count
        print(
            f"  {count:,} subscribers have their snapshot after {opened:.1f} s; server RSS "
            f"{rss_before:.0f} -> {rss_open:.0f} MiB ({per_stream_kib:.1f} KiB a stream)"
        )
        for s in subscribers:
            s.expected = CRYPTOS
        committed = await commit_prices(database_url)
        try:
            async with asyncio.timeout(WAIT_SECONDS):
                await asyncio.gather(*(s.done.wait() for s in subscribers))
        except TimeoutError:
            pass
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    delays = [s.all_at - committed for s in subscribers if s.all_at is not None]
    missing = count - len(delays)
    extra = sum(1 for s in subscribers if s.prices > CRYPTOS)
    worst = max(delays, default=float("nan"))
    met = not missing and worst <= STREAM_GOAL_SECONDS
    line = (
        f"{len(delays):,} of {count:,} subscribers received all {CRYPTOS} `price` events; "
        f"delay from the commit: p50 {statistics.median(delays) * 1000:.0f} ms, "
        f"p99 {percentile(delays, 99) * 1000:.0f} ms, max {worst * 1000:.0f} ms "
        f"(goal: all within {STREAM_GOAL_SECONDS:.0f} s): **{'met' if met else 'not met'}**"
    )
    print(f"  {line}")
    return [
        f"- {line}. Subscribers with more than {CRYPTOS} price events: {extra}. "
        f"The {count:,} connections were opened ({OPENING_AT_ONCE} at a time) and had "
        f"their snapshot in {opened:.1f} s. Server RSS {rss_before:.0f} MiB before, "
        f"{rss_open:.0f} MiB with them open: **{per_stream_kib:.1f} KiB a stream**.",
    ]


async def register(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        body = {"username": USERNAME, "password": PASSWORD}
        async with session.post(f"{base}/auth/register", json=body) as response:
            if response.status != 201:
                raise SystemExit(f"register: {response.status} {await response.text()}")


async def login_loops(base: str, stop: asyncio.Event, answers: Counter[str]) -> float:
    """LOGIN_LOOPS clients logging in back to back until ``stop``; returns seconds."""
    body = {"username": USERNAME, "password": PASSWORD}

    async def loop(session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            async with session.post(f"{base}/auth/login", json=body) as response:
                await response.read()
                answers[str(response.status)] += 1

    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(loop(session) for _ in range(LOGIN_LOOPS)))
    return time.perf_counter() - started


async def reads_under_logins(base: str, token: str) -> list[str]:
    await register(base)
    url = f"{base}/crypto/{SYMBOL}"
    await wrk(url, token, 3, latency=False)
    idle = await wrk(url, token, READ_SECONDS)
    say("GET /crypto/{symbol}, idle", idle)
    stop = asyncio.Event()
    answers: Counter[str] = Counter()
    logins = asyncio.create_task(login_loops(base, stop, answers))
    await asyncio.sleep(2)  # every loop is hashing by now
    answers.clear()
    busy = await wrk(url, token, READ_SECONDS)
    done = sum(answers.values())
    stop.set()
    await logins
    say(f"GET /crypto/{{symbol}}, {LOGIN_LOOPS} logins", busy)
    ratio = busy.p50_ms / idle.p50_ms
    met = ratio <= 2 and not busy.errors
    statuses = ", ".join(f"{k} x{v}" for k, v in sorted(answers.items()))
    print(f"  logins during the run: {statuses} ({done / READ_SECONDS:.1f}/s)")
    return [
        f"- `GET /crypto/{{symbol}}` p50 idle: {idle.p50_ms:.2f} ms (p99 {idle.p99_ms:.2f} ms, "
        f"{idle.rps:,.0f} req/s); while {LOGIN_LOOPS} login loops ran at BCRYPT_ROUNDS="
        f"{LOGIN_ROUNDS}: {busy.p50_ms:.2f} ms (p99 {busy.p99_ms:.2f} ms, {busy.rps:,.0f} "
        f"req/s), {ratio:.2f}x idle (goal: within 2x): **{'met' if met else 'not met'}**. "
        f"Logins answered meanwhile: {statuses} (about {done / READ_SECONDS:.1f}/s). "
        f"wrk -t1 -c50, {READ_SECONDS} s each, one worker; errors: {busy.errors or 'none'}.",
    ]


async def servers_part(database_url: str) -> list[str]:
    secret = "bench-only-secret-" + uuid.uuid4().hex + uuid.uuid4().hex
    prefix = f"cps-bench-streams-{uuid.uuid4().hex[:10]}:"
    token = await seed(database_url, secret)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cps-bench-streams-") as data_dir:
        servers = Servers(Path(data_dir))
        env = {
            **server_env(database_url, secret, prefix, data_dir),
            "STREAM_MAX_CLIENTS": str(SUBSCRIBERS_AT_SCALE),
            "BCRYPT_ROUNDS": str(LOGIN_ROUNDS),
        }
        try:
            print(f"server: {' '.join(sanic_command(port)[1:])}, BCRYPT_ROUNDS={LOGIN_ROUNDS}")
            server = await servers.start("server", sanic_command(port), env, "/health/ready", port)
            print(f"  read model live after {await wait_read_models(database_url, 1):.1f} s")
            for count in (SUBSCRIBERS, SUBSCRIBERS_AT_SCALE):
                print(f"{count:,} stream subscribers:")
                lines += await stream_fan_out(base, token, database_url, server, count)
            print(f"reads while {LOGIN_LOOPS} logins run:")
            lines += await reads_under_logins(base, token)
            await servers.stop(server)
        finally:
            await servers.stop_all()
            print(f"redis keys under {prefix} deleted: {await forget_keys(prefix)}")
    return lines


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


async def load_model(database_url: str, currencies: QuoteCurrencies) -> LiveReadModel:
    async def no_sync(payload: str) -> None:
        return None

    model = LiveReadModel(database_url, BIG_HISTORY, currencies, notify=no_sync)
    await model.start()
    await went_live(model, within=300)
    return model


async def tracked_set_alone(url: str, currencies: QuoteCurrencies) -> float:
    """MiB tracemalloc counts for a ``TrackedSet`` loaded from the listener's own query
    and rows (``live.Queries``, ``live._states``), with the rows dropped afterwards."""
    base = tracemalloc.get_traced_memory()[0]
    codes = currencies.codes
    conn = await connect(url)
    try:
        load = Queries.build(len(codes)).load_page
        rows = await conn.fetch(load, BIG_HISTORY, *codes, 0, BIG_CRYPTOS)  # one page: all
    finally:
        await conn.close()
    store = TrackedSet(BIG_HISTORY, currencies)
    store.replace_all(_states(rows, codes))
    del rows
    gc.collect()
    kept = (tracemalloc.get_traced_memory()[0] - base) / 2**20
    del store
    return kept


@dataclass(frozen=True)
class ModelMemory:
    """What the read model of one currency configuration took (MiB)."""

    currencies: QuoteCurrencies
    loaded_in: float  # seconds
    rss_growth: float
    kept: float  # tracemalloc, LiveReadModel loaded
    peak: float
    read: float  # after every crypto's history and stats in every currency were read
    alone: float  # the TrackedSet alone


async def model_memory(url: str, currencies: QuoteCurrencies) -> ModelMemory:
    # RSS first, without tracemalloc (whose own bookkeeping would count in it).
    gc.collect()
    before = rss_mib()
    started = time.perf_counter()
    model = await load_model(url, currencies)
    loaded_in = time.perf_counter() - started
    gc.collect()
    rss_growth = rss_mib() - before
    await model.stop()
    del model
    gc.collect()
    tracemalloc.start()
    alone = await tracked_set_alone(url, currencies)
    gc.collect()
    tracemalloc.reset_peak()  # that load's own peak (all rows at once) is not the model's
    base = tracemalloc.get_traced_memory()[0]
    model = await load_model(url, currencies)
    gc.collect()
    kept = (tracemalloc.get_traced_memory()[0] - base) / 2**20
    peak = (tracemalloc.get_traced_memory()[1] - base) / 2**20
    # Then every crypto read once in every currency: history lists (kept for the 1,000
    # most recently read crypto and currency pairs) and stats (kept on each crypto).
    store = model.store
    for crypto in store.list():
        for code in currencies.codes:
            store.history(crypto.symbol, BIG_HISTORY, code)
            store.stats(crypto.symbol, None, code)
    gc.collect()
    read = (tracemalloc.get_traced_memory()[0] - base) / 2**20
    tracemalloc.stop()
    await model.stop()
    return ModelMemory(currencies, loaded_in, rss_growth, kept, peak, read, alone)


async def measure_memory() -> list[ModelMemory]:
    """The read model of BIG_CRYPTOS x BIG_HISTORY, in each of MEMORY_CONFIGURATIONS,
    on one scratch database holding every price in all of SEEDED_CURRENCIES."""
    with scratch_database() as url:
        conn = await connect(url)
        try:
            started = time.perf_counter()
            await conn.execute(seed_sql(BIG_CRYPTOS, BIG_HISTORY, dict(SEEDED_CURRENCIES)))
            await conn.execute("VACUUM ANALYZE cryptos, price_history")
            rows = await conn.fetchval("SELECT count(*) FROM price_history")
        finally:
            await conn.close()
        seeded_in = time.perf_counter() - started
        print(f"  seeded {BIG_CRYPTOS:,} cryptos, {rows:,} rows in {seeded_in:.1f} s")
        found = []
        for currencies in MEMORY_CONFIGURATIONS:
            # A process each: what one configuration made the allocator keep would hide
            # the next one's RSS growth.
            measured = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "bench.streams", "memory-of", str(currencies), url],
                capture_output=True,
                text=True,
                check=True,
                timeout=900,
            )
            fields = json.loads(measured.stdout.strip().splitlines()[-1])
            found.append(ModelMemory(currencies=currencies, **fields))
            print(f"  {currencies}: {found[-1]}")
        return found


def memory_lines(found: list[ModelMemory]) -> list[str]:
    """bench.streams' own read-model lines: the default configuration's figures."""
    one = found[0]
    met = max(one.kept, one.rss_growth, one.read) <= MEMORY_BUDGET_MIB
    alone_line = (
        f"The `TrackedSet` alone, loaded from the same query and rows, the rows then "
        f"dropped: tracemalloc {one.alone:.1f} MiB "
        f"({one.alone * 2**20 / BIG_CRYPTOS / 1024:.1f} KiB a crypto). The difference "
        f"({one.kept - one.alone:.1f} MiB) is what the running model keeps besides its set"
    )
    line = (
        f"The read model of {BIG_CRYPTOS:,} cryptos x {BIG_HISTORY} history rows in "
        f"{len(one.currencies.codes)} currency ({one.currencies}), loaded by "
        f"`LiveReadModel` in this process ({one.loaded_in:.1f} s): tracemalloc "
        f"{one.kept:.1f} MiB kept (peak {one.peak:.1f} MiB while loading), RSS "
        f"+{one.rss_growth:.1f} MiB; {one.read:.1f} MiB once every crypto's history and "
        f"stats were read (history lists kept for the 1,000 most recently read). Budget "
        f"about {MEMORY_BUDGET_MIB} MiB per worker: **{'met' if met else 'not met'}**"
    )
    return [
        f"- {line}. Not counted: the rendered JSON bodies the HTTP layer keeps "
        "(`interfaces/http/rendered.py`, at most 4,096 bodies).",
        f"- {alone_line}.",
        "- Per quote currency: see the section Quote currencies: memory.",
    ]


def currency_lines(found: list[ModelMemory]) -> list[str]:
    """The section "Quote currencies: memory": each configuration, and the cost of a
    currency more."""
    one, many = found[0], found[-1]
    extra = len(many.currencies.codes) - len(one.currencies.codes)
    lines = [
        f"The read model of {BIG_CRYPTOS:,} cryptos x {BIG_HISTORY} history rows (one "
        "scratch database holding every price in usd, eur, gbp and btc), loaded by "
        "`LiveReadModel` in a fresh process for each QUOTE_CURRENCIES below; tracemalloc "
        "and RSS growth, MiB.",
        "",
        "| QUOTE_CURRENCIES | loaded in | kept | peak while loading | after every history "
        "and stats read in every currency | `TrackedSet` alone | RSS growth |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in found:
        lines.append(
            f"| {m.currencies} | {m.loaded_in:.1f} s | {m.kept:.1f} | {m.peak:.1f} | "
            f"{m.read:.1f} | {m.alone:.1f} | {m.rss_growth:+.1f} |"
        )
    per_kept = (many.kept - one.kept) / extra
    per_alone = (many.alone - one.alone) / extra
    per_read = (many.read - one.read) / extra
    met = max(many.kept, many.read, many.rss_growth) <= MEMORY_BUDGET_MIB
    lines += [
        "",
        f"- Each currency more costs {per_kept:.1f} MiB kept (the set alone: {per_alone:.1f} "
        f"MiB, {per_alone * 2**20 / BIG_CRYPTOS / 1024:.2f} KiB a crypto, its array of "
        f"{BIG_HISTORY} doubles and the current price); once every crypto was read in it "
        f"too, {per_read:.1f} MiB (that, and its stats kept on each crypto: the history "
        "lists kept stay 1,000 pairs of crypto and currency, whatever the number of "
        "currencies).",
        f"- With {len(many.currencies.codes)} currencies the budget of about "
        f"{MEMORY_BUDGET_MIB} MiB per worker is **{'met' if met else 'not met'}**.",
        "- `python -m bench.streams memory` measures this alone.",
    ]
    return lines


async def run() -> list[str]:
    lines: list[str] = []
    with scratch_database() as url:
        lines += await servers_part(url)
    print(f"read model memory, {BIG_CRYPTOS:,} cryptos x {BIG_HISTORY} rows:")
    found = await measure_memory()
    write_section(CURRENCY_SECTION, currency_lines(found))
    return lines + memory_lines(found)


def memory_only() -> None:
    """``python -m bench.streams memory``: the read model's memory per quote currency."""
    print(f"read model memory, {BIG_CRYPTOS:,} cryptos x {BIG_HISTORY} rows:")
    lines = currency_lines(asyncio.run(measure_memory()))
    lines += ["", f"Load average after: {load_average()}; {os.cpu_count()} cores."]
    write_section(CURRENCY_SECTION, lines)
    print("\n".join(lines))
    print("written to bench/RESULTS.md")


def memory_of(codes: str, url: str) -> None:
    """``python -m bench.streams memory-of usd,eur URL``: one configuration's figures,
    as a JSON line (``measure_memory`` runs each in a process of its own)."""
    found = asyncio.run(model_memory(url, QuoteCurrencies.parse(codes)))
    print(json.dumps({k: v for k, v in asdict(found).items() if k != "currencies"}))


def main() -> None:
    if sys.argv[1:] == ["memory"]:
        memory_only()
        return
    if sys.argv[1:2] == ["memory-of"]:
        memory_of(*sys.argv[2:4])
        return
    print(raise_open_files(SUBSCRIBERS_AT_SCALE * 2 + 200))
    started = time.perf_counter()
    load_before = load_average()
    lines = asyncio.run(run())
    lines += [
        "",
        f"Load average before: {load_before}; after: {load_average()}. "
        f"{os.cpu_count()} cores shared by the server, PostgreSQL, wrk and this process. "
        f"bench.streams took {time.perf_counter() - started:.0f} s.",
    ]
    write_section("Stream, reads under logins, read model memory (bench.streams)", lines)
    print("\n".join(lines))
    print("written to bench/RESULTS.md")


if __name__ == "__main__":
    main()
