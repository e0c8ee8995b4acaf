from __future__ import annotations

import base64
import json
import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from domain.errors import InvalidToken
from infrastructure.security import JwtTokenService, load_or_create_secret
from infrastructure.settings import SettingsError

SECRET = "s" * 64
OTHER_SECRET = "o" * 64
START = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tokens(clock) -> JwtTokenService:
    return JwtTokenService(SECRET, 3600, clock=clock)


def claims(**overrides: object) -> dict[str, object]:
    now = int(START.timestamp())
    values: dict[str, object] = {"sub": "42", "iat": now, "exp": now + 3600}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def rejected(tokens: JwtTokenService, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        tokens.verify(token)[0]
    return caught.value.message


def test_round_trip(tokens, clock):
    token = tokens.issue(42)

    assert tokens.verify(token)[0] == "42"
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    decoded = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    now = int(START.timestamp())
    assert decoded == {"sub": "42", "iat": now, "exp": now + 3600}


def test_default_clock_is_the_real_time():
    tokens = JwtTokenService(SECRET, 60)
    token = tokens.issue(7)
    assert tokens.verify(token)[0] == "7"
    decoded = jwt.decode(token, SECRET, algorithms=["HS256"])  # PyJWT's own time checks agree
    assert decoded["exp"] - decoded["iat"] == 60


def test_expired_token(tokens, clock):
    token = tokens.issue(42)
    clock.now += timedelta(seconds=3599)
    assert tokens.verify(token)[0] == "42"
    clock.now += timedelta(seconds=1)
    assert rejected(tokens, token) == "token expired"


def test_token_expired_in_real_time_is_refused_by_default():
    token = jwt.encode(claims(), SECRET, algorithm="HS256")  # from 2024
    assert rejected(JwtTokenService(SECRET, 60), token) == "token expired"


def test_token_issued_in_the_future_is_refused(tokens, clock):
    future = int((START + timedelta(minutes=10)).timestamp())
    token = jwt.encode(claims(iat=future, exp=future + 3600), SECRET, algorithm="HS256")
    assert rejected(tokens, token) == "invalid token"


def test_forged_signature(tokens):
    forged = jwt.encode(claims(), OTHER_SECRET, algorithm="HS256")
    assert rejected(tokens, forged) == "invalid token"


def test_tampered_payload(tokens):
    header, _, signature = tokens.issue(42).split(".")
    tampered = f"{header}.{b64(claims(sub='1'))}.{signature}"
    assert rejected(tokens, tampered) == "invalid token"


@pytest.mark.parametrize("signature", ["", "c2lnbmF0dXJl"])
def test_alg_none_token(tokens, signature):
    token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}.{signature}"
    assert rejected(tokens, token) == "invalid token"


def test_other_algorithm_with_the_same_secret(tokens):
    token = jwt.encode(claims(), SECRET, algorithm="HS512")
    assert rejected(tokens, token) == "invalid token"


@pytest.mark.parametrize("missing", ["exp", "iat", "sub"])
def test_missing_claim(tokens, missing):
    token = jwt.encode(claims(**{missing: None}), SECRET, algorithm="HS256")
    assert rejected(tokens, token) == "invalid token"


@pytest.mark.parametrize(
    "overrides",
    [
        {"sub": "abc"},
        {"sub": ""},
        {"sub": "-1"},
        {"sub": "4 2"},
        {"sub": "٤٢"},  # Arabic-Indic digits: isdigit() but not an id
        {"exp": "9999999999"},
        {"exp": True},
        {"iat": 1.5},
    ],
)
def test_claims_of_the_wrong_shape(tokens, overrides):
    token = jwt.encode(claims(**overrides), SECRET, algorithm="HS256")
    assert rejected(tokens, token) == "invalid token"


def test_sub_that_is_a_number_not_a_string(tokens):
    # PyJWT refuses to *encode* a non-string sub, so build the token by hand.
    header, _, _ = tokens.issue(1).split(".")
    signing_input = f"{header}.{b64(claims(sub=42))}"
    signature = jwt.api_jws.get_algorithm_by_name("HS256").sign(
        signing_input.encode(), SECRET.encode()
    )
    token = f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    assert rejected(tokens, token) == "invalid token"


@pytest.mark.parametrize(
    "token", ["", "garbage", "a.b.c", "Bearer x.y.z", "...", "é.é.é", "eyJ.eyJ.", b64({}) + ".."]
)
def test_garbage(tokens, token):
    assert rejected(tokens, token) == "invalid token"


def test_rejects_a_short_secret_and_a_nonsense_lifetime():
    with pytest.raises(ValueError, match="32 bytes"):
        JwtTokenService("too short", 3600)
    with pytest.raises(ValueError):
        JwtTokenService(SECRET, 0)


# --- the dev secret file ------------------------------------------------------------------


def test_secret_is_created_private_and_reused(tmp_path: Path):
    data_dir = tmp_path / "data" / "nested"  # made if missing

    secret = load_or_create_secret(data_dir)

    path = data_dir / "jwt_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == secret
    assert len(secret) >= 64
    assert load_or_create_secret(data_dir) == secret
    assert os.listdir(data_dir) == ["jwt_secret"]  # no temporary file left
    JwtTokenService(secret, 60)  # long enough to be used


def test_secrets_differ_between_data_dirs(tmp_path: Path):
    assert load_or_create_secret(tmp_path / "a") != load_or_create_secret(tmp_path / "b")


def test_an_existing_secret_file_is_used_as_it_is(tmp_path: Path):
    (tmp_path / "jwt_secret").write_text("k" * 40 + "\n")
    assert load_or_create_secret(tmp_path) == "k" * 40


def test_an_unusable_secret_file_stops_start_up(tmp_path: Path):
    (tmp_path / "jwt_secret").write_text("short\n")
    with pytest.raises(SettingsError, match="delete it"):
        load_or_create_secret(tmp_path)


def race(data_dir: Path, creators: int) -> list[str]:
    start = threading.Barrier(creators)

    def create(_: int) -> str:
        start.wait()
        return load_or_create_secret(data_dir)

    with ThreadPoolExecutor(creators) as pool:
        return list(pool.map(create, range(creators)))


def test_racing_creators_all_get_the_same_secret(tmp_path: Path):
    for attempt in range(5):
        data_dir = tmp_path / str(attempt)
        results = race(data_dir, 16)
        assert len(results) == 16
        assert len(set(results)) == 1
        assert os.listdir(data_dir) == ["jwt_secret"]


@pytest.mark.parametrize("token", ["\xe9", "abc\xff.def.ghi", "a.b.\udc80"])
def test_a_token_that_is_not_ascii_is_invalid_not_a_crash(tokens, token):
    with pytest.raises(InvalidToken):
        tokens.verify(token)
