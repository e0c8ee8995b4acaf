"""The HTTP request metrics, ``cps_http_requests_total`` (a counter by route template,
method and status) and ``cps_http_request_duration_seconds`` (a histogram by route
template and method), kept in plain dicts of this process and turned into Prometheus
families only when scraped.

Every response passes through ``observe``, so it costs a couple of dict operations
and a bisect: prometheus_client's own Counter and Histogram take a lock, look up the
labelled child and update each bucket on every call. Everything here runs on the
event loop's thread (the response hook and the /metrics handler), so no lock is needed.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import REGISTRY, Histogram
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

UNMATCHED_ROUTE = "unmatched"
# prometheus_client's defaults, as the Histogram this replaces had (+Inf is implied).
BOUNDS: tuple[float, ...] = tuple(b for b in Histogram.DEFAULT_BUCKETS if b != float("inf"))
_LE = (*map(floatToGoString, BOUNDS), "+Inf")


class RequestMetrics(Collector):
    """This process's request counts and durations, exposed as the two families above."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], int] = {}
        # (route, method): a count for each bucket (not cumulative; the last is +Inf),
        # then the sum of the seconds.
        self._durations: dict[tuple[str, str], list[float]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self._counts[key] = self._counts.get(key, 0) + 1
        series = self._durations.get((route, method))
        if series is None:
            series = self._durations[route, method] = [0] * (len(BOUNDS) + 2)
        series[bisect_left(BOUNDS, seconds)] += 1  # the first bound >= seconds: le is inclusive
        series[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "cps_http_requests",
            "HTTP requests answered, by route template (unmatched for no route), method "
            "and status.",
            labels=["route", "method", "status"],
        )
        for (route, method, status), count in list(self._counts.items()):
            requests.add_metric([route, method, str(status)], count)
        yield requests
        durations = HistogramMetricFamily(
            "cps_http_request_duration_seconds",
            "Time from the request's arrival to its response, by route template and method.",
            labels=["route", "method"],
        )
        for (route, method), series in list(self._durations.items()):
            cumulative, buckets = 0.0, []
            for le, count in zip(_LE, series, strict=False):  # the sum is left out
                cumulative += count
                buckets.append((le, cumulative))
            durations.add_metric([route, method], buckets, sum_value=series[-1])
        yield durations


# In the default registry, as prometheus_client's own metric objects put themselves.
REQUEST_METRICS = RequestMetrics()
REGISTRY.register(REQUEST_METRICS)
