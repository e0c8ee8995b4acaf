"""Where a read's time goes, before and after issue 12's request path, and next to bare
Sanic's. Writes its sections into bench/RESULTS.md.

- Before and after, in the same run on the same seeded scratch database: the server
  at BEFORE_COMMIT (main before issue 12's request path), extracted with
  ``git archive`` and put first on PYTHONPATH, and the server of this checkout, each
  one process with its read model live; wrk measures the four routes of bench.goals,
  and py-spy samples the server for PROFILE_SECONDS while wrk loads
  ``GET /crypto/{symbol}``; the top frames are summarised. Then bare Sanic
  (bench/_bare_app.py) under py-spy the same way: what the framework alone spends.
- In this process: one token check without and with the cache, one crypto read from
  the database and from the read model's set, and one body rendered and kept.

    python -m bench.profile_reads        (py-spy: pip install py-spy; make bench does it)"""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import timeit
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sanic.helpers import json_dumps

from bench._support import scratch_database, wait_read_models, write_section
from bench.api import forget_keys
from bench.goals import (
    ROUTES,
    SYMBOL,
    WARMUP_SECONDS,
    Servers,
    Wrk,
    bare_command,
    load_average,
    say,
    seed,
    server_env,
    wrk,
)
from domain.model import Crypto, PricePoint, QuoteCurrencies, Ticker
from infrastructure.db.repositories import TortoiseCryptoRepository
from infrastructure.read_model.live import LiveReadModel
from infrastructure.security.token_cache import CachingTokenService
from infrastructure.security.tokens import JwtTokenService
from interfaces.http.presenters import crypto_json, history_json
from interfaces.http.rendered import RenderedBodies
from tests.support.database import tortoise_session
from tests.support.live_server import free_port, sanic_command
from tests.support.read_models import went_live

REPO_ROOT = Path(__file__).resolve().parents[1]
BEFORE_COMMIT = "43323f7"  # main before issue 12's request path
RUN_SECONDS = 10
PROFILE_SECONDS = 8
PROFILE_RATE = 100  # samples a second; each pauses the worker (whole stacks, no tearing)
TOP_FRAMES = 12
READS = 2_000  # sequential reads per figure in this process
_LINE = re.compile(r":\d+\)$")
_STARTUP = (
    "(<string>)",
    "(multiprocessing/process.py)",
    "(multiprocessing/spawn.py)",
    "(sanic/server/runners.py)",
    "(sanic/worker/serve.py)",
)


def py_spy() -> str:
    found = Path(sys.executable).with_name("py-spy")
    command = str(found) if found.exists() else shutil.which("py-spy")
    if not command:
        raise SystemExit("py-spy is not installed: pip install py-spy (make bench does it)")
    return command


def extract(commit: str, into: Path) -> str:
    """The source tree at ``commit`` under ``into``; returns its full hash."""
    full = subprocess.run(
        ["git", "rev-parse", commit], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", full], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return full


def frame_name(frame: str) -> str:
    """``function (path:line)`` without the line, the path from the package on."""
    frame = _LINE.sub(")", frame)
    for marker in ("site-packages/", "python3.11/", str(REPO_ROOT) + "/", "/tmp/"):
        head, found, tail = frame.partition(marker)
        if found:
            name = head.split(" (")[0]
            return f"{name} ({tail.split('/', 1)[-1] if marker == '/tmp/' else tail}"
    return frame


def summarise(collapsed: str) -> list[str]:
    """Inclusive and self shares of the event loop thread's samples, per function,
    from py-spy's raw (collapsed stack) output; other threads' samples apart."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    others: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame_name(f) for f in stack.split(";")]
        if frames[0].startswith("Thread._bootstrap"):  # not the main thread
            others[frames[-1]] += count
            continue
        total += count
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
    if not total:
        return ["(no samples)"]
    # Frames on (nearly) every sample, the process's and the server's start, say nothing.
    shown = [
        (name, n)
        for name, n in inclusive.most_common()
        if n < 0.95 * total and not name.endswith(_STARTUP)
    ][:TOP_FRAMES]
    lines = [f"{total} samples of the event loop's thread; inclusive (with what it called):"]
    lines += [f"{n / total:6.1%}  {name}" for name, n in shown]
    lines.append("self (the function's own code):")
    lines += [f"{n / total:6.1%}  {name}" for name, n in own.most_common(TOP_FRAMES // 2)]
    if others:
        top = ", ".join(f"{name} {n}" for name, n in others.most_common(3))
        lines.append(f"other threads: {sum(others.values())} samples ({top})")
    return lines


async def profile(pid: int, url: str, token: str | None, out: Path) -> tuple[Wrk, list[str]]:
    """wrk on ``url`` while py-spy samples ``pid`` for PROFILE_SECONDS of it."""
    load = asyncio.create_task(wrk(url, token, RUN_SECONDS))
    await asyncio.sleep(1)
    spy = await asyncio.create_subprocess_exec(
        *(py_spy(), "record", "--pid", str(pid), "--duration", str(PROFILE_SECONDS)),
        *("--rate", str(PROFILE_RATE), "--format", "raw", "--output", str(out)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    spied = (await spy.communicate())[0].decode(errors="replace")
    result = await load
    if spy.returncode != 0:
        return result, [f"py-spy failed ({spy.returncode}): {spied.strip()[-500:]}"]
    return result, summarise(await asyncio.to_thread(out.read_text))


async def measure_server(
    name: str,
    command: list[str],
    env: dict[str, str],
    port: int,
    token: str,
    servers: Servers,
    read_model_of: str | None,
) -> tuple[list[tuple[str, Wrk]], Wrk, list[str]]:
    """The routes, then the profile; with ``read_model_of`` (its database URL), once
    the server's read model is live."""
    base = f"http://127.0.0.1:{port}"
    server = await servers.start(name, command, env, "/health/ready", port)
    try:
        if read_model_of is not None:
            live_in = await wait_read_models(read_model_of, 1)
            print(f"  {name}: read model live {live_in:.1f} s after /health/ready")
        for _, path, _ in ROUTES:
            await wrk(base + path, token, WARMUP_SECONDS, latency=False)
        runs = []
        for label, path, _ in ROUTES:
            result = await wrk(base + path, token, RUN_SECONDS)
            say(f"{name}: {label}", result)
            runs.append((label, result))
        out = Path(servers.log_dir) / f"{name}.collapsed"
        # One process: the sanic CLI serves in itself.
        loaded, frames = await profile(server.pid, base + ROUTES[0][1], token, out)
        say(f"{name}: {ROUTES[0][0]} under py-spy", loaded)
        print("\n".join(f"  {line}" for line in frames))
    finally:
        await servers.stop(server)
    return runs, loaded, frames


def per_call_us(call: Callable[[], Any], number: int = 20_000) -> float:
    """Microseconds a call, the best of five rounds of ``number``."""
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6


async def per_read_us(read: Callable[[], Any]) -> float:
    started = time.perf_counter()
    for _ in range(READS):
        await read()
    return (time.perf_counter() - started) / READS * 1e6


async def in_process(database_url: str, secret: str) -> Parts:
    """The parts, each timed alone in this process."""
    tokens = JwtTokenService(secret, 3600)
    token = tokens.issue(1)
    cached = CachingTokenService(tokens)
    cached.verify(token)
    decode_us = per_call_us(lambda: tokens.verify(token))
    hit_us = per_call_us(lambda: cached.verify(token))

    ticker = Ticker(SYMBOL)
    async with tortoise_session(database_url):
        repository = TortoiseCryptoRepository()
        await repository.get(ticker)
        orm_get_us = await per_read_us(lambda: repository.get(ticker))
        orm_history_us = await per_read_us(lambda: repository.history(ticker, 100, "usd"))

    async def no_sync(payload: str) -> None:
        return None

    model = LiveReadModel(database_url, 100, QuoteCurrencies.parse("usd"), notify=no_sync)
    await model.start()
    try:
        await went_live(model, within=60)
        store = model.store
        memory_get_us = per_call_us(lambda: store.get(ticker))
        memory_history_us = per_call_us(lambda: store.history(ticker, 100, "usd"))
        crypto = store.get(ticker)
        points = store.history(ticker, 100, "usd")
        cryptos = store.list()
    finally:
        await model.stop()
    assert crypto is not None and points is not None
    return Parts(
        decode_us,
        hit_us,
        orm_get_us,
        memory_get_us,
        orm_history_us,
        memory_history_us,
        render_figures(crypto, points, cryptos, ticker),
    )


def render_figures(
    crypto: Crypto, points: list[PricePoint], cryptos: list[Crypto], ticker: Ticker
) -> dict[str, tuple[float, float]]:
    """Microseconds to render each body, and to hand out the one kept."""
    bodies = RenderedBodies()
    figures = {}
    for label, render in (
        ("a crypto", lambda: crypto_json(crypto, "usd")),
        ("a 100-row history", lambda: history_json(ticker, points)),
        ("the list of 100", lambda: {"cryptos": [crypto_json(c, "usd") for c in cryptos]}),
    ):
        rendered = per_call_us(lambda r=render: json_dumps(r()), number=2_000)
        bodies.body(label, 1, render)  # kept at version 1, then handed out
        kept = per_call_us(lambda k=label, r=render: bodies.body(k, 1, r), number=2_000)
        figures[label] = (rendered, kept)
    return figures


@dataclass(frozen=True)
class Parts:
    """Microseconds a call, each part timed alone in this process."""

    decode_us: float
    hit_us: float
    orm_get_us: float
    memory_get_us: float
    orm_history_us: float
    memory_history_us: float
    rendered: dict[str, tuple[float, float]]  # label: (rendered, kept)

    def lines(self) -> list[str]:
        bodies = "; ".join(
            f"{label} {rendered:.1f} µs rendered vs {kept:.2f} µs kept"
            for label, (rendered, kept) in self.rendered.items()
        )
        return [
            f"- Token check: PyJWT decode {self.decode_us:.1f} µs a call, cache hit "
            f"{self.hit_us:.2f} µs.",
            f"- One read: `get` through the ORM {self.orm_get_us:.0f} µs (a database round "
            f"trip, sequential, PostgreSQL on the same cores), from the read model's set "
            f"{self.memory_get_us:.2f} µs; `history` (100 rows) {self.orm_history_us:.0f} µs "
            f"vs {self.memory_history_us:.2f} µs.",
            f"- Rendering a body: {bodies}.",
        ]


def bought(parts: Parts, before: list[tuple[str, Wrk]], after: list[tuple[str, Wrk]]) -> list[str]:
    """What this checkout bought over BEFORE_COMMIT, from this run's figures."""
    (label, old), (_, new) = before[0], after[0]
    lines = [
        f"From this run's figures above, this checkout against {BEFORE_COMMIT} (the request "
        "path before issue 12: five middlewares, sanic-ext's injection signal and CORS "
        "middleware, prometheus multiprocess writes; the hand-written section on issue 12 "
        "says which change bought what):",
        "",
    ]
    lines += [
        f"- `{lb}`: {o.rps:,.0f} to {n.rps:,.0f} req/s ({n.rps / o.rps:.2f}x), p99 "
        f"{o.p99_ms:.1f} to {n.p99_ms:.1f} ms."
        for (lb, o), (_, n) in zip(before, after, strict=True)
    ]
    lines.append(
        f"- A `{label}` takes about {1e6 / old.rps:.0f} µs of the server before and "
        f"{1e6 / new.rps:.0f} µs after (the inverse of its requests/s, wrk on the same "
        f"cores); a token check on a cache hit costs {parts.hit_us:.2f} µs of it, a PyJWT "
        f"decode would cost {parts.decode_us:.1f} µs."
    )
    return lines


def table(before: list[tuple[str, Wrk]], after: list[tuple[str, Wrk]]) -> list[str]:
    lines = [
        "| request | before: req/s | p50 | p99 | after: req/s | p50 | p99 | req/s after/before |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (label, old), (_, new) in zip(before, after, strict=True):
        lines.append(
            f"| `{label}` | {old.rps:,.0f} | {old.p50_ms:.2f} ms | {old.p99_ms:.2f} ms | "
            f"{new.rps:,.0f} | {new.p50_ms:.2f} ms | {new.p99_ms:.2f} ms | "
            f"{new.rps / old.rps:.1f}x |"
        )
    return lines


async def run(database_url: str, before_dir: Path, before_hash: str) -> tuple[list[str], list[str]]:
    """The profile section's lines and what each change bought."""
    secret = "bench-only-secret-" + uuid.uuid4().hex + uuid.uuid4().hex
    prefix = f"cps-bench-profile-{uuid.uuid4().hex[:10]}:"
    token = await seed(database_url, secret)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="cps-bench-profile-") as data_dir:
        servers = Servers(Path(data_dir))
        env = server_env(database_url, secret, prefix, data_dir)
        try:
            print(f"before: {BEFORE_COMMIT} from {before_dir}")
            before_env = {**env, "PYTHONPATH": str(before_dir)}
            command = sanic_command(port)
            before, before_loaded, before_frames = await measure_server(
                "before", command, before_env, port, token, servers, database_url
            )
            print("after: this checkout")
            after, after_loaded, after_frames = await measure_server(
                "after", command, env, port, token, servers, database_url
            )
            # What the framework alone spends: bare Sanic, the same way.
            body = json_dumps({"symbol": SYMBOL, "name": "Bench Coin 0", "current_price": 100.0})
            bare = await servers.start(
                "bare", bare_command(port), {**os.environ, "BENCH_BARE_BODY": body}, "/", port
            )
            out = Path(servers.log_dir) / "bare.collapsed"
            bare_loaded, bare_frames = await profile(
                bare.pid, f"http://127.0.0.1:{port}/", None, out
            )
            say("bare Sanic under py-spy", bare_loaded)
        finally:
            await servers.stop_all()
            print(f"redis keys under {prefix} deleted: {await forget_keys(prefix)}")
    parts = await in_process(database_url, secret)
    print("\n".join(parts.lines()))
    return bought(parts, before, after), [
        f"Before: commit {before_hash[:7]} (main before issue 12's request path). After: "
        "this checkout. Both with their read model live, the same run, the same seeded "
        "database, one process each (`--single-process`), wrk -t1 -c50 for "
        f"{RUN_SECONDS} s a route after a warm-up.",
        "",
        *table(before, after),
        "",
        f"py-spy ({PROFILE_RATE} samples/s, {PROFILE_SECONDS} s, idle time left out) on the "
        f"server while wrk loaded `{ROUTES[0][0]}`: before {before_loaded.rps:,.0f} req/s, "
        f"after {after_loaded.rps:,.0f} req/s; bare Sanic's `GET /` (bench/_bare_app.py) "
        f"{bare_loaded.rps:,.0f} req/s (py-spy itself takes some of the CPU).",
        "",
        "Before:",
        "",
        "```",
        *before_frames,
        "```",
        "",
        "After:",
        "",
        "```",
        *after_frames,
        "```",
        "",
        "Bare Sanic:",
        "",
        "```",
        *bare_frames,
        "```",
        "",
        "The parts, each timed alone in bench.profile_reads' own process:",
        "",
        *parts.lines(),
    ]


def main() -> None:
    started = time.perf_counter()
    load_before = load_average()
    py_spy()
    with tempfile.TemporaryDirectory(prefix="cps-bench-before-") as before_dir:
        before_hash = extract(BEFORE_COMMIT, Path(before_dir))
        with scratch_database() as url:
            changes, lines = asyncio.run(run(url, Path(before_dir), before_hash))
    lines += [
        "",
        f"Load average before: {load_before}; after: {load_average()}. {os.cpu_count()} cores "
        f"shared by the server, PostgreSQL, wrk and py-spy. bench.profile_reads took "
        f"{time.perf_counter() - started:.0f} s; "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
    ]
    write_section("Profile of a read, before and after (bench.profile_reads)", lines)
    write_section("What each change bought (bench.profile_reads)", changes)
    print("written to bench/RESULTS.md")


if __name__ == "__main__":
    main()
