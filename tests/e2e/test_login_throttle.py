"""Login throttling over HTTP, with the default limits: 10 failures per username, 50 per
client address, in 600 s. With the machine's Redis (the default here) and without."""

import pytest

pytestmark = pytest.mark.integration

TESTER = {"username": "tester", "password": "test password"}  # registered by make_api
WINDOW = 600


@pytest.fixture(params=["redis", "in-process"])
def throttled_api(request, make_api):
    overrides = {} if request.param == "redis" else {"REDIS_URL": ""}
    return lambda **more: make_api(**overrides, **more)


async def login(api, username, password, **headers):
    return await api.client.post(
        "/auth/login", json={"username": username, "password": password}, headers=headers
    )


def assert_throttled(r):
    assert r.status_code == 429, r.text
    assert r.json()["error"].startswith("too many failed logins")
    assert WINDOW - 60 <= int(r.headers["retry-after"]) <= WINDOW


async def test_ten_wrong_passwords_hold_even_the_right_one(throttled_api):
    async with throttled_api() as api:
        for n in range(10):
            r = await login(api, "tester", f"wrong password {n}")
            assert r.status_code == 401, n
        assert_throttled(await login(api, "tester", TESTER["password"]))
        assert_throttled(await login(api, "TESTER", TESTER["password"]))  # in any case
        other = {"username": "other", "password": "other password"}
        assert (await api.client.post("/auth/register", json=other)).status_code == 201
        assert (await login(api, **other)).status_code == 200  # others are not held


async def test_a_successful_login_resets_the_username(throttled_api):
    async with throttled_api() as api:
        for _ in range(9):
            assert (await login(api, "tester", "wrong password")).status_code == 401
        assert (await login(api, "Tester", TESTER["password"])).status_code == 200
        for _ in range(10):
            assert (await login(api, "tester", "wrong password")).status_code == 401
        assert_throttled(await login(api, "tester", "wrong password"))


async def test_fifty_failures_from_one_address_hold_every_username(throttled_api):
    async with throttled_api() as api:
        for n in range(50):
            # A forged X-Forwarded-For is no other address: no proxy is trusted.
            forged = {"X-Forwarded-For": f"203.0.113.{n}"}
            assert (await login(api, f"user{n}", "wrong password", **forged)).status_code == 401
        assert_throttled(await login(api, "tester", TESTER["password"]))


async def test_behind_a_trusted_proxy_the_forwarded_address_counts(make_api):
    async with make_api(PROXIES_COUNT="1", LOGIN_FAILURES_PER_ADDRESS="5") as api:
        client = {"X-Forwarded-For": "203.0.113.7"}
        for n in range(5):
            assert (await login(api, f"user{n}", "wrong password", **client)).status_code == 401
        assert_throttled(await login(api, "tester", TESTER["password"], **client))
        other = {"X-Forwarded-For": "198.51.100.9"}
        assert (await login(api, "tester", TESTER["password"], **other)).status_code == 200
        # The proxy appends the address it saw; what the client wrote before it is not trusted.
        spoofed = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
        assert_throttled(await login(api, "tester", TESTER["password"], **spoofed))
