"""Request ids, access lines and /metrics over HTTP, on the app served in-process.

The metrics of the test process add up over every app it built, so these tests
compare a scrape after with one before."""

import logging
from dataclasses import replace

import pytest

from infrastructure.log_setup import RequestIdFilter
from tests.support.metrics import Scrape

pytestmark = pytest.mark.integration

ACCESS = "interfaces.http.access"


async def scrape(api) -> Scrape:
    r = await api.client.get("/metrics")
    assert r.status_code == 200
    return Scrape(r.text)


def watch_logs(caplog):
    """From now on, caplog keeps every record with the request id the server's log
    handler would add (pytest gives each test phase a handler of its own)."""
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(RequestIdFilter())


def access_lines(records, request_id):
    return [r for r in records if r.name == ACCESS and r.request_id == request_id]


async def test_every_response_carries_the_request_id_sent(api):
    big = b'{"symbol": "' + b"A" * (1024 * 1024 + 10) + b'"}'
    requests = {
        "ok": ("GET", "/health", {}, None),
        "page": ("GET", "/", {}, None),
        "asset": ("GET", "/static/app.css", {}, None),
        "no-token": ("GET", "/crypto", {}, None),
        "forged": ("GET", "/crypto", {"Authorization": "Bearer forged.token.here"}, None),
        "unknown": ("GET", "/nope", {}, None),
        "method": ("PATCH", "/crypto", api.auth, None),
        "too-large": ("POST", "/crypto", {**api.auth, "content-type": "application/json"}, big),
        "not-tracked": ("GET", "/crypto/ZZZ", api.auth, None),
    }
    statuses = {}
    for name, (method, path, headers, body) in requests.items():
        request_id = f"req-{name}.1_x"
        r = await api.client.request(
            method, path, headers={**headers, "X-Request-ID": request_id}, content=body
        )
        assert r.headers["x-request-id"] == request_id, (name, r.status_code)
        statuses[name] = r.status_code
    assert statuses == {
        "ok": 200,
        "page": 200,
        "asset": 200,
        "no-token": 401,
        "forged": 401,
        "unknown": 404,
        "method": 405,
        "too-large": 413,
        "not-tracked": 404,
    }


async def test_a_304_and_a_500_carry_it_too(api):
    etag = (await api.client.get("/")).headers["etag"]
    r = await api.client.get("/", headers={"If-None-Match": etag, "X-Request-ID": "cached"})
    assert r.status_code == 304 and r.headers["x-request-id"] == "cached"

    async def broken(*_args):
        raise RuntimeError("boom")

    api.app.ctx.services = replace(api.app.ctx.services, list_cryptos=broken)
    r = await api.client.get("/crypto", headers={**api.auth, "X-Request-ID": "broken"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "broken"


@pytest.mark.parametrize(
    "sent", ["", "a" * 129, "has space", "semi;colon", "ünïcode", "new\\nline", "<script>"]
)
async def test_an_unfit_request_id_is_replaced_by_a_new_one(api, sent):
    r = await api.client.get("/health", headers={"X-Request-ID": sent.encode()})
    got = r.headers["x-request-id"]
    assert got != sent
    assert len(got) == 32 and int(got, 16) >= 0


async def test_without_one_each_request_gets_its_own(api):
    ids = {(await api.client.get("/health")).headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


async def test_one_access_line_per_request_with_the_route_and_the_request_id(api, caplog):
    watch_logs(caplog)
    r = await api.client.get("/crypto/ZZZ", headers={**api.auth, "X-Request-ID": "abc-123"})
    assert r.status_code == 404
    [line] = access_lines(caplog.records, "abc-123")
    assert (line.method, line.route, line.path, line.status) == (
        "GET",
        "/crypto/<symbol>",
        "/crypto/ZZZ",
        404,
    )
    assert line.duration_ms >= 0
    assert not [r for r in caplog.records if r.name == "sanic.access"]


async def test_the_lines_a_request_writes_carry_its_id(api, caplog):
    watch_logs(caplog)

    async def broken(*_args):
        raise RuntimeError("boom")

    api.app.ctx.services = replace(api.app.ctx.services, list_cryptos=broken)
    await api.client.get("/crypto", headers={**api.auth, "X-Request-ID": "fails-1"})
    await api.client.get("/health", headers={"X-Request-ID": "later-2"})
    failure = [r for r in caplog.records if r.name == "interfaces.http.errors"]
    assert [r.request_id for r in failure] == ["fails-1"]
    assert failure[0].exc_info is not None
    assert len(access_lines(caplog.records, "later-2")) == 1


async def test_metrics_count_requests_by_route_template(api):
    before = await scrape(api)
    for symbol in ("AAA", "BBB", "CCC"):
        r = await api.client.get(f"/crypto/{symbol}", headers=api.auth)
        assert r.status_code == 404
    await api.client.get(f"/crypto/{symbol}")  # no token: 401
    await api.client.get("/no/such/route")
    after = await scrape(api)

    def delta(name, **labels):
        return after.value(name, **labels) - before.value(name, **labels)

    route = "/crypto/<symbol>"
    requests = "cps_http_requests_total"
    assert delta(requests, route=route, method="GET", status="404") == 3
    assert delta(requests, route=route, method="GET", status="401") == 1
    assert delta(requests, route="unmatched", method="GET", status="404") == 1
    assert delta("cps_http_request_duration_seconds_count", route=route, method="GET") == 4
    routes = after.label_values(requests, "route")
    assert not any("AAA" in route or "no/such" in route for route in routes), routes


async def test_metrics_route_is_plain_prometheus_text_without_a_token(api):
    r = await api.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    helps = Scrape(r.text).help_texts()
    assert helps["cps_http_requests"] and helps["cps_poll_cycles"]
    spec = (await api.client.get("/docs/openapi.json")).json()
    assert "/metrics" not in spec["paths"]


async def test_a_lookup_misses_the_cache_then_hits_it(api):
    before = await scrape(api)
    await api.client.post("/crypto", json={"symbol": "BTC"}, headers=api.auth)
    await api.client.delete("/crypto/BTC", headers=api.auth)
    await api.client.post("/crypto", json={"symbol": "BTC"}, headers=api.auth)
    after = await scrape(api)
    lookups = "cps_ticker_cache_lookups_total"
    for result in ("miss", "hit"):
        got = after.value(lookups, cache="redis", result=result)
        assert got - before.value(lookups, cache="redis", result=result) == 1, result
    calls = "cps_coingecko_calls_total"
    assert after.value(calls, endpoint="/coins/markets", outcome="ok") - before.value(
        calls, endpoint="/coins/markets", outcome="ok"
    ) == len(api.gecko.calls("/coins/markets"))


async def test_the_tracked_count_follows_each_add_and_delete_not_the_poll_cycles(api):
    # The poller is off here: only the writes themselves can move the gauge.
    for symbol in ("BTC", "ETH"):
        r = await api.client.post("/crypto", json={"symbol": symbol}, headers=api.auth)
        assert r.status_code == 201, r.text
    assert (await scrape(api)).value("cps_tracked_cryptos") == 2
    assert (await api.client.delete("/crypto/BTC", headers=api.auth)).status_code == 200
    assert (await scrape(api)).value("cps_tracked_cryptos") == 1
