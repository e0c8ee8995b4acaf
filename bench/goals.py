"""The read goals of issue 12, measured from outside with wrk (its own process).

The real server (``sanic interfaces.http.app:create_app --factory --single-process``,
as deployed) runs on a scratch database of the machine's PostgreSQL, the machine's
Redis under a key prefix of its own, with 100 tracked cryptos of 100 history rows
each (inserted with SQL). A bare Sanic app (bench/_bare_app.py, the same sanic CLI,
one process) answers a fixed crypto object of the same bytes. The measure is in
ROUNDS rounds, each bare Sanic then every route; a route's requests/s and p99 are
taken to the bare run of its own round (the machine's load drifts between rounds,
less within one), and the verdict is on the median of the rounds. Each round ends
with a reference that decides nothing: the same bare app with sanic-ext loaded. Everything listens
on 127.0.0.1 only. Prints the table and writes it, with the machine, to
bench/RESULTS.md, keeping the sections whose title ends in "(by hand)".

    python -m bench.goals        (make bench installs wrk first when it is missing)
"""

from __future__ import annotations

import asyncio
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import psutil

from bench._support import RESULTS, connect, hand_sections, scratch_database, wait_read_models
from bench.api import REDIS_URL, forget_keys, stop_server
from infrastructure.security.tokens import JwtTokenService
from tests.support.live_server import free_port, sanic_command

REPO_ROOT = Path(__file__).resolve().parents[1]
CRYPTOS = 100
HISTORY_ROWS = 100
CONNECTIONS = 50
ROUNDS = 3
WARMUP_SECONDS = 3
RUN_SECONDS = 10
START_SECONDS = 60.0
SYMBOL = "BENCH0"
P99_GOAL_RATIO = 2.0  # a route's p99 at most this many times bare Sanic's, same round
MEMORY_REQUESTS = 100_000  # the server's size after warm-up vs after this many requests
# Every price in four currencies (issue 15): the default first, then the others at a
# fixed rate each, so a non-default read has the same numbers of digits to render.
CURRENCIES = {"usd": 1.0, "eur": 0.92, "gbp": 0.79, "btc": 1 / 45_000}
OTHER_CURRENCY = "eur"
CURRENCY_GOAL = 0.90  # a read in OTHER_CURRENCY: requests/s at least this of the default's
# (label, path, goal: ratio of requests/s to bare Sanic's in the same round)
DEFAULT_ROUTES = (
    ("GET /crypto/{symbol}", f"/crypto/{SYMBOL}", 0.70),
    (f"GET /crypto ({CRYPTOS} tracked)", "/crypto", 0.70),
    (f"GET /crypto/{{symbol}}/history ({HISTORY_ROWS} rows)", f"/crypto/{SYMBOL}/history", 0.70),
    ("GET /crypto/{symbol}/stats", f"/crypto/{SYMBOL}/stats", 0.70),
)
# Each read, then the same read in another configured currency right after it (so the
# machine's drift within a round weighs on neither of the pair).
ROUTES = tuple(
    route
    for label, path, goal in DEFAULT_ROUTES
    for route in (
        (label, path, goal),
        (f"{label} ?currency={OTHER_CURRENCY}", f"{path}?currency={OTHER_CURRENCY}", goal),
    )
)


def _prices_sql(usd: str, rates: Mapping[str, float]) -> str:
    """A jsonb object of the price ``usd`` (an SQL expression) in each of ``rates``' codes,
    each rounded to 6 significant digits: every currency's numbers then take as many
    bytes to send (a usd 100.0 beside an unrounded eur 92.00000000000001 would make the
    eur bodies, not the eur reads, slower)."""

    def rounded(value: str) -> str:
        return f"round(({value})::numeric, 5 - floor(log(({value})::numeric))::int)"

    pairs = ", ".join(f"'{code}', {rounded(f'({usd}) * {rate!r}')}" for code, rate in rates.items())
    return f"jsonb_build_object({pairs})"


def seed_sql(cryptos: int, rows: int, rates: Mapping[str, float] = CURRENCIES) -> str:
    """``cryptos`` cryptos BENCH0, BENCH1, ... with ``rows`` history rows each, 0.1%
    apart, each observation priced in every code of ``rates`` (code -> its price of one
    usd; usd must be one)."""
    now = _prices_sql("100.0 + i", rates)
    older = _prices_sql("(c.current_prices->>'usd')::float8 * (1 + k * 0.001)", rates)
    return f"""
INSERT INTO cryptos (symbol, coin_id, name, current_prices, last_updated)
SELECT 'BENCH' || i, 'bench-coin-' || i, 'Bench Coin ' || i, {now}, now()
FROM generate_series(0, {cryptos - 1}) AS i;
INSERT INTO price_history (crypto_id, prices, ts)
SELECT c.id, {older},
       c.last_updated - k * interval '30 seconds'
FROM cryptos AS c CROSS JOIN generate_series(0, {rows - 1}) AS k;
"""


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


@dataclass(frozen=True)
class Wrk:
    """What one measured wrk run reported."""

    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: str  # non-2xx answers and socket errors, "" when none

    @classmethod
    def parse(cls, output: str) -> Wrk:
        def latency(percent: str) -> float:
            found = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.M)
            if not found:
                raise SystemExit(f"no {percent}% latency in wrk's output:\n{output}")
            return float(found[1]) * _UNITS[found[2]]

        rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
        total = re.search(r"^\s*(\d+) requests in", output, re.M)
        if not rps or not total:
            raise SystemExit(f"unexpected wrk output:\n{output}")
        errors = [
            line.strip()
            for line in output.splitlines()
            if line.strip().startswith(("Non-2xx", "Socket errors"))
        ]
        return cls(int(total[1]), float(rps[1]), latency("50"), latency("99"), "; ".join(errors))


async def wrk(url: str, token: str | None, seconds: int, *, latency: bool = True) -> Wrk:
    """One wrk run; its figures are parsed only when ``latency`` (the measured runs)."""
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    if latency:
        command.append("--latency")
    process = await asyncio.create_subprocess_exec(
        *command, url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output = (await process.communicate())[0].decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"wrk failed ({process.returncode}): {output}")
    return Wrk.parse(output) if latency else Wrk(0, 0.0, 0.0, 0.0, "")


async def measure(url: str, token: str | None, label: str) -> Wrk:
    """A warm-up (as many connections, discarded), then the measured run."""
    await wrk(url, token, WARMUP_SECONDS, latency=False)
    result = await wrk(url, token, RUN_SECONDS)
    say(label, result)
    return result


def say(label: str, result: Wrk) -> None:
    print(
        f"  {label:<40} {result.rps:9,.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
        f"p99 {result.p99_ms:6.2f} ms  errors: {result.errors or 'none'}",
        flush=True,
    )


def rss_mib(pid: int) -> float:
    """Resident memory of the server (one process: the sanic CLI serves in itself)."""
    try:
        return psutil.Process(pid).memory_info().rss / 2**20
    except psutil.NoSuchProcess:
        return float("nan")


def machine() -> dict[str, str]:
    model = "unknown"
    with Path("/proc/cpuinfo").open() as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return {
        "CPU": model,
        "cores (logical)": str(os.cpu_count()),
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "OS": platform.platform(),
        "Python": sys.version.split()[0],
        "wrk": (wrk_version.stdout or wrk_version.stderr).splitlines()[0].strip(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min)"


async def wait_ready(url: str, process: asyncio.subprocess.Process, log_path: Path) -> None:
    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while time.perf_counter() - started < START_SECONDS and process.returncode is None:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.2)
    tail = (await asyncio.to_thread(log_path.read_text, errors="replace"))[-3000:]
    raise SystemExit(f"{url} did not become ready (exit code {process.returncode}):\n{tail}")


class Servers:
    """Child processes started with the sanic CLI, each logging to a file of its own,
    all stopped (SIGINT, then kill) when the block ends."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: list[asyncio.subprocess.Process] = []

    async def start(
        self, name: str, command: list[str], env: dict[str, str], ready_path: str, port: int
    ) -> asyncio.subprocess.Process:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                *command, cwd=REPO_ROOT, env=env, stdout=log, stderr=log
            )
        self.running.append(process)
        await wait_ready(f"http://127.0.0.1:{port}{ready_path}", process, log_path)
        return process

    async def stop(self, process: asyncio.subprocess.Process) -> None:
        print(f"  {await stop_server(process)}")
        self.running.remove(process)

    async def stop_all(self) -> None:
        for process in list(self.running):
            await self.stop(process)


async def seed(database_url: str, secret: str) -> str:
    """The cryptos, their history and one user; returns a token of that user."""
    conn = await connect(database_url)
    try:
        # The hash is never checked: the benchmark only reads, with a token.
        user_id = await conn.fetchval(
            "INSERT INTO users (username, password_hash) VALUES ('bench-user', '-') RETURNING id"
        )
        await conn.execute(seed_sql(CRYPTOS, HISTORY_ROWS))
        await conn.execute("VACUUM ANALYZE cryptos, price_history, users")
    finally:
        await conn.close()
    return JwtTokenService(secret, 3600).issue(user_id)


def server_env(database_url: str, secret: str, prefix: str, data_dir: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        # Reads never call CoinGecko; nothing listens there, so nothing leaves the machine.
        "COINGECKO_BASE_URL": f"http://127.0.0.1:{free_port()}",
        "JWT_SECRET": secret,
        "PRICE_POLLER_ENABLED": "false",
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": prefix,
        "DATA_DIR": data_dir,
        "LOG_LEVEL": "WARNING",
        "HISTORY_LIMIT": str(HISTORY_ROWS),
        "QUOTE_CURRENCIES": ",".join(CURRENCIES),
    }


def bare_command(port: int) -> list[str]:
    """The baseline, the same way: Sanic's CLI, one process."""
    return sanic_command(port, "bench._bare_app:app", factory=False)


@dataclass(frozen=True)
class Round:
    """One round: bare Sanic, then each route, back to back."""

    bare: Wrk
    routes: list[Wrk]
    extended: Wrk  # the reference: the same app with sanic-ext's defaults


@dataclass(frozen=True)
class Verdict:
    """A route over every round: each figure taken to bare Sanic's of its own round."""

    label: str
    rps_ratios: list[float]
    p99_ratios: list[float]
    runs: list[Wrk]
    goal: float
    extended_ratios: list[float]  # requests/s to the reference's, each round

    @classmethod
    def of(cls, index: int, label: str, goal: float, rounds: Sequence[Round]) -> Verdict:
        runs = [r.routes[index] for r in rounds]
        return cls(
            label,
            [run.rps / r.bare.rps for run, r in zip(runs, rounds, strict=True)],
            [run.p99_ms / r.bare.p99_ms for run, r in zip(runs, rounds, strict=True)],
            runs,
            goal,
            [run.rps / r.extended.rps for run, r in zip(runs, rounds, strict=True)],
        )

    @property
    def errors(self) -> str:
        return "; ".join(run.errors for run in self.runs if run.errors)

    @property
    def ratio(self) -> float:
        return statistics.median(self.rps_ratios)

    @property
    def p99_ratio(self) -> float:
        return statistics.median(self.p99_ratios)

    @property
    def ratio_met(self) -> bool:  # a run with errors meets no goal
        return self.ratio >= self.goal and not self.errors

    @property
    def p99_met(self) -> bool:
        return self.p99_ratio <= P99_GOAL_RATIO and not self.errors

    def row(self) -> str:
        def each(values: list[float]) -> str:
            return " / ".join(f"{v:.2f}" for v in values)

        rps = statistics.median(run.rps for run in self.runs)
        p99 = statistics.median(run.p99_ms for run in self.runs)
        return (
            f"| `{self.label}` | {rps:,.0f} | {each(self.rps_ratios)} | **{self.ratio:.2f}** | "
            f"≥ {self.goal:.2f} | {'met' if self.ratio_met else 'not met'} | {p99:.2f} ms | "
            f"{each(self.p99_ratios)} | **{self.p99_ratio:.2f}** | "
            f"{'met' if self.p99_met else 'not met'} | "
            f"{statistics.median(self.extended_ratios):.2f} | {self.errors or 'none'} |"
        )


def currency_row(index: int, label: str, rounds: Sequence[Round]) -> str:
    """DEFAULT_ROUTES[index] in OTHER_CURRENCY to the same read in the default currency,
    round by round (ROUTES holds them side by side)."""
    default, other = 2 * index, 2 * index + 1
    ratios = [r.routes[other].rps / r.routes[default].rps for r in rounds]
    errors = [r.routes[i].errors for r in rounds for i in (default, other) if r.routes[i].errors]
    ratio = statistics.median(ratios)
    met = ratio >= CURRENCY_GOAL and not errors
    return (
        f"| `{label}` | {' / '.join(f'{v:.2f}' for v in ratios)} | **{ratio:.3f}** | "
        f"≥ {CURRENCY_GOAL:.2f} | {'met' if met else 'not met'} | {'; '.join(errors) or 'none'} |"
    )


async def measure_rounds(bare_url: str, extended_url: str, base: str, token: str) -> list[Round]:
    rounds = []
    for number in range(1, ROUNDS + 1):
        print(f"round {number} of {ROUNDS}:")
        bare = await measure(bare_url, None, "bare Sanic")
        routes = [await measure(base + path, token, label) for label, path, _ in ROUTES]
        extended = await measure(extended_url, None, "Sanic with sanic-ext's defaults")
        rounds.append(Round(bare, routes, extended))
    return rounds


async def run(database_url: str, report: list[str]) -> None:
    secret = "bench-only-secret-" + uuid.uuid4().hex + uuid.uuid4().hex
    prefix = f"cps-bench-goals-{uuid.uuid4().hex[:10]}:"
    token = await seed(database_url, secret)
    port, bare_port, extended_port = free_port(), free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="cps-bench-goals-") as data_dir:
        servers = Servers(Path(data_dir))
        env = server_env(database_url, secret, prefix, data_dir)
        try:
            print(f"server: {' '.join(sanic_command(port)[1:])}")
            server = await servers.start("server", sanic_command(port), env, "/health/ready", port)
            print(f"  read model live after {await wait_read_models(database_url, 1):.1f} s")
            async with aiohttp.ClientSession() as session:
                headers = {"Authorization": f"Bearer {token}"}
                async with session.get(f"{base}/crypto/{SYMBOL}", headers=headers) as response:
                    if response.status != 200:
                        raise SystemExit(f"GET /crypto/{SYMBOL}: {response.status}")
                    body = await response.text()
            print(
                f"bare Sanic: {' '.join(bare_command(bare_port)[1:])}, answering {len(body)} bytes"
            )
            bare_env = {**os.environ, "BENCH_BARE_BODY": body}
            bare = await servers.start("bare", bare_command(bare_port), bare_env, "/", bare_port)
            extended = await servers.start(
                "extended",
                bare_command(extended_port),
                {**bare_env, "BENCH_BARE_EXTEND": "1"},
                "/",
                extended_port,
            )
            print(
                f"wrk -t1 -c{CONNECTIONS}, each run {WARMUP_SECONDS} s of warm-up then "
                f"{RUN_SECONDS} s measured; {ROUNDS} rounds of bare Sanic, each route, then "
                "the reference"
            )
            # Every route warmed up before the first figure, so the server's size then
            # includes what each route's first requests allocate.
            for _, path, _ in ROUTES:
                await wrk(base + path, token, WARMUP_SECONDS, latency=False)
            rss_warm = rss_mib(server.pid)
            rounds = await measure_rounds(
                f"http://127.0.0.1:{bare_port}/", f"http://127.0.0.1:{extended_port}/", base, token
            )
            served = sum(run.requests for r in rounds for run in r.routes)
            rss_after = rss_mib(server.pid)
            await servers.stop(bare)
            await servers.stop(extended)
            await servers.stop(server)
        finally:
            await servers.stop_all()
            print(f"redis keys under {prefix} deleted: {await forget_keys(prefix)}")

    verdicts = [Verdict.of(i, label, goal, rounds) for i, (label, _, goal) in enumerate(ROUTES)]
    currency_rows = [
        currency_row(i, label, rounds) for i, (label, _, _) in enumerate(DEFAULT_ROUTES)
    ]
    growth = (rss_after / rss_warm - 1) * 100
    memory_verdict = (
        f"not measured (only {served:,} requests were reached)"
        if served < MEMORY_REQUESTS
        else ("met" if abs(growth) <= 10 else "not met")
    )
    bare_rps = ", ".join(f"{r.bare.rps:,.0f}" for r in rounds)
    bare_p99 = ", ".join(f"{r.bare.p99_ms:.2f}" for r in rounds)
    report += [
        f"## Goals (one process, wrk -t1 -c{CONNECTIONS}, median of {ROUNDS} rounds, "
        "each taken to bare Sanic in its own round)",
        "",
        f"Bare Sanic (bench/_bare_app.py, `--single-process`, answering the same "
        f"{len(body)}-byte crypto object) in rounds 1 to {ROUNDS}: {bare_rps} req/s, "
        f"p99 {bare_p99} ms. Each round measures bare Sanic, then each read (each of the "
        f"four in the default currency, then the same with `?currency={OTHER_CURRENCY}`), "
        f"{RUN_SECONDS} s each after {WARMUP_SECONDS} s of warm-up; a route's ratios are "
        "to the bare run of the same round, and the verdict is on their median. Last in "
        "each round, for reference, the same bare app with sanic-ext loaded as Sanic does "
        "by itself when it is installed (`BENCH_BARE_EXTEND=1`: its injection signal and "
        "CORS middleware on every request; the baseline of the measures before issue 12): "
        f"{', '.join(f'{r.extended.rps:,.0f}' for r in rounds)} req/s; the second to last "
        "column is each route's median ratio to it.",
        "",
        "| request | req/s (median) | ratio each round | ratio (median) | goal | ratio met "
        "| p99 (median) | p99 / bare p99 each round | median | ≤ 2x "
        "| ratio to Sanic + sanic-ext | errors |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | ---: | --- |",
        *(verdict.row() for verdict in verdicts),
        "",
        f"## Reads in another currency (`QUOTE_CURRENCIES={','.join(CURRENCIES)}`)",
        "",
        f"Each read with `?currency={OTHER_CURRENCY}` taken to the same read in the default "
        f"currency ({next(iter(CURRENCIES))}) of the same round; goal: at least "
        f"{CURRENCY_GOAL:.2f} (within 10%).",
        "",
        "| request | ratio to the default's each round | median | goal | met | errors |",
        "| --- | ---: | ---: | ---: | --- | --- |",
        *currency_rows,
        "",
        "## Also measured",
        "",
        f"- Resident memory of the server: {rss_warm:.1f} MiB after the warm-up, "
        f"{rss_after:.1f} MiB after {served:,} more requests ({growth:+.1f}%; goal: within "
        f"10% after {MEMORY_REQUESTS:,}): {memory_verdict}.",
        "",
        "The server's read model was live (its listening connection idle after loading, "
        "in `pg_stat_activity`) before the first request, so every figure here is of reads "
        "from memory.",
        "",
        "The stream, the reads under bcrypt logins and the read model's memory at 10,000 "
        "cryptos: `python -m bench.streams`; the profile: `python -m bench.profile_reads` "
        "(sections below, when `make bench` ran them).",
    ]


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (make bench does it)")
    started = time.perf_counter()
    load_before = load_average()
    kept = hand_sections()
    report = [
        "# Benchmark results",
        "",
        "Written by `make bench`: `python -m bench.goals`, then the sections of "
        "`bench.profile_reads` and `bench.streams`.",
        "",
    ]
    report += ["## Machine", ""]
    report += [f"- {name}: {value}" for name, value in machine().items()]
    cores = os.cpu_count() or 1
    busy = os.getloadavg()[0] > cores / 2
    report.append(f"- load average before the run: {load_before}")
    tail: list[str] = []
    with scratch_database() as url:
        asyncio.run(run(url, tail))
    report.append(f"- load average at the end: {load_average()}")
    report += [
        "",
        (
            f"The 1-minute load average was above half of the {cores} cores before the run "
            "started: other work was competing for the CPU, so these figures are lower and "
            "noisier than an idle machine's."
            if busy
            else "The machine was mostly idle before the run started."
        )
        + " wrk, the server, PostgreSQL and Redis share the same cores.",
        "",
        *tail,
        "",
        f"bench.goals took {timedelta(seconds=round(time.perf_counter() - started))}.",
        "",
        *kept,
    ]
    text = "\n".join(report)
    RESULTS.write_text(text)
    print()
    print(text)
    print(f"written to {RESULTS.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
