"""The poller's monitor and the other gauges, on the metrics of this process (which add
up over the whole test run: each test compares after with before)."""

import pytest

from infrastructure import metrics
from infrastructure.metrics import (
    PrometheusPollerMonitor,
    count_tracked_by,
    observe_read_model,
    observe_stream,
)
from tests.support.metrics import Scrape


def scrape() -> Scrape:
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    return Scrape(body.decode())


def test_a_cycle_counts_by_outcome_and_times_it():
    monitor = PrometheusPollerMonitor()
    before = scrape()
    monitor.cycle_finished("ok", 0.3, tracked=7)
    monitor.cycle_finished("partial", 0.2, tracked=5)
    monitor.cycle_finished("failed", 12.0, tracked=None)
    after = scrape()
    for outcome in ("ok", "partial", "failed"):
        name, labels = "cps_poll_cycles_total", {"outcome": outcome}
        assert after.value(name, **labels) - before.value(name, **labels) == 1, outcome
    assert after.value("cps_poll_cycles_total", outcome="rate_limited") == before.value(
        "cps_poll_cycles_total", outcome="rate_limited"
    )
    count = "cps_poll_cycle_duration_seconds_count"
    assert after.value(count) - before.value(count) == 3
    total = "cps_poll_cycle_duration_seconds_sum"
    assert after.value(total) - before.value(total) == pytest.approx(12.5)
    bucket = "cps_poll_cycle_duration_seconds_bucket"
    assert after.value(bucket, le="0.5") - before.value(bucket, le="0.5") == 2
    assert after.value(bucket, le="+Inf") - before.value(bucket, le="+Inf") == 3
    assert after.value("cps_tracked_cryptos") == 5  # the last cycle that counted them


def test_every_outcome_has_a_series_from_the_start():
    assert scrape().label_values("cps_poll_cycles_total", "outcome") >= {
        "ok",
        "partial",
        "rate_limited",
        "failed",
    }


def test_leadership_sets_the_lock_gauge():
    monitor = PrometheusPollerMonitor()
    monitor.leadership(True)
    assert scrape().value("cps_poller_leader") == 1
    monitor.leadership(False)
    assert scrape().value("cps_poller_leader") == 0


def test_the_live_gauges_are_this_processs_own_values():
    before = scrape()
    observe_stream(opened=True)
    observe_stream(opened=True)
    observe_stream(opened=False)
    observe_read_model(live=False)
    middle = scrape()
    observe_read_model(live=True)
    after = scrape()
    streams = "cps_stream_clients"
    assert after.value(streams) - before.value(streams) == 1
    assert middle.value("cps_read_model_live") == 0
    assert after.value("cps_read_model_live") == 1
    loads = "cps_read_model_loads_total"
    assert after.value(loads) - middle.value(loads) == 1


def test_the_tracked_count_is_the_read_models_at_each_scrape_else_the_last_known():
    held: list[int | None] = [3]
    count_tracked_by(lambda: held[0])
    try:
        assert scrape().value("cps_tracked_cryptos") == 3
        held[0] = 4  # a commit applied: no poll cycle needed
        assert scrape().value("cps_tracked_cryptos") == 4
        held[0] = None  # the read model is down: the last count stands
        assert scrape().value("cps_tracked_cryptos") == 4
        PrometheusPollerMonitor().cycle_finished("ok", 0.1, tracked=6)
        assert scrape().value("cps_tracked_cryptos") == 6  # then a poll cycle's
        held[0] = 5
        assert scrape().value("cps_tracked_cryptos") == 5
    finally:
        count_tracked_by(None)
