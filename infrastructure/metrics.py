"""Prometheus metrics, added up over every process of the server.

Sanic serves from several worker processes, so prometheus_client runs in its
multiprocess mode: each process writes its values to files in one directory,
PROMETHEUS_MULTIPROC_DIR, and a scrape (``exposition``) sums them. Importing this
module makes sure that directory is set:

* in a Sanic worker (SANIC_WORKER_NAME is set) it is the one the main process set,
  inherited at spawn time, and is left as it is;
* else, when the operator set it, its ``*.db`` files are deleted: they belong to a
  previous run, whose counts would otherwise be added to this one's;
* else (unset, or a private one some parent process made for itself, such as a test
  runner that starts servers) this process makes a fresh private directory, sets the
  variable so that the workers it spawns inherit it, and removes it at exit.

prometheus_client chooses between in-memory and file-backed values once, when
``prometheus_client.values`` is first imported, so the directory has to be in the
environment before the first prometheus_client import of the process: hence the
imports below the set-up. The metric objects are module-level singletons, because
a process (a test run) may build many apps.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from collections.abc import Mapping, MutableMapping
from pathlib import Path

DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Marks a directory this code made for one process tree, as opposed to the operator's.
PRIVATE_DIR_ENV = "CPS_PRIVATE_METRICS_DIR_OF"


def in_sanic_worker(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this process is one Sanic's worker manager spawned."""
    return bool(environ.get("SANIC_WORKER_NAME"))


def prepare_multiprocess_dir(environ: MutableMapping[str, str] = os.environ) -> Path:
    """The directory this process writes its metrics to, set up as the module
    docstring tells; ``environ`` is updated for the processes spawned from here."""
    given = environ.get(DIR_ENV)
    if given and in_sanic_worker(environ):
        return Path(given)
    if given and PRIVATE_DIR_ENV not in environ:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        return path
    path = Path(tempfile.mkdtemp(prefix="cps-metrics-"))
    environ[DIR_ENV] = str(path)
    environ[PRIVATE_DIR_ENV] = str(os.getpid())
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


MULTIPROCESS_DIR = prepare_multiprocess_dir()

# Only now: prometheus_client reads PROMETHEUS_MULTIPROC_DIR when first imported.
import prometheus_client.values  # noqa: E402
from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

if prometheus_client.values.ValueClass.__name__ != "MmapedValue":
    raise RuntimeError(
        "prometheus_client was imported before infrastructure.metrics set "
        f"{DIR_ENV}: import infrastructure.metrics first"
    )

POLL_OUTCOMES = ("ok", "partial", "rate_limited", "failed")
COINGECKO_OUTCOMES = ("ok", "429", "5xx", "timeout", "bad_body", "error")

POLL_CYCLES = Counter(
    "cps_poll_cycles",
    "Price poll cycles run, by outcome: ok, partial (some prices missing), rate_limited or failed.",
    ["outcome"],
)
POLL_CYCLE_SECONDS = Histogram(
    "cps_poll_cycle_duration_seconds",
    "How long a price poll cycle took.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
# livesum: the workers of a replica add up to 1 when one of them holds the lock, and a
# worker that stopped drops out (mark_process_dead); one series a replica, no pid label.
POLLER_LEADER = Gauge(
    "cps_poller_leader",
    "1 while a worker of this server holds the price poller's lock (and so polls).",
    multiprocess_mode="livesum",
)
# mostrecent: the count is a fact about the whole deployment; the last poller to see it
# knows best, even after it stopped.
TRACKED_CRYPTOS = Gauge(
    "cps_tracked_cryptos",
    "Cryptos tracked, as of the last price poll cycle.",
    multiprocess_mode="mostrecent",
)
COINGECKO_CALLS = Counter(
    "cps_coingecko_calls",
    "Calls made to CoinGecko, by endpoint and outcome: ok, 429, 5xx, timeout, "
    "bad_body (not JSON) or error (any other failure).",
    ["endpoint", "outcome"],
)
RATE_LIMIT_WAIT_SECONDS = Histogram(
    "cps_coingecko_rate_limit_wait_seconds",
    "Time a CoinGecko call waited for a slot of the calls-a-minute budget.",
    buckets=(0.001, 0.01, 0.1, 0.5, 1, 2, 5, 15, 30, 60, 120, 300, 900),
)
RATE_LIMIT_REFUSALS = Counter(
    "cps_coingecko_rate_limit_refusals",
    "CoinGecko calls not made because no slot of the budget would free up in time.",
)
TICKER_CACHE_LOOKUPS = Counter(
    "cps_ticker_cache_lookups",
    "Ticker to CoinGecko id cache lookups, by cache (redis or memory) and result (hit or miss).",
    ["cache", "result"],
)

# livesum, as the poller's: one series a replica, summed over its live workers.
STREAM_CLIENTS = Gauge(
    "cps_stream_clients",
    "Live price streams (GET /crypto, text/event-stream) open on this server's workers.",
    multiprocess_mode="livesum",
)
READ_MODEL_LIVE = Gauge(
    "cps_read_model_live",
    "Workers of this server answering reads from their read model (the others, whose "
    "listening connection is down, read through to PostgreSQL).",
    multiprocess_mode="livesum",
)
READ_MODEL_LOADS = Counter(
    "cps_read_model_loads",
    "Full loads of a worker's read model: one at start, one after each lost listening connection.",
)

for _outcome in POLL_OUTCOMES:  # a zero series from the start, so that rate() sees the first
    POLL_CYCLES.labels(_outcome)


class PrometheusPollerMonitor:
    """domain.ports.PollerMonitor on the metrics above."""

    def cycle_finished(self, outcome: str, seconds: float, tracked: int | None) -> None:
        POLL_CYCLES.labels(outcome).inc()
        POLL_CYCLE_SECONDS.observe(seconds)
        if tracked is not None:
            TRACKED_CRYPTOS.set(tracked)

    def leadership(self, held: bool) -> None:
        POLLER_LEADER.set(1 if held else 0)


def observe_read_model(live: bool) -> None:
    READ_MODEL_LIVE.set(1 if live else 0)
    if live:
        READ_MODEL_LOADS.inc()


def observe_stream(opened: bool) -> None:
    if opened:
        STREAM_CLIENTS.inc()
    else:
        STREAM_CLIENTS.dec()


def observe_coingecko_call(endpoint: str, outcome: str) -> None:
    COINGECKO_CALLS.labels(endpoint, outcome).inc()


def observe_rate_limit_wait(seconds: float, *, refused: bool) -> None:
    if refused:
        RATE_LIMIT_REFUSALS.inc()
    else:
        RATE_LIMIT_WAIT_SECONDS.observe(seconds)


def observe_cache_lookup(cache: str, hit: bool) -> None:
    TICKER_CACHE_LOOKUPS.labels(cache, "hit" if hit else "miss").inc()


def exposition() -> tuple[bytes, str]:
    """Every process's metrics, added up, in Prometheus' text format, and its content type."""
    forget_dead_processes()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(MULTIPROCESS_DIR))
    # This process's requests, kept apart from the files (infrastructure.request_metrics).
    from infrastructure.request_metrics import REQUEST_METRICS

    registry.register(REQUEST_METRICS)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def forget_this_process() -> None:
    """Drop this process's live gauges from the sums: a Sanic worker calls it as it
    stops. Elsewhere (a single process, the tests) the process may go on writing to
    them, so they are left alone."""
    if in_sanic_worker():
        multiprocess.mark_process_dead(os.getpid(), str(MULTIPROCESS_DIR))


def forget_dead_processes() -> None:
    """Drop the live gauges of processes that died without saying so (a worker killed
    by the OOM killer would otherwise hold the poller's lock in the sums for ever)."""
    for path in MULTIPROCESS_DIR.glob("gauge_live*_*.db"):
        pid = int(path.stem.rpartition("_")[2])
        if not _alive(pid):
            with contextlib.suppress(FileNotFoundError):  # another worker's scrape was first
                multiprocess.mark_process_dead(pid, str(MULTIPROCESS_DIR))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
