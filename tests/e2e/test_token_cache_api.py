"""The API with its cache of verified tokens: bad tokens are refused as before, also once
a valid token is cached, and a token used before is refused at its exp."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime

import jwt
import pytest

from infrastructure.security import CachingTokenService, JwtTokenService
from tests.e2e.conftest import JWT_SECRET
from tests.e2e.test_auth_api import forged_tokens
from tests.support.clock import ManualClock

pytestmark = pytest.mark.integration


async def test_bad_tokens_are_refused_while_a_valid_one_is_cached(api):
    assert (await api.client.get("/crypto", headers=api.auth)).status_code == 200

    for kind, token in forged_tokens().items():
        r = await api.client.get("/crypto", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, kind
        assert r.json()["error"]

    assert (await api.client.get("/crypto", headers=api.auth)).status_code == 200
    assert (
        len(api.app.ctx.services.authenticate.tokens) == 1
    )  # the wired service caches: only the valid one


async def test_a_token_used_before_is_refused_at_its_exp(api):
    clock = ManualClock(float(int(time.time())))

    def now() -> datetime:
        return datetime.fromtimestamp(clock(), UTC)

    tokens = CachingTokenService(JwtTokenService(JWT_SECRET, 60, clock=now), clock=now)
    services = api.app.ctx.services
    api.app.ctx.services = replace(
        services, authenticate=replace(services.authenticate, tokens=tokens)
    )
    user_id = jwt.decode(api.auth["Authorization"].split()[1], options={"verify_signature": False})
    auth = {"Authorization": f"Bearer {tokens.issue(int(user_id['sub']))}"}

    assert (await api.client.get("/crypto", headers=auth)).status_code == 200
    clock.advance(59.5)
    assert (await api.client.get("/crypto", headers=auth)).status_code == 200
    assert len(tokens) == 1
    clock.advance(0.5)
    r = await api.client.get("/crypto", headers=auth)
    assert r.status_code == 401
    assert r.json() == {"error": "token expired"}
    assert r.headers["www-authenticate"].startswith("Bearer")
