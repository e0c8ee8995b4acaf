"""Prometheus metrics of this process, in prometheus_client's default registry.

The server is one process (more cores: more replicas, each scraped on its own), so
every value is a plain in-memory one: nothing is written to disk and importing this
module changes nothing outside it. The metric objects are module-level singletons,
as prometheus_client expects, because a process (a test run) may build many apps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

POLL_OUTCOMES = ("ok", "partial", "rate_limited", "budget_spent", "failed")
COINGECKO_OUTCOMES = ("ok", "429", "5xx", "timeout", "bad_body", "error")

POLL_CYCLES = Counter(
    "cps_poll_cycles",
    "Price poll cycles run, by outcome: ok, partial (some prices missing), rate_limited, "
    "budget_spent (the month's CoinGecko calls) or failed.",
    ["outcome"],
)
POLL_CYCLE_SECONDS = Histogram(
    "cps_poll_cycle_duration_seconds",
    "How long a price poll cycle took.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
POLLER_LEADER = Gauge(
    "cps_poller_leader",
    "1 while this server holds the price poller's lock (and so polls).",
)
TRACKED_CRYPTOS = Gauge(
    "cps_tracked_cryptos",
    "Cryptos tracked, as of the latest commit this server's read model applied "
    "(while it is down: the last count known).",
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
POLL_INTERVAL_SECONDS = Gauge(
    "cps_poll_interval_seconds",
    "The poll interval in effect: PRICE_POLL_INTERVAL_SECONDS, or longer so that the "
    "month's CoinGecko calls last the month.",
)
MONTH_CALLS = Gauge(
    "cps_coingecko_month_calls",
    "CoinGecko calls made this calendar month (UTC) by the whole deployment, as last "
    "counted or read by this server.",
)
MONTH_BUDGET = Gauge(
    "cps_coingecko_month_budget",
    "COINGECKO_CALLS_PER_MONTH: the calls a calendar month allows (0: no monthly budget).",
)
TICKER_CACHE_LOOKUPS = Counter(
    "cps_ticker_cache_lookups",
    "Ticker to CoinGecko id cache lookups, by cache (redis or memory) and result (hit or miss).",
    ["cache", "result"],
)

STREAM_CLIENTS = Gauge(
    "cps_stream_clients",
    "Live price streams (GET /crypto, text/event-stream) open on this server.",
)
READ_MODEL_LIVE = Gauge(
    "cps_read_model_live",
    "1 while this server answers reads from its read model (0: its listening "
    "connection is down, and reads go through to PostgreSQL).",
)
READ_MODEL_LOADS = Counter(
    "cps_read_model_loads",
    "Full loads of the read model: one at start, one after each lost listening connection.",
)


class TrackedCount:
    """The value of ``cps_tracked_cryptos`` at each scrape: what the read model holds
    (current as of the latest commit it applied) while ``count`` knows it, else the last
    count known (a poll cycle's, or the read model's before its connection went down)."""

    def __init__(self) -> None:
        self.count: Callable[[], int | None] = lambda: None
        self.last = 0.0

    def __call__(self) -> float:
        now = self.count()
        if now is not None:
            self.last = float(now)
        return self.last


TRACKED_COUNT = TrackedCount()
TRACKED_CRYPTOS.set_function(TRACKED_COUNT)


def count_tracked_by(count: Callable[[], int | None] | None) -> None:
    """``cps_tracked_cryptos`` reads ``count()`` when scraped (None: no count to ask)."""
    TRACKED_COUNT.count = count or (lambda: None)


PRICE_AGE = Gauge(
    "cps_price_age_seconds",
    "Age of the oldest current price among the tracked cryptos (now minus its "
    "last_updated), from this server's read model at scrape time; NaN with none tracked.",
)


class PriceAge:
    """The value of ``cps_price_age_seconds`` at each scrape. NaN, not 0, when no price
    is known: no crypto is fresh then, and ``cps_price_age_seconds > 300`` stays false."""

    def __init__(self) -> None:
        self.oldest: Callable[[], datetime | None] = lambda: None
        self.now: Callable[[], float] = time.time

    def __call__(self) -> float:
        oldest = self.oldest()
        return math.nan if oldest is None else self.now() - oldest.timestamp()


PRICE_AGE_OF = PriceAge()
PRICE_AGE.set_function(PRICE_AGE_OF)


def age_prices_by(oldest: Callable[[], datetime | None] | None) -> None:
    """``cps_price_age_seconds`` reads ``oldest()`` when scraped (None: nothing to ask)."""
    PRICE_AGE_OF.oldest = oldest or (lambda: None)


for _outcome in POLL_OUTCOMES:  # a zero series from the start, so that rate() sees the first
    POLL_CYCLES.labels(_outcome)


class PrometheusPollerMonitor:
    """domain.ports.PollerMonitor on the metrics above."""

    def cycle_finished(self, outcome: str, seconds: float, tracked: int | None) -> None:
        POLL_CYCLES.labels(outcome).inc()
        POLL_CYCLE_SECONDS.observe(seconds)
        if tracked is not None:
            TRACKED_COUNT.last = tracked

    def leadership(self, held: bool) -> None:
        POLLER_LEADER.set(1 if held else 0)

    def interval_in_effect(self, seconds: float) -> None:
        POLL_INTERVAL_SECONDS.set(seconds)


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


def observe_month_calls(calls: int) -> None:
    MONTH_CALLS.set(calls)


def observe_month_budget(budget: int) -> None:
    MONTH_BUDGET.set(budget)


def observe_cache_lookup(cache: str, hit: bool) -> None:
    TICKER_CACHE_LOOKUPS.labels(cache, "hit" if hit else "miss").inc()


def exposition() -> tuple[bytes, str]:
    """This process's metrics in Prometheus' text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
