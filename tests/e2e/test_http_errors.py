"""Every error is JSON {"error": ...}, whatever went wrong."""

from dataclasses import replace

import pytest

pytestmark = pytest.mark.integration


async def test_unknown_route_is_json_404(api):
    r = await api.client.get("/nope")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert set(r.json()) == {"error"}


async def test_wrong_method_is_json_405(api):
    r = await api.client.patch("/crypto", headers=api.auth)
    assert r.status_code == 405 and set(r.json()) == {"error"}
    r = await api.client.get("/auth/login")
    assert r.status_code == 405 and set(r.json()) == {"error"}


async def test_body_over_one_mib_is_json_413(api):
    big = b'{"symbol": "' + b"A" * (1024 * 1024 + 10) + b'"}'
    r = await api.client.post(
        "/crypto", content=big, headers={**api.auth, "content-type": "application/json"}
    )
    assert r.status_code == 413
    assert "too large" in r.json()["error"]


async def test_health(api):
    assert (await api.client.get("/health")).json() == {"status": "ok"}
    r = await api.client.get("/health/ready")
    assert r.status_code == 200 and r.json()["database"] is True


async def test_internal_errors_never_show_a_stack_trace(api):
    async def broken(*_args):
        raise RuntimeError("secret internals")

    api.app.ctx.services = replace(api.app.ctx.services, list_cryptos=broken)
    r = await api.client.get("/crypto", headers=api.auth)
    assert r.status_code == 500
    assert r.json() == {"error": "internal server error"}
    assert "secret" not in r.text and "Traceback" not in r.text


async def test_openapi_describes_the_routes_and_the_bearer_token(api):
    spec = (await api.client.get("/docs/openapi.json")).json()
    assert spec["info"]["title"] == "Crypto Price Server"
    assert {"/auth/register", "/auth/login", "/crypto", "/crypto/{symbol}/stats"} <= set(
        spec["paths"]
    )
    assert spec["paths"]["/crypto"]["get"]["security"] == [{"token": []}]
    assert "security" not in spec["paths"]["/auth/login"]["post"]
