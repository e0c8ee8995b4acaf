"""The read goals of issue 7, measured from outside with wrk (its own process).

The real server (``sanic ... --single-process``) runs on a scratch database of the machine's
PostgreSQL, the machine's Redis under a key prefix of its own, with 100 tracked
cryptos of 100 history rows each (inserted with SQL). A bare Sanic app
(bench/_bare_app.py, the same sanic CLI, one process) answering a fixed crypto object
of the same bytes is measured in the same run, before and after the routes; each
route's requests/s is divided by the mean of the two. Everything listens on
127.0.0.1 only. Prints the table and writes it, with the machine, to bench/RESULTS.md.

    python -m bench.goals        (make bench installs wrk first when it is missing)
"""

from __future__ import annotations

import asyncio
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import psutil

from bench._support import RESULTS, connect, scratch_database, wait_read_models
from bench.api import REDIS_URL, forget_keys, stop_server
from infrastructure.security.tokens import JwtTokenService
from tests.support.live_server import free_port, sanic_command

REPO_ROOT = Path(__file__).resolve().parents[1]
CRYPTOS = 100
HISTORY_ROWS = 100
CONNECTIONS = 50
WARMUP_SECONDS = 3
RUN_SECONDS = 10
START_SECONDS = 60.0
SYMBOL = "BENCH0"
P99_GOAL_MS = 10.0
MEMORY_REQUESTS = 100_000  # the worker's size after warm-up vs after this many requests
MORE_SECONDS = 90  # the most the extra requests toward MEMORY_REQUESTS may take
# (label, path, goal: ratio of requests/s to bare Sanic's in the same run)
ROUTES = (
    ("GET /crypto/{symbol}", f"/crypto/{SYMBOL}", 0.70),
    (f"GET /crypto ({CRYPTOS} tracked)", "/crypto", 0.50),
    (f"GET /crypto/{{symbol}}/history ({HISTORY_ROWS} rows)", f"/crypto/{SYMBOL}/history", 0.50),
    ("GET /crypto/{symbol}/stats", f"/crypto/{SYMBOL}/stats", 0.70),
)


def seed_sql(cryptos: int, rows: int) -> str:
    """``cryptos`` cryptos BENCH0, BENCH1, ... with ``rows`` history rows each."""
    return f"""
INSERT INTO cryptos (symbol, coin_id, name, current_price, last_updated)
SELECT 'BENCH' || i, 'bench-coin-' || i, 'Bench Coin ' || i, 100.0 + i, now()
FROM generate_series(0, {cryptos - 1}) AS i;
INSERT INTO price_history (crypto_id, price, ts)
SELECT c.id, c.current_price * (1 + k * 0.001), c.last_updated - k * interval '30 seconds'
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


def worker_rss_mib(main_pid: int, port: int) -> float:
    """Resident memory of the server: one process (``--single-process``)."""
    try:
        return psutil.Process(main_pid).memory_info().rss / 2**20
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
    }


def row(label: str, run: Wrk, bare_rps: float, goal: float) -> str:
    """A line of the goals table; a run with errors meets no goal."""
    ratio = run.rps / bare_rps
    ratio_met = ratio >= goal and not run.errors
    p99_met = run.p99_ms < P99_GOAL_MS and not run.errors
    return (
        f"| `{label}` | {run.rps:,.0f} | **{ratio:.2f}** | ≥ {goal:.2f} | "
        f"{'met' if ratio_met else 'not met'} | {run.p50_ms:.2f} ms | **{run.p99_ms:.2f} ms** | "
        f"{'met' if p99_met else 'not met'} | {run.errors or 'none'} |"
    )


async def run(database_url: str, report: list[str]) -> None:
    secret = "bench-only-secret-" + uuid.uuid4().hex + uuid.uuid4().hex
    prefix = f"cps-bench-goals-{uuid.uuid4().hex[:10]}:"
    token = await seed(database_url, secret)
    port, bare_port = free_port(), free_port()
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
            bare_command = [
                sanic_command(port)[0],
                "bench._bare_app:app",
                *("--host", "127.0.0.1", "--port", str(bare_port), "--single-process"),
            ]
            print(f"bare Sanic: {' '.join(bare_command[1:])}, answering {len(body)} bytes")
            bare = await servers.start(
                "bare", bare_command, {**os.environ, "BENCH_BARE_BODY": body}, "/", bare_port
            )
            bare_url = f"http://127.0.0.1:{bare_port}/"
            print(f"wrk -t1 -c{CONNECTIONS}: {WARMUP_SECONDS} s warm-up, then {RUN_SECONDS} s")
            bare_before = await measure(bare_url, None, "bare Sanic (before)")
            # Every route warmed up before the first figure, so the worker's size after
            # the warm-up includes what each route's first requests allocate.
            for _, path, _ in ROUTES:
                await wrk(base + path, token, WARMUP_SECONDS, latency=False)
            rss_warm = worker_rss_mib(server.pid, port)
            runs: list[tuple[str, Wrk, float]] = []
            for label, path, goal in ROUTES:
                result = await wrk(base + path, token, RUN_SECONDS)
                say(label, result)
                runs.append((label, result, goal))
            served = sum(r.requests for _, r, _ in runs)
            if served < MEMORY_REQUESTS:
                # More of the first route until MEMORY_REQUESTS, at the rate it just ran.
                seconds = (MEMORY_REQUESTS - served) / runs[0][1].rps * 1.1
                more = await wrk(base + ROUTES[0][1], token, min(math.ceil(seconds), MORE_SECONDS))
                say(f"{ROUTES[0][0]}, to {MEMORY_REQUESTS:,} requests", more)
                served += more.requests
            rss_after = worker_rss_mib(server.pid, port)
            bare_after = await measure(bare_url, None, "bare Sanic (after)")
            await servers.stop(bare)
            await servers.stop(server)

        finally:
            await servers.stop_all()
            print(f"redis keys under {prefix} deleted: {await forget_keys(prefix)}")

    bare_rps = (bare_before.rps + bare_after.rps) / 2
    growth = (rss_after / rss_warm - 1) * 100
    memory_verdict = (
        f"not measured (only {served:,} requests were reached)"
        if served < MEMORY_REQUESTS
        else ("met" if abs(growth) <= 10 else "not met")
    )
    report += [
        "## Goals (one worker, wrk -t1 -c50, ratio to bare Sanic in the same run)",
        "",
        f"Bare Sanic (bench/_bare_app.py, answering the same {len(body)}-byte crypto object): "
        f"{bare_before.rps:,.0f} req/s before the routes and {bare_after.rps:,.0f} after "
        f"(p99 {bare_before.p99_ms:.2f} / {bare_after.p99_ms:.2f} ms); "
        f"ratios are to their mean, {bare_rps:,.0f} req/s.",
        "",
        "| request | req/s | ratio | goal | ratio met | p50 | p99 | p99 < 10 ms | errors |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | --- | --- |",
    ]
    report += [row(label, result, bare_rps, goal) for label, result, goal in runs]
    report += [
        "",
        "## Also measured",
        "",
        f"- Resident memory of the worker: {rss_warm:.1f} MiB after the warm-up, "
        f"{rss_after:.1f} MiB after {served:,} more requests ({growth:+.1f}%; goal: within "
        f"10% after {MEMORY_REQUESTS:,}): {memory_verdict}.",
        "",
        "Each server's read model was live (its listening connection idle after loading, "
        "in `pg_stat_activity`) before the first request, so every figure here is of reads "
        "from memory.",
        "",
        "The stream, the reads under bcrypt logins and the read model's memory at 10,000 "
        "cryptos: `python -m bench.streams`; the profile and what each change bought: "
        "`python -m bench.profile_reads` (sections below, when `make bench` ran them).",
    ]


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (make bench does it)")
    started = time.perf_counter()
    load_before = load_average()
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
    ]
    text = "\n".join(report)
    RESULTS.write_text(text)
    print()
    print(text)
    print(f"written to {RESULTS.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
