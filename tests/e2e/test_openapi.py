"""The OpenAPI document at /docs/openapi.json tells the truth: every operation lists its
request body and each status it answers with a schema, and the API's real answers
validate against those schemas. /docs loads nothing from another host."""

import re
from copy import deepcopy

import httpx
import pytest
from jsonschema import Draft202012Validator

from domain.model import PriceStats, Ticker
from interfaces.http.presenters import stats_json
from tests.fakes.coingecko_server import Failure

pytestmark = pytest.mark.integration

DB_DOWN, TOO_LARGE, NOT_JSON = 503, 413, 415
TRACKED = {200, 400, 401, 404, DB_DOWN}  # a /crypto/{symbol} route
STATUSES = {
    ("post", "/auth/register"): {201, 400, 403, 409, TOO_LARGE, NOT_JSON, DB_DOWN},
    ("post", "/auth/login"): {200, 400, 401, TOO_LARGE, NOT_JSON, 429, DB_DOWN},
    ("get", "/crypto"): {200, 400, 401, DB_DOWN},
    ("get", "/currencies"): {200, 401},
    ("get", "/coins"): {200, 400, 401, 500, 503},
    ("post", "/crypto"): {201, 400, 401, 409, TOO_LARGE, NOT_JSON, 500, DB_DOWN},
    ("get", "/crypto/{symbol}"): TRACKED,
    ("put", "/crypto/{symbol}/refresh"): TRACKED | {500},
    ("get", "/crypto/{symbol}/history"): TRACKED,
    ("get", "/crypto/{symbol}/stats"): TRACKED,
    ("delete", "/crypto/{symbol}"): TRACKED,
    ("get", "/health"): {200},
    ("get", "/health/ready"): {200, 503},
}
BODIES = {
    ("post", "/auth/register"): "NewUser",
    ("post", "/auth/login"): "Credentials",
    ("post", "/crypto"): "SymbolBody",
}
ERROR = {"$ref": "#/components/schemas/Error"}
JSON_TYPE = {"content-type": "application/json"}


async def document(api) -> dict:
    r = await api.client.get("/docs/openapi.json")
    assert r.status_code == 200
    return r.json()


def operations(spec: dict) -> dict[tuple[str, str], dict]:
    return {
        (method, path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    }


def json_body_schema(holder: dict) -> dict:
    """The application/json schema of a request body or response: the only type we use
    but for the live stream's (GET /crypto with Accept: text/event-stream)."""
    assert set(holder["content"]) - {"text/event-stream"} == {"application/json"}, holder
    return holder["content"]["application/json"]["schema"]


async def test_the_live_stream_is_documented_on_get_crypto_only(api) -> None:
    spec = await document(api)
    streams = [
        (method, path)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        for response in operation.get("responses", {}).values()
        if "text/event-stream" in response.get("content", {})
    ]
    assert streams == [("get", "/crypto")]
    description = spec["paths"]["/crypto"]["get"]["description"]
    assert "text/event-stream" in description and "snapshot" in description


def component(spec: dict, schema: dict) -> dict:
    return spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]


def validator(spec: dict, schema: dict) -> Draft202012Validator:
    """OpenAPI 3.0's schema dialect as JSON Schema: ``nullable`` becomes a null type."""

    def convert(node):
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        node = {key: convert(value) for key, value in node.items()}
        if node.pop("nullable", False):
            node["type"] = [node["type"], "null"]
        if "$ref" in node:
            node["$ref"] = node["$ref"].replace("#/components/schemas/", "#/$defs/")
        return node

    root = {**convert(deepcopy(schema)), "$defs": convert(spec["components"]["schemas"])}
    Draft202012Validator.check_schema(root)
    return Draft202012Validator(root)


def check_answer(spec: dict, method: str, path: str, response: httpx.Response) -> None:
    """``response`` is one the document lists for the operation, in body and headers."""
    operation = spec["paths"][path][method]
    documented = operation["responses"].get(str(response.status_code))
    assert documented, f"{method} {path}: {response.status_code} is not documented"
    errors = sorted(
        error.message
        for error in validator(spec, json_body_schema(documented)).iter_errors(response.json())
    )
    assert not errors, f"{method} {path} {response.status_code} {response.text}: {errors}"
    for name, header in documented.get("headers", {}).items():
        if header["required"]:
            assert name in response.headers, f"{method} {path} {response.status_code}: no {name}"


async def test_every_operation_documents_its_body_and_each_status_with_a_schema(api):
    spec = await document(api)
    assert spec["openapi"].startswith("3.0")
    found = operations(spec)
    assert set(found) == set(STATUSES)
    for key, operation in found.items():
        responses = operation["responses"]
        assert {int(status) for status in responses} == STATUSES[key], key
        for status, response in responses.items():
            schema = json_body_schema(response)
            if int(status) >= 400 and key != ("get", "/health/ready"):
                assert schema == ERROR, (key, status)
            else:
                assert component(spec, schema)["type"] == "object", (key, status)
        if key in BODIES:
            assert operation["requestBody"]["required"] is True
            assert json_body_schema(operation["requestBody"])["$ref"].endswith(BODIES[key])
        else:
            assert "requestBody" not in operation, key
        if key[1].startswith(("/crypto", "/coins", "/currencies")):
            assert operation["security"] == [{"token": []}], key
            assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
        else:
            assert "security" not in operation, key
    assert component(spec, ERROR) == {
        "additionalProperties": False,
        "properties": {"error": component(spec, ERROR)["properties"]["error"]},
        "required": ["error"],
        "title": "Error",
        "type": "object",
    }
    assert component(spec, ERROR)["properties"]["error"]["type"] == "string"
    login_429 = found[("post", "/auth/login")]["responses"]["429"]
    assert login_429["headers"]["Retry-After"]["required"] is True


async def test_the_shapes_are_the_ones_the_readme_promises(api):
    spec = await document(api)
    found = operations(spec)

    def success(key: tuple[str, str], status: int = 200) -> dict:
        return component(spec, json_body_schema(found[key]["responses"][str(status)]))

    crypto = success(("get", "/crypto/{symbol}"))  # the crypto itself, no wrapper
    fields = {"symbol", "name", "current_price", "last_updated"}
    assert set(crypto["properties"]) == set(crypto["required"]) == fields
    assert crypto["properties"]["last_updated"]["format"] == "date-time"
    # null: no price in the currency asked for (one configured after it was stored)
    assert crypto["properties"]["current_price"]["nullable"] is True
    for key, status in ((("post", "/crypto"), 201), (("put", "/crypto/{symbol}/refresh"), 200)):
        envelope = success(key, status)
        assert set(envelope["properties"]) == {"crypto"}
        assert component(spec, envelope["properties"]["crypto"]) == crypto
    listed = success(("get", "/crypto"))["properties"]["cryptos"]
    assert listed["type"] == "array" and component(spec, listed["items"]) == crypto
    assert set(success(("get", "/crypto/{symbol}/history"))["properties"]) == {"symbol", "history"}
    stats = success(("get", "/crypto/{symbol}/stats"))
    assert set(stats["properties"]) == {"symbol", "current_price", "stats"}
    assert stats["properties"]["current_price"]["nullable"] is True
    figures = component(spec, stats["properties"]["stats"])["properties"]
    assert figures["min_price"]["nullable"] is True and "nullable" not in figures["records_count"]
    assert success(("delete", "/crypto/{symbol}"))["properties"] == {}
    for key, status in ((("post", "/auth/register"), 201), (("post", "/auth/login"), 200)):
        assert set(success(key, status)["properties"]) == {"token"}
    symbol = found[("get", "/crypto/{symbol}")]["parameters"]
    assert [p for p in symbol if p["name"] == "symbol"] == [
        {
            "name": "symbol",
            "in": "path",
            "required": True,
            "description": "a ticker, in any case",
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9]{1,20}$", "example": "BTC"},
        }
    ]
    assert set(success(("get", "/currencies"))["properties"]) == {"currencies", "default"}


# Every route that answers a price takes ?currency=; DELETE and the others do not.
TAKE_CURRENCY = {
    ("get", "/crypto"),
    ("post", "/crypto"),
    ("get", "/coins"),
    ("get", "/crypto/{symbol}"),
    ("put", "/crypto/{symbol}/refresh"),
    ("get", "/crypto/{symbol}/history"),
    ("get", "/crypto/{symbol}/stats"),
}


async def test_the_currency_parameter_names_the_configured_codes_and_the_default(make_api):
    async with make_api(QUOTE_CURRENCIES="usd,eur,btc") as api:
        found = operations(await document(api))
    for key, operation in found.items():
        currency = [p for p in operation.get("parameters", []) if p["name"] == "currency"]
        if key not in TAKE_CURRENCY:
            assert not currency, key
            continue
        assert currency == [
            {
                "name": "currency",
                "in": "query",
                "required": False,
                "description": "the quote currency of the prices, in any case: one of usd, "
                "eur, btc (GET /currencies lists them); absent: the default, usd",
                "schema": {
                    "type": "string",
                    "default": "usd",
                    "example": "eur",
                    "enum": ["usd", "eur", "btc"],
                },
            }
        ], key
        refused = operation["responses"]["400"]["description"]
        assert "currency" in refused, key
        if key[1] != "/crypto" or key[0] == "post":  # the 400s they had stay described
            assert "; or " in refused, (key, refused)


async def test_the_real_answers_validate_against_the_documented_schemas(api):
    spec = await document(api)
    client, auth = api.client, api.auth
    alice = {"username": "alice", "password": "correct horse"}
    answers = [
        ("post", "/auth/register", await client.post("/auth/register", json=alice)),
        ("post", "/auth/register", await client.post("/auth/register", json=alice)),
        ("post", "/auth/register", await client.post("/auth/register", json={"username": "a"})),
        (
            "post",
            "/auth/register",
            await client.post("/auth/register", content=b"{", headers=JSON_TYPE),
        ),
        ("post", "/auth/login", await client.post("/auth/login", json=alice)),
        ("post", "/auth/login", await client.post("/auth/login", json={**alice, "password": "x"})),
        ("get", "/crypto", await client.get("/crypto")),
        ("get", "/crypto", await client.get("/crypto", headers={"Authorization": "Bearer x"})),
        ("get", "/crypto", await client.get("/crypto", headers=auth)),
        ("post", "/crypto", await client.post("/crypto", json={"symbol": "btc"}, headers=auth)),
        ("post", "/crypto", await client.post("/crypto", json={"symbol": "BTC"}, headers=auth)),
        ("post", "/crypto", await client.post("/crypto", json={"symbol": "zzz"}, headers=auth)),
        ("post", "/crypto", await client.post("/crypto", json={"symbol": "b-c"}, headers=auth)),
        (
            "post",
            "/crypto",
            await client.post(
                "/crypto", content=b"[" * (1024 * 1024 + 1), headers=auth | JSON_TYPE
            ),
        ),
        ("get", "/crypto", await client.get("/crypto", headers=auth)),
        ("get", "/crypto/{symbol}", await client.get("/crypto/btc", headers=auth)),
        ("get", "/crypto/{symbol}", await client.get("/crypto/ETH", headers=auth)),
        ("get", "/crypto/{symbol}", await client.get("/crypto/b-c", headers=auth)),
        ("put", "/crypto/{symbol}/refresh", await client.put("/crypto/BTC/refresh", headers=auth)),
        ("get", "/crypto/{symbol}/history", await client.get("/crypto/BTC/history", headers=auth)),
        ("get", "/crypto/{symbol}/stats", await client.get("/crypto/BTC/stats", headers=auth)),
        ("get", "/crypto/{symbol}/stats", await client.get("/crypto/ETH/stats", headers=auth)),
    ]
    api.gecko.fail(Failure.rate_limited(30), path="/simple/price", times=1)
    refresh = await client.put("/crypto/BTC/refresh", headers=auth)
    answers += [
        ("put", "/crypto/{symbol}/refresh", refresh),
        ("delete", "/crypto/{symbol}", await client.delete("/crypto/BTC", headers=auth)),
        ("delete", "/crypto/{symbol}", await client.delete("/crypto/BTC", headers=auth)),
        ("get", "/health", await client.get("/health")),
        ("get", "/health/ready", await client.get("/health/ready")),
    ]
    statuses = [response.status_code for _, _, response in answers]
    assert statuses[:14] == [201, 409, 400, 400, 200, 401, 401, 401, 200, 201, 409, 400, 400, 413]
    assert statuses[14:] == [200, 200, 404, 400, 200, 200, 200, 404, 500, 200, 404, 200, 200]
    assert "Retry-After" in refresh.headers
    # Not JSON: 400 or, with the content type checked, 415; either is documented.
    plain = await client.post("/auth/login", content=b"{}", headers={"content-type": "text/plain"})
    assert plain.status_code in (400, 415)
    answers.append(("post", "/auth/login", plain))
    for method, path, response in answers:
        check_answer(spec, method, path, response)


async def test_stats_of_an_empty_history_validate_too(api):
    """No route gives them today (a crypto is stored with its first price), but the
    presenter does, with null figures: the schema allows those."""
    spec = await document(api)
    schema = json_body_schema(spec["paths"]["/crypto/{symbol}/stats"]["get"]["responses"]["200"])
    empty = stats_json(Ticker("BTC"), PriceStats(1.5, None, None, None, None, None, 0))
    assert not list(validator(spec, schema).iter_errors(empty))
    assert list(validator(spec, schema).iter_errors({**empty, "extra": 1}))


URL = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+")
NAMESPACES = {"http://www.w3.org"}  # XML namespace names in the SVG: identifiers, never fetched


async def test_no_page_the_server_serves_references_another_host(api):
    paths = {
        f"/{route.path}".rstrip("/") or "/"
        for route in api.app.router.routes
        if "GET" in route.methods and not route.params
    }
    paths |= {"/static/app.js", "/static/app.css", "/static/icon.svg"}
    paths |= {"/docs", "/docs/swagger", "/docs/redoc", "/docs/oauth2-redirect.html"}
    assert {"/", "/docs", "/docs/openapi.json"} <= paths
    served = 0
    for path in sorted(paths):
        query = {"symbol": "btc"} if path == "/coins" else None  # its one required parameter
        r = await api.client.get(path, params=query, headers=api.auth, follow_redirects=True)
        if r.status_code == 404:
            continue
        assert r.status_code == 200, path
        served += 1
        hosts = set(URL.findall(r.text)) - NAMESPACES
        assert not hosts, f"{path} references {hosts}"
    assert served >= 6
    r = await api.client.get("/docs")
    assert r.is_redirect and r.headers["location"] == "/docs/openapi.json"
