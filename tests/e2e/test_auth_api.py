"""POST /auth/register, POST /auth/login and the bearer tokens, over real HTTP."""

import base64
import json
import time

import jwt
import pytest

from tests.e2e.conftest import JWT_SECRET

pytestmark = pytest.mark.integration

GOOD = {"username": "alice", "password": "correct horse"}


async def test_register_answers_a_working_token(api):
    r = await api.client.post("/auth/register", json=GOOD)
    assert r.status_code == 201
    token = r.json()["token"]
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"])
    assert set(claims) >= {"sub", "iat", "exp"} and claims["sub"].isdigit()
    assert claims["exp"] - claims["iat"] == 3600
    r = await api.client.get("/crypto", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200


@pytest.mark.parametrize(
    "body, message",
    [
        ({"password": "correct horse"}, "username is required"),
        ({"username": "alice"}, "password is required"),
        ({"username": 5, "password": "correct horse"}, "username must be a string"),
        ({"username": "alice", "password": ["x"]}, "password must be a string"),
        ({"username": "", "password": "correct horse"}, "username must not be empty"),
        ({"username": "alice", "password": ""}, "password must not be empty"),
        ({"username": "al", "password": "correct horse"}, "username must be 3 to 50"),
        ({"username": "a" * 51, "password": "correct horse"}, "username must be 3 to 50"),
        ({"username": "al ice", "password": "correct horse"}, "username must be 3 to 50"),
        ({"username": "alice", "password": "short"}, "at least 8"),
        ({"username": "alice", "password": "x" * 73}, "at most 72 bytes"),
        ({"username": "alice", "password": "é" * 37}, "at most 72 bytes"),
    ],
)
async def test_register_refuses_bad_bodies(api, body, message):
    r = await api.client.post("/auth/register", json=body)
    assert r.status_code == 400
    assert message in r.json()["error"]
    login = await api.client.post("/auth/login", json=GOOD)
    assert login.status_code in (400, 401)  # nothing was stored


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b'"text"', b"{", b"\xff\xfe"])
async def test_auth_routes_refuse_non_object_bodies(api, raw):
    for path in ("/auth/register", "/auth/login"):
        r = await api.client.post(path, content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 400, path
        assert "JSON" in r.json()["error"]


async def test_register_accepts_72_bytes_and_taken_username_is_409(api):
    body = {"username": "bob.b-b_", "password": "é" * 36}
    assert (await api.client.post("/auth/register", json=body)).status_code == 201
    r = await api.client.post("/auth/register", json={**body, "password": "another password"})
    assert r.status_code == 409
    assert "taken" in r.json()["error"]
    r = await api.client.post("/auth/login", json=body)
    assert r.status_code == 200


def subject(token: str) -> str:
    return jwt.decode(token, JWT_SECRET, algorithms=["HS256"])["sub"]


async def test_usernames_are_unique_in_any_case(api):
    carol = {"username": "Carol", "password": "carol password"}
    first = await api.client.post("/auth/register", json=carol)
    assert first.status_code == 201
    for spelling in ("carol", "CAROL"):
        r = await api.client.post(
            "/auth/register", json={"username": spelling, "password": "other password"}
        )
        assert (r.status_code, r.json()) == (
            409,
            {"error": f"username {spelling!r} is already taken"},
        )


async def test_login_accepts_the_username_in_any_case(api):
    carol = {"username": "Carol", "password": "carol password"}
    registered = await api.client.post("/auth/register", json=carol)
    for spelling in ("CAROL", "carol", "Carol"):
        r = await api.client.post("/auth/login", json={**carol, "username": spelling})
        assert r.status_code == 200, spelling
        assert subject(r.json()["token"]) == subject(registered.json()["token"])
    r = await api.client.post("/auth/login", json={"username": "CAROL", "password": "wrong pass"})
    assert r.status_code == 401


async def test_login(api):
    await api.client.post("/auth/register", json=GOOD)
    r = await api.client.post("/auth/login", json=GOOD)
    assert r.status_code == 200 and r.json()["token"]


async def test_login_failures_are_one_401(api):
    await api.client.post("/auth/register", json=GOOD)
    errors = set()
    for body in (
        {"username": "alice", "password": "wrong horse"},
        {"username": "nobody", "password": "correct horse"},
        {"username": "alice", "password": "correct horse" + "x" * 80},
        {"username": "x", "password": "y"},  # no length rules on login
    ):
        r = await api.client.post("/auth/login", json=body)
        assert r.status_code == 401, body
        errors.add(r.json()["error"])
    assert errors == {"invalid username or password"}


async def test_login_checks_a_hash_even_for_unknown_users(make_api):
    """An unknown user costs about as much as a wrong password (a dummy bcrypt check).
    At cost 10 a check takes tens of milliseconds, far above the HTTP round trip."""
    async with make_api(BCRYPT_ROUNDS="10") as api:
        await api.client.post("/auth/register", json=GOOD)
        await check_timing(api)


async def check_timing(api):

    async def timed(body):
        start = time.perf_counter()
        await api.client.post("/auth/login", json=body)
        return time.perf_counter() - start

    await timed({"username": "nobody", "password": "warm up"})  # the dummy hash is made once
    known = min([await timed({"username": "alice", "password": "wrong"}) for _ in range(3)])
    unknown = min([await timed({"username": "nobody", "password": "wrong"}) for _ in range(3)])
    assert unknown > known / 3


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def forged_tokens() -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": "1", "iat": now, "exp": now + 600}
    return {
        "other secret": jwt.encode(claims, "x" * 40, algorithm="HS256"),
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}.",
        "expired": jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, JWT_SECRET),
        "no exp": jwt.encode({"sub": "1", "iat": now}, JWT_SECRET),
        "no sub": jwt.encode({"iat": now, "exp": now + 600}, JWT_SECRET),
        "no iat": jwt.encode({"sub": "1", "exp": now + 600}, JWT_SECRET),
        "HS512": jwt.encode(claims, JWT_SECRET, algorithm="HS512"),
        "garbage": "not.a.token",
        "tampered": jwt.encode(claims, JWT_SECRET)[:-3] + "AAA",
    }


@pytest.mark.parametrize("kind", list(forged_tokens()))
async def test_forged_tokens_are_401(api, kind):
    token = forged_tokens()[kind]
    r = await api.client.get("/crypto", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, kind
    assert r.json()["error"]
    assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Basic abc", "Token abc", "Bearer a b", "bearer"]
)
async def test_missing_or_malformed_authorization_is_401(api, header):
    headers = {} if header is None else {"Authorization": header}
    for method, path in [
        ("GET", "/crypto"),
        ("POST", "/crypto"),
        ("GET", "/crypto/BTC"),
        ("PUT", "/crypto/BTC/refresh"),
        ("GET", "/crypto/BTC/history"),
        ("GET", "/crypto/BTC/stats"),
        ("DELETE", "/crypto/BTC"),
    ]:
        r = await api.client.request(method, path, headers=headers, json={"symbol": "BTC"})
        assert r.status_code == 401, (method, path)
        assert "error" in r.json()


@pytest.mark.parametrize(
    "raw", [b"Bearer \xe9", b"Bearer abc\xff.def.ghi", "Bearer \u00e9".encode(), b"Bearer a\x01b"]
)
async def test_a_token_of_bytes_outside_ascii_is_401_not_500(api, raw):
    """Sanic decodes header bytes as latin-1; PyJWT then failed to encode them (500)."""
    r = await api.client.get("/crypto", headers={"Authorization": raw})
    assert r.status_code == 401
    assert r.json() == {"error": "malformed Authorization header: expected 'Bearer <token>'"}


async def test_the_automatic_head_of_a_token_route_needs_the_token_too(api):
    # sanic-ext adds HEAD to every GET route; it runs the GET's handler, so it answers
    # whether a crypto is tracked unless it asks for the token as well.
    added = await api.client.post("/crypto", json={"symbol": "BTC"}, headers=api.auth)
    assert added.status_code == 201
    for path in ("/crypto", "/crypto/BTC", "/crypto/BTC/history", "/crypto/BTC/stats"):
        assert (await api.client.head(path)).status_code == 401, path
        assert (await api.client.head(path, headers=api.auth)).status_code == 200, path
