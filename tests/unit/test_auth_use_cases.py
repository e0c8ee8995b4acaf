"""Login behind the throttle, closed registration, and tokens of users that exist."""

import pytest

from application.authenticate import Authenticate
from application.login_user import LoginUser
from application.register_user import RegisterUser
from domain.errors import (
    InvalidCredentials,
    InvalidToken,
    InvalidUsername,
    RegistrationClosed,
    TooManyAttempts,
)
from infrastructure.cache.known_users import KnownUsers
from tests.unit.fakes import CountingTokens, InMemoryUserRepository, PlainHasher, RecordingThrottle

ADDRESS = "192.0.2.1"


@pytest.fixture
def users():
    return InMemoryUserRepository()


@pytest.fixture
def hasher():
    return PlainHasher()


@pytest.fixture
def throttle():
    return RecordingThrottle()


@pytest.fixture
async def login(users, hasher, throttle):
    await RegisterUser(users, hasher, CountingTokens()).create("Alice", "correct horse")
    return LoginUser(users, hasher, CountingTokens(), throttle)


async def test_a_refused_attempt_never_reaches_the_password_check(login, hasher, throttle):
    throttle.refuse = TooManyAttempts(42)
    with pytest.raises(TooManyAttempts) as refusal:
        await login("alice", "correct horse", ADDRESS)  # the right password
    assert refusal.value.retry_after == 42
    assert hasher.verify_calls == []
    assert throttle.calls == [("check", "Alice", ADDRESS)]


async def test_a_failure_is_recorded_under_the_stored_spelling(login, throttle):
    with pytest.raises(InvalidCredentials):
        await login("ALICE", "wrong password", ADDRESS)
    assert throttle.calls == [("check", "Alice", ADDRESS), ("failure", "Alice", ADDRESS)]


async def test_an_unknown_user_counts_as_typed(login, throttle):
    with pytest.raises(InvalidCredentials):
        await login("Mallory", "whatever", ADDRESS)
    assert throttle.calls == [("check", "Mallory", ADDRESS), ("failure", "Mallory", ADDRESS)]


async def test_a_success_is_checked_again_then_resets_the_username(login, throttle):
    assert await login("alice", "correct horse", ADDRESS) == "token-for-1"
    assert throttle.calls == [
        ("check", "Alice", ADDRESS),
        ("check", "Alice", ADDRESS),  # failures counted while the password was checked
        ("reset", "Alice"),
    ]


async def test_closed_registration_refuses_sign_up_but_not_the_operator(users, hasher):
    register = RegisterUser(users, hasher, CountingTokens(), open=False)
    with pytest.raises(RegistrationClosed) as refusal:
        await register("alice", "correct horse")
    assert refusal.value.message == "registration is closed"
    assert users.users == {}
    user = await register.create("alice", "correct horse")
    assert (user.id, user.username) == (1, "alice")
    with pytest.raises(InvalidUsername):  # the rules hold for the operator too
        await register.create("a b", "correct horse")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingDirectory:
    def __init__(self, ids) -> None:
        self.ids = set(ids)
        self.asked: list[int] = []

    async def exists(self, user_id: int) -> bool:
        self.asked.append(user_id)
        return user_id in self.ids


async def test_known_users_are_remembered_for_the_ttl_only():
    clock, directory = Clock(), CountingDirectory({1, 2})
    known = KnownUsers(directory, ttl_seconds=30, clock=clock)
    assert await known.exists(1)
    clock.now += 29
    assert await known.exists(1)
    assert directory.asked == [1]
    directory.ids.discard(1)  # deleted
    clock.now += 1
    assert not await known.exists(1)
    assert directory.asked == [1, 1]


async def test_unknown_users_are_asked_for_every_time():
    directory = CountingDirectory(set())
    known = KnownUsers(directory, clock=Clock())
    assert not await known.exists(7)
    assert not await known.exists(7)
    assert directory.asked == [7, 7]


async def test_known_users_are_bounded():
    directory = CountingDirectory(range(100))
    known = KnownUsers(directory, max_entries=10, clock=Clock())
    for user_id in range(100):
        assert await known.exists(user_id)
    assert len(known) == 10
    assert await known.exists(99)
    assert directory.asked.count(99) == 1  # the most recent are the ones kept


async def test_a_token_counts_only_while_its_user_exists(users, hasher):
    tokens = CountingTokens()
    await RegisterUser(users, hasher, tokens).create("alice", "correct horse")
    authenticate = Authenticate(tokens, users)
    principal = await authenticate("token-for-1")
    assert principal.user_id == 1
    assert principal.expires_at == tokens.expires_at
    for token in ("token-for-2", "token-for-0"):
        with pytest.raises(InvalidToken) as refusal:
            await authenticate(token)
        assert "does not exist" in refusal.value.message
