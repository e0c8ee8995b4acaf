"""The HTTP API under load: the real server (``sanic ... --single-process``) as a child
process on a scratch database, the machine's Redis and the local CoinGecko stand-in.

Prints requests/s and p50/p95/p99 latency of GET /crypto, GET /crypto/{s}/history
and GET /crypto/{s}/stats at concurrency 1 and 32, of POST /auth/login (bcrypt cost
12) at concurrency 8, and the resident memory of each server process before and
after the load. The client runs on the same machine (and cores) as the server.

    python -m bench.api
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil
import redis.asyncio as redis

from bench._support import connect, percentile, scratch_database
from tests.fakes.coingecko_server import FakeCoin, FakeCoinGecko
from tests.support.live_server import free_port, sanic_command

REPO_ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = "redis://127.0.0.1:6379/0"
SYMBOLS = 20
HISTORY_ROWS = 100
REQUESTS = 2000  # per endpoint and concurrency, unless the run reaches RUN_SECONDS first
RUN_SECONDS = 6.0
CONCURRENCIES = (1, 32)
LOGIN_REQUESTS = 48
LOGIN_CONCURRENCY = 8
LOGIN_RUN_SECONDS = 20.0
START_SECONDS = 60.0
STOP_SECONDS = 30.0
USERNAME, PASSWORD = "bench-user", "bench password 1"

# Older rows, so each crypto holds HISTORY_ROWS with the one POST /crypto stored.
_SEED_HISTORY = """
INSERT INTO price_history (crypto_id, prices, ts)
SELECT c.id,
       (SELECT jsonb_object_agg(code, price::float8 * (1 + k * 0.001))
        FROM jsonb_each_text(c.current_prices) AS p(code, price)),
       c.last_updated - k * interval '30 seconds'
FROM cryptos AS c CROSS JOIN generate_series(1, $1 - 1) AS k
"""

Request = Callable[[aiohttp.ClientSession, int], Awaitable[int]]


@dataclass
class Run:
    label: str
    concurrency: int
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def line(self) -> str:
        done = len(self.latencies)
        lat = self.latencies
        failed = ", ".join(f"{k} x{v}" for k, v in sorted(self.failures.items())) or "none"
        return (
            f"{self.label:<28} c={self.concurrency:<3} n={done:<5} "
            f"{done / self.seconds:8.1f} req/s  p50 {percentile(lat, 50) * 1000:7.2f} ms  "
            f"p95 {percentile(lat, 95) * 1000:7.2f} ms  p99 {percentile(lat, 99) * 1000:7.2f} ms  "
            f"max {max(lat, default=float('nan')) * 1000:7.2f} ms  non-200: {failed}"
        )


async def load(
    base_url: str,
    label: str,
    request: Request,
    *,
    concurrency: int,
    total: int,
    seconds: float,
    warmup: int,
) -> Run:
    """``total`` requests from ``concurrency`` keep-alive connections, stopping early
    after ``seconds``; ``warmup`` unmeasured requests first open the connections."""
    run = Run(label, concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as session:
        counter = itertools.count()

        async def worker(limit: int, deadline: float, measured: bool) -> None:
            while time.perf_counter() < deadline and (i := next(counter)) < limit:
                started = time.perf_counter()
                try:
                    status = await request(session, i)
                except (aiohttp.ClientError, TimeoutError) as error:
                    run.failures[type(error).__name__] += 1
                    continue
                if not measured:
                    continue
                run.latencies.append(time.perf_counter() - started)
                if status != 200:
                    run.failures[str(status)] += 1

        warm_deadline = time.perf_counter() + seconds
        await asyncio.gather(*(worker(warmup, warm_deadline, False) for _ in range(concurrency)))
        run.failures.clear()
        counter = itertools.count()
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(worker(total, deadline, True) for _ in range(concurrency)))
        run.seconds = time.perf_counter() - started
    return run


def get(path_for: Callable[[int], str], token: str) -> Request:
    headers = {"Authorization": f"Bearer {token}"}

    async def request(session: aiohttp.ClientSession, i: int) -> int:
        async with session.get(path_for(i), headers=headers) as response:
            await response.read()
            return response.status

    return request


async def login(session: aiohttp.ClientSession, i: int) -> int:
    body = {"username": USERNAME, "password": PASSWORD}
    async with session.post("/auth/login", json=body) as response:
        await response.read()
        return response.status


def role_of(process: psutil.Process, main_pid: int, port: int) -> str:
    """What a process of the server's tree is: the server itself (one process), or a
    child of it such as the embedded PostgreSQL's."""
    if process.pid == main_pid:
        return "server"
    return " ".join(process.cmdline())[:40]


def memory_lines(pid: int, port: int) -> list[str]:
    """RSS and USS of the server's main process and each of its children."""
    try:
        main = psutil.Process(pid)
        processes = [main, *main.children(recursive=True)]
    except psutil.NoSuchProcess:
        return ["  (the server is gone)"]
    lines = []
    for process in processes:
        try:
            with process.oneshot():
                info = process.memory_full_info()
                role = role_of(process, pid, port)
        except psutil.NoSuchProcess:
            continue
        lines.append(
            f"  pid {process.pid:<7} {role:<38} rss {info.rss / 2**20:6.1f} MiB  "
            f"uss {info.uss / 2**20:6.1f} MiB"
        )
    return lines


async def wait_until_ready(
    base_url: str, process: asyncio.subprocess.Process, log_path: Path
) -> float:
    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession(base_url, timeout=timeout) as session:
        while time.perf_counter() - started < START_SECONDS:
            if process.returncode is not None:
                break
            try:
                async with session.get("/health/ready") as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.2)
    tail = (await asyncio.to_thread(log_path.read_text, errors="replace"))[-3000:]
    raise SystemExit(f"the server did not become ready (exit code {process.returncode}):\n{tail}")


async def stop_server(process: asyncio.subprocess.Process) -> str:
    if process.returncode is not None:
        return f"the server had exited already with code {process.returncode}"
    started = time.perf_counter()
    process.send_signal(signal.SIGINT)
    try:
        code = await asyncio.wait_for(process.wait(), STOP_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        return f"the server ignored SIGINT for {STOP_SECONDS:.0f} s and was killed"
    return f"SIGINT: the server exited with code {code} in {time.perf_counter() - started:.1f} s"


async def forget_keys(prefix: str) -> int:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        return len(keys)
    finally:
        await client.aclose()


async def prepare(base_url: str, database_url: str) -> tuple[str, list[str]]:
    """Register the user, track SYMBOLS cryptos through the API, and give each
    HISTORY_ROWS history rows; returns the token and the symbols."""
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(base_url, timeout=timeout) as session:
        started = time.perf_counter()
        body = {"username": USERNAME, "password": PASSWORD}
        async with session.post("/auth/register", json=body) as response:
            if response.status != 201:
                raise SystemExit(f"register: {response.status} {await response.text()}")
            token = (await response.json())["token"]
        registered_in = time.perf_counter() - started
        print(f"POST /auth/register (one bcrypt hash): {registered_in * 1000:.0f} ms")
        headers = {"Authorization": f"Bearer {token}"}
        symbols = [f"BCH{i}" for i in range(SYMBOLS)]
        started = time.perf_counter()
        for symbol in symbols:
            async with session.post(
                "/crypto", json={"symbol": symbol}, headers=headers
            ) as response:
                if response.status != 201:
                    raise SystemExit(f"add {symbol}: {response.status} {await response.text()}")
        added_in = time.perf_counter() - started
    each = added_in / SYMBOLS * 1000
    print(f"POST /crypto x{SYMBOLS} (one CoinGecko call each): {each:.1f} ms each")
    conn = await connect(database_url)
    try:
        await conn.execute(_SEED_HISTORY, HISTORY_ROWS)
        await conn.execute("VACUUM ANALYZE cryptos, price_history")
        rows = await conn.fetchval("SELECT count(*) FROM price_history")
    finally:
        await conn.close()
    print(f"seeded: {SYMBOLS} cryptos, {rows} history rows")
    return token, symbols


async def bench(
    base_url: str, port: int, database_url: str, process: asyncio.subprocess.Process
) -> None:
    token, symbols = await prepare(base_url, database_url)
    print("server memory before the load:")
    print("\n".join(memory_lines(process.pid, port)))
    endpoints = {
        "GET /crypto": get(lambda i: "/crypto", token),
        "GET /crypto/{s}/history": get(lambda i: f"/crypto/{symbols[i % SYMBOLS]}/history", token),
        "GET /crypto/{s}/stats": get(lambda i: f"/crypto/{symbols[i % SYMBOLS]}/stats", token),
    }
    print(
        f"load: {REQUESTS} requests per line (fewer when a line reaches {RUN_SECONDS:.0f} s), "
        "after a warm-up on the same keep-alive connections"
    )
    for label, request in endpoints.items():
        for concurrency in CONCURRENCIES:
            run = await load(
                base_url,
                label,
                request,
                concurrency=concurrency,
                total=REQUESTS,
                seconds=RUN_SECONDS,
                warmup=min(REQUESTS // 10, 20 * concurrency),
            )
            print(run.line(), flush=True)
    run = await load(
        base_url,
        "POST /auth/login (bcrypt 12)",
        login,
        concurrency=LOGIN_CONCURRENCY,
        total=LOGIN_REQUESTS,
        seconds=LOGIN_RUN_SECONDS,
        warmup=LOGIN_CONCURRENCY,
    )
    print(run.line())
    print("server memory after the load:")
    print("\n".join(memory_lines(process.pid, port)))


async def run(database_url: str) -> None:
    prefix = f"cps-bench-{uuid.uuid4().hex[:10]}:"
    coins = [
        FakeCoin(f"bench-coin-{i}", f"bch{i}", f"Bench Coin {i}", 100.0 + i, 1e9 - i, i + 1)
        for i in range(SYMBOLS)
    ]
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="cps-bench-") as data_dir:
        log_path = Path(data_dir) / "server.log"
        async with FakeCoinGecko(coins=coins) as gecko:
            env = {
                **os.environ,
                "DATABASE_URL": database_url,
                "COINGECKO_BASE_URL": gecko.base_url,
                "JWT_SECRET": "bench-only-secret-" + uuid.uuid4().hex + uuid.uuid4().hex,
                "BCRYPT_ROUNDS": "12",
                "PRICE_POLLER_ENABLED": "false",
                "REDIS_URL": REDIS_URL,
                "REDIS_KEY_PREFIX": prefix,
                "DATA_DIR": data_dir,
                "LOG_LEVEL": "WARNING",
            }
            command = sanic_command(port)
            print(f"server: {' '.join(command[1:])} (log: {log_path.name} in a temporary dir)")
            with log_path.open("wb") as log:
                process = await asyncio.create_subprocess_exec(
                    *command, cwd=REPO_ROOT, env=env, stdout=log, stderr=log
                )
                try:
                    ready_in = await wait_until_ready(base_url, process, log_path)
                    print(f"server ready in {ready_in:.1f} s")
                    await bench(base_url, port, database_url, process)
                finally:
                    print(await stop_server(process))
                    print(f"redis keys under {prefix} deleted: {await forget_keys(prefix)}")


def main() -> None:
    started = time.perf_counter()
    print(f"API benchmark: one server process, {os.cpu_count()} CPUs shared with the client")
    with scratch_database() as url:
        asyncio.run(run(url))
    print(f"API benchmark done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
