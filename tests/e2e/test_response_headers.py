"""Headers a browser or a client relies on: nosniff on every response, no-store on
tokens, and the allowed methods on every 405."""

import pytest

pytestmark = pytest.mark.integration


async def test_every_json_response_says_nosniff(api):
    big = b'{"symbol": "' + b"A" * (1024 * 1024 + 10) + b'"}'
    requests = {
        "ok": ("GET", "/crypto", api.auth, None),
        "health": ("GET", "/health", {}, None),
        "bad body": ("POST", "/crypto", {**api.auth, "content-type": "application/json"}, b"["),
        "no token": ("GET", "/crypto", {}, None),
        "not found": ("GET", "/nope", {}, None),
        "not tracked": ("GET", "/crypto/ZZZ", api.auth, None),
        "wrong method": ("PATCH", "/crypto", api.auth, None),
        "not json": ("POST", "/auth/login", {"content-type": "text/plain"}, b"{}"),
        "too large": ("POST", "/crypto", {**api.auth, "content-type": "application/json"}, big),
    }
    statuses = {}
    for name, (method, path, headers, body) in requests.items():
        r = await api.client.request(method, path, headers=headers, content=body)
        assert r.headers["content-type"].startswith("application/json"), name
        assert r.headers.get("x-content-type-options") == "nosniff", name
        statuses[name] = r.status_code
    assert statuses == {
        "ok": 200,
        "health": 200,
        "bad body": 400,
        "no token": 401,
        "not found": 404,
        "not tracked": 404,
        "wrong method": 405,
        "not json": 415,
        "too large": 413,
    }


async def test_token_responses_are_never_cached(api):
    body = {"username": "erin", "password": "erin password"}
    registered = await api.client.post("/auth/register", json=body)
    logged_in = await api.client.post("/auth/login", json=body)
    for r in (registered, logged_in):
        assert "token" in r.json()
        assert r.headers.get("cache-control") == "no-store"


def allowed(r) -> set[str]:
    return {method.strip() for method in r.headers["allow"].split(",")}


@pytest.mark.parametrize(
    "method, path, expected",
    [
        ("PATCH", "/crypto/BTC/stats", {"GET"}),
        ("POST", "/crypto/BTC/history", {"GET"}),
        ("GET", "/crypto/BTC/refresh", {"PUT"}),
        ("PUT", "/crypto/BTC", {"GET", "DELETE"}),
        ("PATCH", "/crypto", {"GET", "POST"}),
        ("GET", "/auth/login", {"POST"}),
        ("DELETE", "/auth/register", {"POST"}),
    ],
)
async def test_405_names_the_allowed_methods(api, method, path, expected):
    r = await api.client.request(method, path, headers=api.auth)
    assert r.status_code == 405 and set(r.json()) == {"error"}
    assert expected <= allowed(r) and method not in allowed(r), r.headers["allow"]
    for other in allowed(r) - {"HEAD", "OPTIONS"}:  # each named method is answered
        assert (await api.client.request(other, path, headers=api.auth)).status_code != 405
