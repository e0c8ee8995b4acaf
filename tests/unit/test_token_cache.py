from __future__ import annotations

from datetime import timedelta

import jwt
import pytest

from application.authenticate import Authenticate
from domain.errors import InvalidToken
from infrastructure.security import CachingTokenService, JwtTokenService
from tests.unit.fakes import InMemoryUserRepository
from tests.unit.test_tokens import OTHER_SECRET, SECRET, START, Clock, b64, claims, rejected

LIFETIME = 3600


class CountingJwt(JwtTokenService):
    """The real verification, counted."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(SECRET, LIFETIME, clock=clock)
        self.verified = 0

    def verify(self, token: str) -> tuple[str, int]:
        self.verified += 1
        return super().verify(token)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def inner(clock) -> CountingJwt:
    return CountingJwt(clock)


@pytest.fixture
def tokens(inner, clock) -> CachingTokenService:
    return CachingTokenService(inner, clock=clock)


def test_a_hit_does_not_decode_again(tokens, inner):
    token = tokens.issue(42)

    assert [tokens.verify(token)[0] for _ in range(5)] == ["42"] * 5
    assert inner.verified == 1
    assert len(tokens) == 1


def test_a_cached_token_expires_at_its_exp_to_the_second(tokens, inner, clock):
    token = tokens.issue(42)
    assert tokens.verify(token)[0] == "42"

    clock.now = START + timedelta(seconds=LIFETIME - 1, microseconds=999_999)
    assert tokens.verify(token)[0] == "42"
    assert inner.verified == 1  # still from the cache

    clock.now = START + timedelta(seconds=LIFETIME)
    assert rejected(tokens, token) == "token expired"
    assert rejected(JwtTokenService(SECRET, LIFETIME, clock=clock), token) == "token expired"
    assert inner.verified == 1  # refused by the cache itself, at exp
    assert len(tokens) == 0
    assert rejected(tokens, token) == "token expired"  # and by the decode after that


def forgeries() -> dict[str, str]:
    """Tokens the plain service refuses, each with the claims of ``issue(42)`` at START."""
    valid = jwt.encode(claims(), SECRET, algorithm="HS256")
    header, payload, signature = valid.split(".")
    past = int((START - timedelta(hours=2)).timestamp())
    return {
        "other key": jwt.encode(claims(), OTHER_SECRET, algorithm="HS256"),
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "alg none, signed": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.{signature}",
        "tampered payload": f"{header}.{b64(claims(sub='1'))}.{signature}",
        "tampered signature": f"{header}.{payload}.{signature[:-2]}AA",
        "HS512": jwt.encode(claims(), SECRET, algorithm="HS512"),
        "expired": jwt.encode(claims(iat=past, exp=past + LIFETIME), SECRET, algorithm="HS256"),
        "garbage": "not.a.token",
    }


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "after a valid token"])
@pytest.mark.parametrize("kind", list(forgeries()))
def test_bad_tokens_are_refused_as_before_and_never_cached(tokens, inner, clock, kind, warm):
    bad = forgeries()[kind]
    if warm:
        valid = tokens.issue(42)
        assert valid == jwt.encode(claims(), SECRET, algorithm="HS256")  # the same claims
        assert tokens.verify(valid)[0] == "42"
    expected = rejected(JwtTokenService(SECRET, LIFETIME, clock=clock), bad)
    before = inner.verified

    assert [rejected(tokens, bad) for _ in range(3)] == [expected] * 3
    assert inner.verified == before + 3  # verified (and refused) every time
    assert len(tokens) == (1 if warm else 0)


def test_keyed_by_the_whole_token(tokens, inner, clock):
    first = tokens.issue(42)
    clock.now += timedelta(seconds=1)
    second = tokens.issue(42)  # same user, another token
    assert first != second

    assert tokens.verify(first)[0] == tokens.verify(second)[0] == "42"
    assert inner.verified == 2
    assert len(tokens) == 2


def test_bounded_least_recently_used_first(inner, clock):
    tokens = CachingTokenService(inner, max_entries=2, clock=clock)
    a, b, c = (tokens.issue(user) for user in (1, 2, 3))
    tokens.verify(a)[0]
    tokens.verify(b)[0]
    tokens.verify(a)[0]  # b is now the least recently used
    tokens.verify(c)[0]
    assert len(tokens) == 2
    assert inner.verified == 3

    assert tokens.verify(a)[0] == "1"
    assert inner.verified == 3  # kept
    assert tokens.verify(b)[0] == "2"
    assert inner.verified == 4  # evicted, so verified again


def test_rejects_a_nonsense_bound(inner):
    with pytest.raises(ValueError):
        CachingTokenService(inner, max_entries=0)


async def test_a_token_used_before_is_refused_by_the_guard_once_expired(tokens, clock):
    users = InMemoryUserRepository()
    user = await users.add("alice", "hash")
    authenticate = Authenticate(tokens, users)
    token = tokens.issue(user.id)
    assert (await authenticate(token)).user_id == user.id

    clock.now += timedelta(seconds=LIFETIME)
    with pytest.raises(InvalidToken, match=r"^token expired$"):
        await authenticate(token)
