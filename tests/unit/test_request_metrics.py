"""The request metrics' own collector: the families, labels and buckets a scrape shows."""

import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from infrastructure.request_metrics import BOUNDS, RequestMetrics
from tests.support.metrics import Scrape


def scraped(metrics: RequestMetrics) -> Scrape:
    registry = CollectorRegistry()
    registry.register(metrics)
    return Scrape(generate_latest(registry).decode())


def test_counts_by_route_method_and_status():
    metrics = RequestMetrics()
    for status in (200, 200, 404):
        metrics.observe("/crypto/<symbol>", "GET", status, 0.001)
    metrics.observe("/crypto", "POST", 201, 0.2)
    scrape = scraped(metrics)
    name = "cps_http_requests_total"
    assert scrape.value(name, route="/crypto/<symbol>", method="GET", status="200") == 2
    assert scrape.value(name, route="/crypto/<symbol>", method="GET", status="404") == 1
    assert scrape.value(name, route="/crypto", method="POST", status="201") == 1
    assert scrape.value(name) == 4


def test_durations_fill_cumulative_buckets_whose_bound_is_inclusive():
    metrics = RequestMetrics()
    for seconds in (0.005, 0.0051, 0.3, 60.0):  # on a bound, just above, between, past all
        metrics.observe("/crypto", "GET", 200, seconds)
    scrape = scraped(metrics)
    bucket = "cps_http_request_duration_seconds_bucket"
    labels = {"route": "/crypto", "method": "GET"}
    assert scrape.value(bucket, le="0.005", **labels) == 1
    assert scrape.value(bucket, le="0.01", **labels) == 2
    assert scrape.value(bucket, le="0.25", **labels) == 2
    assert scrape.value(bucket, le="0.5", **labels) == 3
    assert scrape.value(bucket, le=str(BOUNDS[-1]), **labels) == 3
    assert scrape.value(bucket, le="+Inf", **labels) == 4
    assert scrape.value("cps_http_request_duration_seconds_count", **labels) == 4
    total = scrape.value("cps_http_request_duration_seconds_sum", **labels)
    assert math.isclose(total, 60.3101)


def test_the_families_have_the_names_types_and_help_of_the_metrics_they_replace():
    metrics = RequestMetrics()
    metrics.observe("unmatched", "GET", 404, 0.0)
    text = scraped(metrics).text
    assert "# TYPE cps_http_requests_total counter" in text
    assert "# TYPE cps_http_request_duration_seconds histogram" in text
    assert "# HELP cps_http_requests_total HTTP requests answered" in text


@pytest.mark.parametrize("seconds", [0.0, 1e-9])
def test_instant_requests_fall_in_the_first_bucket(seconds):
    metrics = RequestMetrics()
    metrics.observe("/health", "GET", 200, seconds)
    first = scraped(metrics).value(
        "cps_http_request_duration_seconds_bucket", le=str(BOUNDS[0]), route="/health"
    )
    assert first == 1
