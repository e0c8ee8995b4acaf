"""SharedLoginThrottle against real Redis: the machine's for the shared windows (a key
prefix of the test's own), a private redis-server for an outage. Each throttle stands
for one replica."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from domain.errors import TooManyAttempts
from infrastructure.security.login_throttle import (
    LoginLimits,
    SharedLoginThrottle,
    WindowLoginThrottle,
    build_login_throttle,
    username_key,
)
from infrastructure.settings import Settings
from tests.support.redis_server import (  # noqa: F401 (fixtures: machine_url, prefix, raw)
    RedisServer,
    machine_url_fixture,
    prefix_fixture,
    raw_fixture,
)

pytestmark = pytest.mark.integration

LOGGER = "infrastructure.security.login_throttle"
LIMITS = LoginLimits(per_username=3, per_address=5, window_seconds=600)
HOME = "192.0.2.1"

MakeThrottle = Callable[..., SharedLoginThrottle]


@pytest.fixture
async def make_throttle(machine_url: str, prefix: str) -> AsyncIterator[MakeThrottle]:
    made: list[SharedLoginThrottle] = []

    def make(url: str = machine_url, **options: Any) -> SharedLoginThrottle:
        options.setdefault("key_prefix", prefix)
        if url == machine_url:
            # The machine's Redis never fails here: a loaded machine answering slower than
            # the guard's 0.5 s must not turn into an outage the test is not about.
            options.setdefault("timeout_seconds", 10.0)
        throttle = SharedLoginThrottle(url, LIMITS, **options)
        made.append(throttle)
        return throttle

    yield make
    for throttle in made:
        await throttle.close()


async def fail(throttle, username: str, address: str = HOME) -> None:
    await throttle.check(username, address)
    await throttle.record_failure(username, address)


async def refused(throttle, username: str, address: str = HOME) -> int:
    with pytest.raises(TooManyAttempts) as refusal:
        await throttle.check(username, address)
    return refusal.value.retry_after


async def test_every_process_sees_the_failures_of_the_others(make_throttle):
    one, two = make_throttle(), make_throttle()
    for _ in range(LIMITS.per_username):
        await fail(one, "Alice")
    started = time.monotonic()
    retry_after = await refused(two, "alice", "198.51.100.7")
    assert 600 - (time.monotonic() - started) - 5 <= retry_after <= 600
    await two.check("alice2", HOME)
    await two.reset("ALICE")  # a success in one process resets it for all
    await one.check("alice", HOME)
    for name in ("bob", "carol"):  # HOME has 3 failures; 2 more from any process
        await fail(one if name == "bob" else two, name)
    await refused(one, "dave")


async def test_the_keys_are_under_the_prefix_and_name_nobody(make_throttle, raw, prefix):
    throttle = make_throttle()
    await fail(throttle, "Alice")
    keys = sorted([key.decode() async for key in raw.scan_iter(match=f"{prefix}*")])
    assert len(keys) == 2
    assert all(key.startswith(f"{prefix}LIMITER/") for key in keys)
    assert not any("alice" in key.lower() for key in keys)
    assert any(username_key("alice") in key for key in keys)
    assert 500 <= await raw.ttl(keys[0]) <= 600  # gone with the window


async def guess(throttle, username: str, address: str) -> int:
    """A wrong password's answer: 401, or 429 from either check."""
    try:
        await throttle.check(username, address)
        await asyncio.sleep(0.01)  # the password check, while the others go on
        await throttle.record_failure(username, address)
    except TooManyAttempts:
        return 429
    return 401


async def test_concurrent_guesses_across_processes_get_the_limit_and_no_more(make_throttle):
    throttles = [make_throttle() for _ in range(4)]
    answers = await asyncio.gather(
        *(guess(throttles[n % 4], "alice", f"203.0.113.{n}") for n in range(40))
    )
    assert sorted(answers) == [401] * LIMITS.per_username + [429] * (40 - LIMITS.per_username)


async def test_the_settings_give_a_throttle_shared_under_the_key_prefix(machine_url, prefix, raw):
    settings = Settings.from_env({"REDIS_URL": machine_url, "REDIS_KEY_PREFIX": prefix})
    throttle = build_login_throttle(settings)
    try:
        await fail(throttle, "alice")
    finally:
        await throttle.close()
    keys = [key.decode() async for key in raw.scan_iter(match=f"{prefix}*")]
    assert keys and all(key.startswith(f"{prefix}login:LIMITER/") for key in keys)
    assert isinstance(build_login_throttle(Settings.from_env({})), WindowLoginThrottle)


async def test_while_redis_is_down_each_process_counts_what_it_saw(
    make_throttle, private_redis: RedisServer, caplog
):
    caplog.set_level(logging.INFO, logger=LOGGER)
    throttle = make_throttle(private_redis.url, retry_after_seconds=0.05)
    other = make_throttle(private_redis.url, retry_after_seconds=0.05)
    await fail(throttle, "alice")
    await fail(throttle, "alice")
    await fail(other, "bob")
    await asyncio.to_thread(private_redis.stop)

    started = time.monotonic()
    await fail(throttle, "alice")  # this process saw two of alice's failures: a third
    assert time.monotonic() - started < 5  # bounded by the guard's timeout, not hanging
    await refused(throttle, "alice")
    await other.check("alice", HOME)  # the other process saw none of them
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 2  # one per process and outage, not one per call
    assert "counted per process" in warnings[0].getMessage()

    await asyncio.to_thread(private_redis.start)  # empty: no persistence
    deadline = time.monotonic() + 30

    def back() -> int:  # each throttle says once that it uses Redis again
        return sum("Redis is back" in r.getMessage() for r in caplog.records if r.name == LOGGER)

    while back() < 2:
        assert time.monotonic() < deadline, "the throttles never used Redis again"
        await asyncio.sleep(0.05)
        await throttle.reset("nobody")
        await other.reset("nobody")
    for _ in range(LIMITS.per_username):
        await fail(other, "carol", "198.51.100.7")
    await refused(throttle, "carol", "198.51.100.8")  # shared again
