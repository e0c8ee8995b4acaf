"""Input an attacker (or a broken client) sends is a 4xx {"error"}, never a 500, and
leaves no traceback in the log; a body that is not declared JSON changes nothing."""

import logging

import pytest

pytestmark = pytest.mark.integration

JSON = {"content-type": "application/json"}
GOOD = {"username": "dora", "password": "dora password"}


def deep_array(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def deep_object(levels: int) -> bytes:
    return b'{"username":' * levels + b'"x"' + b"}" * levels


def quiet_log(caplog) -> None:
    """Nothing above INFO was logged, and no traceback."""
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def assert_error(r, status: int) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]


# Raw bodies: \u escapes written out, as a client would send them.
BAD_BODIES = {
    "login: NUL in the username": (
        "/auth/login",
        b'{"username": "do\\u0000ra", "password": "dora password"}',
    ),
    "login: NUL in the password": (
        "/auth/login",
        b'{"username": "dora", "password": "dora\\u0000password"}',
    ),
    "login: lone surrogate in the password": (
        "/auth/login",
        b'{"username": "dora", "password": "dora \\ud800 password"}',
    ),
    "login: lone surrogate in the username": (
        "/auth/login",
        b'{"username": "do\\ud800ra", "password": "dora password"}',
    ),
    "login: lone trailing surrogate at the end": (
        "/auth/login",
        b'{"username": "dora", "password": "dora password\\udc00"}',
    ),
    "register: NUL in the username": (
        "/auth/register",
        b'{"username": "do\\u0000ra", "password": "dora password"}',
    ),
    "register: NUL in the password": (
        "/auth/register",
        b'{"username": "dora", "password": "dora\\u0000password"}',
    ),
    "register: lone surrogate in the password": (
        "/auth/register",
        b'{"username": "dora", "password": "dora \\ud800 password"}',
    ),
    "register: lone surrogate in the username": (
        "/auth/register",
        b'{"username": "do\\ud800ra", "password": "dora password"}',
    ),
    "add: NUL in the symbol": ("/crypto", b'{"symbol": "BT\\u0000C"}'),
    "add: lone surrogate in the symbol": ("/crypto", b'{"symbol": "BTC\\ud800"}'),
    "login: 1000 nested arrays": ("/auth/login", deep_array(1000)),
    "login: 1000 nested objects": ("/auth/login", deep_object(1000)),
    "register: 1000 nested arrays": ("/auth/register", deep_array(1000)),
    "register: 1000 nested objects": ("/auth/register", deep_object(1000)),
    "add: 1000 nested arrays": ("/crypto", deep_array(1000)),
    "add: 1000 nested objects": ("/crypto", deep_object(1000)),
    "add: 100000 nested arrays": ("/crypto", deep_array(100_000)),
    # Which of two values the client meant is unknowable: jiter alone keeps the last.
    "register: the password twice": (
        "/auth/register",
        b'{"username": "dora", "password": "dora password", "password": "other password"}',
    ),
    "login: the username twice": (
        "/auth/login",
        b'{"username": "nobody", "username": "dora", "password": "dora password"}',
    ),
    "add: the symbol twice": ("/crypto", b'{"symbol": "ETH", "symbol": "BTC"}'),
    "add: a key twice in a nested object": ("/crypto", b'{"symbol": "BTC", "x": {"a": 1, "a": 2}}'),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
async def test_bad_bodies_are_400_without_a_traceback(api, caplog, case):
    path, body = BAD_BODIES[case]
    caplog.set_level(logging.INFO)
    r = await api.client.post(path, content=body, headers={**api.auth, **JSON})
    assert_error(r, 400)
    quiet_log(caplog)
    # and nothing was stored
    assert (await api.client.get("/crypto", headers=api.auth)).json() == {"cryptos": []}
    assert (await api.client.post("/auth/login", json=GOOD)).status_code == 401


@pytest.mark.parametrize("length", [51, 1000, 100_000])
async def test_login_with_any_long_username_is_401(api, caplog, length):
    """Login has no length rules: a name no one may register is just an unknown user."""
    caplog.set_level(logging.INFO)
    r = await api.client.post("/auth/login", json={"username": "u" * length, "password": "x"})
    assert_error(r, 401)
    quiet_log(caplog)


@pytest.mark.parametrize(
    "path",
    [
        "/crypto/%00",
        "/crypto/%F0%9F%98%80",
        "/crypto/%ED%A0%80",  # the UTF-8 form of a lone surrogate
        "/crypto/%FF",
        "/crypto/BT%00C/stats",
        "/crypto/%F0%9F%98%80/history",
    ],
)
async def test_odd_bytes_in_a_path_ticker_are_400(api, caplog, path):
    caplog.set_level(logging.INFO)
    assert_error(await api.client.get(path, headers=api.auth), 400)
    if path.count("/") == 2:
        assert_error(await api.client.delete(path, headers=api.auth), 400)
        assert_error(await api.client.put(path + "/refresh", headers=api.auth), 400)
    quiet_log(caplog)


CROSS_SITE_TYPES = [
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    None,  # no Content-Type at all
    "application/json; charset=latin-1",
    "application/jsonp",
]


@pytest.mark.parametrize("content_type", CROSS_SITE_TYPES)
async def test_a_body_not_sent_as_json_is_415_and_changes_nothing(api, content_type):
    """A cross-site form can post text/plain or form bodies without a preflight: the
    JSON inside must not register anyone, log anyone in or track anything."""
    headers = {"content-type": content_type} if content_type else {}
    body = b'{"username": "dora", "password": "dora password"}'
    r = await api.client.post("/auth/register", content=body, headers=headers)
    assert_error(r, 415)
    assert "application/json" in r.json()["error"]
    assert (await api.client.post("/auth/login", json=GOOD)).status_code == 401

    login = await api.client.post(
        "/auth/login",
        content=b'{"username": "tester", "password": "test password"}',
        headers=headers,
    )
    assert_error(login, 415)

    add = await api.client.post(
        "/crypto",
        content=b'{"symbol": "BTC"}',
        headers={**api.auth, **headers},
    )
    assert_error(add, 415)
    assert (await api.client.get("/crypto", headers=api.auth)).json() == {"cryptos": []}


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
async def test_json_with_or_without_a_utf8_charset_is_accepted(api, content_type):
    r = await api.client.post(
        "/auth/register",
        content=b'{"username": "dora", "password": "dora password"}',
        headers={"content-type": content_type},
    )
    assert r.status_code == 201, r.text
    r = await api.client.post(
        "/crypto", content=b'{"symbol": "BTC"}', headers={**api.auth, "content-type": content_type}
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    "value",
    ["%00", "us%00d", "%FF", "%ED%A0%80", "%F0%9F%98%80", "u" * 1_000, "%26", "usd%2Ceur"],
)
async def test_odd_bytes_in_a_currency_are_400_and_change_nothing(api, caplog, value):
    caplog.set_level(logging.INFO)
    for path in ("/crypto", "/crypto/BTC", "/crypto/BTC/history", "/coins?symbol=btc"):
        glue = "&" if "?" in path else "?"
        r = await api.client.get(f"{path}{glue}currency={value}", headers=api.auth)
        assert_error(r, 400)
        assert r.json()["error"].startswith("currency must be one of usd (got ")
        assert len(r.json()["error"]) < 200  # what was sent is cut short, not echoed whole
    r = await api.client.post(f"/crypto?currency={value}", json={"symbol": "BTC"}, headers=api.auth)
    assert_error(r, 400)
    quiet_log(caplog)
    assert (await api.client.get("/crypto", headers=api.auth)).json() == {"cryptos": []}
    assert api.gecko.requests == []
