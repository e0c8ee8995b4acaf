"""Clients that try to make the server misbehave, over a bare socket: a request trickled
in for ever, a hang-up halfway, a head far too long. Each gets a 4xx JSON answer or is
counted apart, never a 5xx; and no such client holds a connection past the bound."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tests.fakes.coingecko_server import Failure
from tests.support.clock import wait_until
from tests.support.metrics import Scrape
from tests.support.raw_http import RawConnection, raw_connection
from tests.support.server_process import running_server, server_env

pytestmark = pytest.mark.integration

BOUND = 2.0  # REQUEST_TIMEOUT_SECONDS in these tests
# A piece every 0.4 s: Sanic's own REQUEST_TIMEOUT, which restarts on every piece, never
# runs out; 40 pieces make a request that takes 16 s to arrive whole.
EVERY = 0.4
PIECES = 40


def head(path: str = "/health", *lines: str) -> bytes:
    return "\r\n".join([f"GET {path} HTTP/1.1", "Host: test", *lines, "", ""]).encode()


async def refused_for_lateness(conn: RawConnection, pieces: list[bytes]) -> float:
    """Trickle ``pieces``; assert the server answers 408 JSON and hangs up before they are
    all sent; the seconds from the first piece to the answer."""
    started = time.monotonic()
    trickle = asyncio.create_task(conn.trickle(pieces, EVERY))
    try:
        r = await conn.response(seconds=PIECES * EVERY + 10)
        answered = time.monotonic() - started
        assert not trickle.done(), "the whole request was sent before the server answered"
    finally:
        trickle.cancel()
    assert r.status == 408, r
    assert r.headers["content-type"].startswith("application/json")
    assert "did not arrive whole within 2 s" in r.json()["error"]
    assert r.headers["connection"] == "close"
    assert await conn.closed_by_server()
    return answered


async def test_a_head_trickled_in_is_cut_off_at_the_bound(database_url, gecko, tmp_path):
    # The server as deployed (the sanic CLI), which must choose the protocol itself.
    env = server_env(
        database_url,
        gecko.base_url,
        tmp_path,
        REQUEST_TIMEOUT_SECONDS=str(BOUND),
        PRICE_POLLER_ENABLED="false",
    )
    async with running_server(env, tmp_path / "server.log") as server:
        await server.wait_ready()
        async with raw_connection(server.base_url) as conn:
            slow = (b"X-Slow-%d: 1\r\n" % i for i in range(PIECES - 2))
            lines = [b"GET /health HTTP/1.1\r\n", *slow, b"\r\n"]
            answered = await refused_for_lateness(conn, lines)
        assert BOUND <= answered < BOUND + 2
        assert await server.stop() == 0


async def test_a_body_trickled_in_is_cut_off_at_the_bound(make_api):
    async with make_api(REQUEST_TIMEOUT_SECONDS=str(BOUND)) as api:
        async with raw_connection(str(api.client.base_url)) as conn:
            start = (
                b"POST /auth/login HTTP/1.1\r\nHost: test\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % PIECES
            )
            await conn.send(start)
            answered = await refused_for_lateness(conn, [b" "] * PIECES)
        assert BOUND <= answered < BOUND + 2


async def test_a_body_trickled_in_after_its_answer_is_cut_off_at_the_bound(make_api):
    # Answered (404) before its body came; Sanic then reads the rest before the next request.
    async with (
        make_api(REQUEST_TIMEOUT_SECONDS=str(BOUND)) as api,
        raw_connection(str(api.client.base_url)) as conn,
    ):
        started = time.monotonic()
        await conn.send(
            b"POST /no/such/route HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n" % PIECES
        )
        assert (await conn.response()).status == 404
        trickle = asyncio.create_task(conn.trickle([b" "] * PIECES, EVERY))
        try:
            assert await conn.closed_by_server(seconds=PIECES * EVERY + 10)
            assert not trickle.done(), "the whole body was sent before the server hung up"
        finally:
            trickle.cancel()
        assert time.monotonic() - started < BOUND + 2


async def test_a_slow_request_that_arrives_whole_in_time_is_served(make_api):
    async with (
        make_api(REQUEST_TIMEOUT_SECONDS=str(BOUND)) as api,
        raw_connection(str(api.client.base_url)) as conn,
    ):
        body = b'{"username": "tester", "password": "test password"}'
        request = (
            b"POST /auth/login HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)
        )
        third = len(request) // 3
        pieces = [request[:third], request[third : 2 * third], request[2 * third :]]
        await conn.trickle(pieces, EVERY)  # whole within 0.8 s of its first byte
        r = await conn.response()
        assert r.status == 200 and "token" in r.json()

        # An idle keep-alive connection is not a request arriving: it stays open past
        # the bound (KEEP_ALIVE_TIMEOUT is its own), and serves the next request.
        assert not await conn.closed_by_server(seconds=BOUND + 1)
        await conn.send(head())
        assert (await conn.response()).status == 200


async def scrape(api) -> Scrape:
    return Scrape((await api.client.get("/metrics")).text)


def requests_with(scrape: Scrape, status: str, **labels: str) -> float:
    return scrape.value("cps_http_requests_total", status=status, **labels)


def server_errors(scrape: Scrape) -> float:
    return sum(
        s.value for s in scrape.samples("cps_http_requests_total") if s.labels["status"][0] == "5"
    )


def delta(after: Scrape, before: Scrape, status: str, **labels: str) -> float:
    return requests_with(after, status, **labels) - requests_with(before, status, **labels)


async def hang_ups_counted(api, before: Scrape, count: int) -> Scrape | None:
    after = await scrape(api)
    return after if delta(after, before, "499") >= count else None


async def test_a_client_that_hangs_up_is_counted_apart_not_as_a_server_error(api, caplog):
    caplog.set_level(logging.INFO)
    base_url = str(api.client.base_url)
    api.gecko.fail(Failure.hang(), path="/coins/markets")
    before = await scrape(api)

    # Halfway through the head; halfway through a body; and once the whole request is
    # in, while its handler waits on CoinGecko.
    async with raw_connection(base_url) as conn:
        await conn.send(b"GET /crypto HTTP/1.1\r\nHost: te")
    async with raw_connection(base_url) as conn:
        await conn.send(
            b"POST /auth/login HTTP/1.1\r\nHost: test\r\n"
            b'Content-Type: application/json\r\nContent-Length: 50\r\n\r\n{"user'
        )
    token = api.auth["Authorization"].encode()
    async with raw_connection(base_url) as conn:
        body = b'{"symbol": "BTC"}'
        await conn.send(
            b"POST /crypto HTTP/1.1\r\nHost: test\r\nAuthorization: %b\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%b"
            % (token, len(body), body)
        )
        await wait_until(lambda: api.gecko.calls("/coins/markets"), "the handler to call")

    after = await wait_until(lambda: hang_ups_counted(api, before, 3), "three 499s", 20)
    api.gecko.release_hung()
    assert delta(after, before, "499", route="/auth/login", method="POST") == 1
    assert delta(after, before, "499", route="/crypto", method="POST") == 1
    assert server_errors(after) == server_errors(before)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    statuses = [getattr(r, "status", None) for r in caplog.records if r.name.endswith("access")]
    assert 500 not in statuses and statuses.count(499) == 3


async def test_an_over_long_request_line_is_414(api):
    async with raw_connection(str(api.client.base_url)) as conn:
        await conn.send(head("/crypto/" + "A" * 12_000))
        r = await conn.response()
        assert r.status == 414
        assert "request line is too long" in r.json()["error"]
        assert await conn.closed_by_server()


@pytest.mark.parametrize(
    "lines",
    [
        pytest.param([f"X-Big: {'v' * 9000}"], id="one header too large"),
        pytest.param([f"X-H{i}: v" for i in range(1000)], id="a thousand headers"),
        pytest.param([f"X-H{i}: v" for i in range(200)], id="two hundred short headers"),
    ],
)
async def test_headers_too_large_or_too_many_are_431(api, lines):
    async with raw_connection(str(api.client.base_url)) as conn:
        await conn.send(head("/health", *lines))
        r = await conn.response()
        assert r.status == 431
        assert r.headers["content-type"].startswith("application/json")
        assert "header" in r.json()["error"]
        assert await conn.closed_by_server()


async def test_a_hundred_headers_are_still_served(api):
    async with raw_connection(str(api.client.base_url)) as conn:
        await conn.send(head("/health", *(f"X-H{i}: v" for i in range(99))))  # and Host
        assert (await conn.response()).status == 200


HEADER_NAMES = [
    b"Authorization", b"Accept", b"Accept-Encoding", b"Content-Type", b"Content-Length",
    b"Transfer-Encoding", b"Host", b"Connection", b"Expect", b"If-None-Match", b"Range",
    b"Cookie", b"Origin", b"User-Agent", b"X-Request-ID", b"X-Forwarded-For", b"Forwarded",
    b"X-\xe9\xff",
]  # fmt: skip
HEADER_VALUES = [
    b"\xe9", b"\xff\xfe\x80", b"\x01\x7f\x1b", b"\xc3\xa9\xe2\x82\xac", b"Bearer \xe9\xe9",
    b'"', b"-1", b"9" * 40, b";;;q=abc,*/*;q=2,text/event-stream;q=-1", b"\x00",
]  # fmt: skip


async def test_any_bytes_in_any_header_are_never_a_5xx(api):
    """Each header, with bytes no client library sends, on a read, a login with a body and
    the page: a 4xx (or the answer), never a 5xx; a refused head may also just be closed."""
    token = api.auth["Authorization"].encode()
    body = b'{"username": "tester", "password": "test password"}'
    requests = [
        (b"GET /crypto HTTP/1.1", [b"Authorization: " + token], b""),
        (
            b"POST /auth/login HTTP/1.1",
            [b"Content-Type: application/json", b"Content-Length: %d" % len(body)],
            body,
        ),
        (b"GET / HTTP/1.1", [], b""),
    ]
    server_errors = []
    for name in HEADER_NAMES:
        for value in HEADER_VALUES:
            for line, headers, payload in requests:
                kept = [h for h in headers if not h.lower().startswith(name.lower() + b":")]
                head = b"\r\n".join(
                    [line, b"Host: test", b"Connection: close", *kept, name + b": " + value]
                )
                async with raw_connection(str(api.client.base_url)) as conn:
                    await conn.send(head + b"\r\n\r\n" + payload)
                    try:
                        r = await conn.response(seconds=10)
                    except (asyncio.IncompleteReadError, ConnectionError):
                        continue  # closed without an answer: not a server error
                if r.status >= 500:
                    server_errors.append((line, name, value, r.status, r.body[:80]))
    assert not server_errors, server_errors
