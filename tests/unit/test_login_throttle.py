"""The login throttle's rules, on limits' in-memory storage and a hand-driven clock."""

import asyncio
from types import SimpleNamespace

import limits.aio.storage.memory
import pytest
from limits.aio.storage import MemoryStorage

from application.login_user import LoginUser
from application.register_user import RegisterUser
from domain.errors import InvalidCredentials, TooManyAttempts
from infrastructure.security.login_throttle import (
    LoginLimits,
    WindowLoginThrottle,
    address_key,
    username_key,
)
from infrastructure.settings import Settings
from tests.unit.fakes import CountingTokens, InMemoryUserRepository, PlainHasher

LIMITS = LoginLimits(per_username=3, per_address=5, window_seconds=60)
HOME, AWAY = "192.0.2.1", "198.51.100.7"


class Clock:
    """time.time's scale, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    # limits stamps its in-memory windows with time.time() itself: give it ours.
    monkeypatch.setattr(limits.aio.storage.memory, "time", SimpleNamespace(time=fake))
    return fake


@pytest.fixture
def throttle(clock):
    return WindowLoginThrottle(MemoryStorage(), LIMITS, clock=clock)


async def fail(throttle, username, address=HOME):
    await throttle.check(username, address)
    await throttle.record_failure(username, address)


async def refused(throttle, username, address=HOME) -> int:
    with pytest.raises(TooManyAttempts) as refusal:
        await throttle.check(username, address)
    return refusal.value.retry_after


async def test_the_limit_of_failures_for_a_username_refuses_the_next_attempt(throttle, clock):
    for _ in range(LIMITS.per_username):
        await fail(throttle, "alice")
        clock.advance(10)
    # The first failure leaves the window 60 s after it: 30 s have passed.
    assert await refused(throttle, "alice") == 30
    assert await refused(throttle, "alice", AWAY) == 30  # any address
    await throttle.check("bob", HOME)  # others are not held


async def test_usernames_count_in_any_case(throttle):
    for spelling in ("Alice", "ALICE", "alice"):
        await fail(throttle, spelling)
    await refused(throttle, "aLiCe")


async def test_waiting_retry_after_lets_one_attempt_through(throttle, clock):
    await fail(throttle, "alice")
    clock.advance(20.5)
    await fail(throttle, "alice")
    await fail(throttle, "alice")
    clock.advance(10)
    retry_after = await refused(throttle, "alice")
    assert retry_after == 30  # 29.5 s until the first failure leaves the window, rounded up
    clock.advance(retry_after - 1)
    assert await refused(throttle, "alice") == 1
    clock.advance(1)
    await fail(throttle, "alice")  # the first failure is out: one gets through
    assert await refused(throttle, "alice") == 20  # then the second's turn


async def test_a_success_resets_the_username_but_not_the_address(throttle):
    for name in ("alice", "alice", "alice", "bob"):
        await fail(throttle, name)
    await refused(throttle, "alice", AWAY)
    await throttle.reset("alice")
    for _ in range(LIMITS.per_username):
        await fail(throttle, "alice", AWAY)  # a fresh count...
    await refused(throttle, "alice", AWAY)
    await fail(throttle, "dave")  # ...while HOME keeps its 4 failures: this is the 5th
    await refused(throttle, "erin", HOME)


async def test_the_limit_of_failures_from_an_address_holds_every_username(throttle, clock):
    for n in range(LIMITS.per_address):
        await fail(throttle, f"user{n}")
        clock.advance(1)
    assert await refused(throttle, "someone") == 55
    await throttle.check("someone", AWAY)
    clock.advance(55.5)
    await throttle.check("someone", HOME)


class YieldingHasher(PlainHasher):
    """Lets the other logins run while it checks, as bcrypt in a thread does."""

    async def verify(self, password, password_hash):
        await asyncio.sleep(0)
        return await super().verify(password, password_hash)


@pytest.fixture
async def login(throttle):
    users, hasher = InMemoryUserRepository(), YieldingHasher()
    await RegisterUser(users, hasher, CountingTokens()).create("alice", "correct horse")
    return LoginUser(users, hasher, CountingTokens(), throttle)


async def burst(login, passwords):
    return await asyncio.gather(
        *(login("alice", p, f"203.0.113.{n}") for n, p in enumerate(passwords)),
        return_exceptions=True,
    )


async def test_a_burst_of_guesses_learns_no_more_than_the_limit_allows(login):
    # All pass the first check together; the right password's answer comes last.
    outcomes = await burst(login, [f"guess {n}" for n in range(20)] + ["correct horse"])
    kinds = [type(outcome) for outcome in outcomes]
    assert kinds == [InvalidCredentials] * 3 + [TooManyAttempts] * 18
    # Had the right one got a token, or any other answer than its neighbours, it would
    # stand out from the wrong ones: it is one more 429 among them.


async def test_the_right_password_within_the_limit_still_logs_in(login):
    outcomes = await burst(login, ["guess 1", "correct horse", "guess 2", "guess 3"])
    assert outcomes[1] == "token-for-1"
    # The success reset the count: no refusal
    assert [type(o) for o in outcomes[2:]] == [InvalidCredentials, InvalidCredentials]


async def test_concurrent_right_passwords_are_not_held(login):
    assert await burst(login, ["correct horse"] * 30) == ["token-for-1"] * 30


async def test_a_refused_attempt_costs_the_address_nothing(throttle):
    for _ in range(LIMITS.per_username):
        await fail(throttle, "alice")
    for _ in range(10):
        await refused(throttle, "alice")
    await fail(throttle, "bob")  # the address has 4 failures, not 14
    await fail(throttle, "carol")
    await refused(throttle, "dave")


@pytest.mark.parametrize(
    "address, same_as",
    [
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2:ffff::9"),  # one /64
        ("[2001:db8::1]", "2001:db8::2"),  # bracketed by Sanic from a proxy header
        ("::ffff:192.0.2.1", "192.0.2.1"),
    ],
)
def test_addresses_that_belong_to_one_client_share_a_key(address, same_as):
    assert address_key(address) == address_key(same_as)


def test_addresses_of_different_clients_do_not():
    keys = {address_key(a) for a in ("192.0.2.1", "192.0.2.2", "2001:db8:0:1::1", "unknown")}
    assert len(keys) == 4


def test_keys_stay_short_whatever_was_typed():
    assert len(username_key("x" * 1_000_000)) == 32
    assert len(username_key("\ud800")) == 32  # a lone surrogate does not crash it
    assert len(address_key("y" * 10_000)) == 32
    assert username_key("Alice") == username_key("ALICE")


def test_the_default_limits_are_the_settings_defaults():
    settings = Settings.from_env({})
    assert LoginLimits() == LoginLimits(
        settings.login_failures_per_username,
        settings.login_failures_per_address,
        settings.login_window_seconds,
    )


def test_limits_must_be_positive():
    with pytest.raises(ValueError):
        LoginLimits(per_username=0)
