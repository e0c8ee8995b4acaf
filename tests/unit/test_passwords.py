from __future__ import annotations

import asyncio
import time

import bcrypt
import pytest

from infrastructure.security import BcryptPasswordHasher

PASSWORD = "correct horse battery"


@pytest.fixture
def hasher() -> BcryptPasswordHasher:
    return BcryptPasswordHasher(rounds=4)


async def test_hash_round_trip(hasher):
    hashed = await hasher.hash(PASSWORD)

    assert hashed.startswith("$2b$04$")
    assert bcrypt.checkpw(PASSWORD.encode(), hashed.encode())
    assert await hasher.verify(PASSWORD, hashed) is True
    assert await hasher.hash(PASSWORD) != hashed  # a fresh salt each time


async def test_wrong_password_fails(hasher):
    hashed = await hasher.hash(PASSWORD)

    assert await hasher.verify("correct horse battery!", hashed) is False
    assert await hasher.verify("Correct horse battery", hashed) is False
    assert await hasher.verify("", hashed) is False


async def test_unknown_user_fails(hasher):
    assert await hasher.verify(PASSWORD, None) is False
    assert await hasher.verify("", None) is False


async def test_non_ascii_password_round_trip(hasher):
    password = "mot de passe é 密码 🔑"
    hashed = await hasher.hash(password)
    assert await hasher.verify(password, hashed) is True
    assert await hasher.verify("mot de passe e 密码 🔑", hashed) is False


@pytest.mark.parametrize(
    "password",
    ["a" * 73, "é" * 37, "🔑" * 19],  # 73, 74 and 76 bytes of UTF-8
    ids=["73 ascii", "37 e-acute", "19 emoji"],
)
async def test_over_72_bytes_never_reaches_bcrypt(hasher, password):
    assert len(password.encode()) > 72
    with pytest.raises(ValueError, match="72 bytes"):
        await hasher.hash(password)

    # Even against a hash of its first 72 bytes (what bcrypt would have compared):
    prefix = password.encode()[:72]
    truncated_hash = bcrypt.hashpw(prefix, bcrypt.gensalt(4)).decode()
    assert await hasher.verify(password, truncated_hash) is False
    assert await hasher.verify(password, None) is False


async def test_72_bytes_is_accepted(hasher):
    password = "é" * 36
    assert len(password.encode()) == 72
    assert await hasher.verify(password, await hasher.hash(password)) is True


@pytest.mark.parametrize(
    "stored", ["", "garbage", "$2b$04$short", "$2b$04$" + "é" * 53, "plain text password"]
)
async def test_malformed_stored_hash_fails_without_raising(hasher, stored):
    assert await hasher.verify(PASSWORD, stored) is False


async def test_a_hash_made_at_another_cost_still_verifies(hasher):
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(5)).decode()
    assert await hasher.verify(PASSWORD, hashed) is True


async def timed(coroutine) -> float:
    started = time.perf_counter()
    await coroutine
    return time.perf_counter() - started


async def test_every_failure_costs_about_one_check():
    hasher = BcryptPasswordHasher(rounds=9)  # ~35 ms a check: measurable, still quick
    hashed = await hasher.hash(PASSWORD)
    await hasher.verify(PASSWORD, None)  # makes the dummy hash once

    # Real time is the point here. Each round times every case once, so a burst of load
    # from elsewhere slows all the cases of a round; the fastest round of each counts.
    cases = [
        ("wrong password", hashed),
        (PASSWORD, None),
        ("x" * 73, hashed),
        (PASSWORD, "garbage"),
    ]
    rounds = [[await timed(hasher.verify(*case)) for case in cases] for _ in range(5)]
    real, *others = (min(times) for times in zip(*rounds, strict=True))
    for case, spent in zip(cases[1:], others, strict=True):
        assert spent > real * 0.5, (case[0][:8], case[1], spent, real)


async def test_hashing_runs_off_the_event_loop():
    hasher = BcryptPasswordHasher(rounds=4)
    hashing = asyncio.create_task(hasher.hash(PASSWORD))

    async def another_task() -> bool:
        return hashing.done()

    # Both tasks start in this turn of the loop, hashing first: a hash on the loop
    # would be finished before the other task got to run.
    assert await asyncio.create_task(another_task()) is False
    assert (await hashing).startswith("$2b$04$")


@pytest.mark.parametrize("rounds", [3, 32, True])
def test_rejects_a_cost_bcrypt_does_not_take(rounds):
    with pytest.raises(ValueError):
        BcryptPasswordHasher(rounds=rounds)
