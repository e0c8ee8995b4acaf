"""The shapes of the API's bodies, for the OpenAPI description at /docs/openapi.json.

The models only describe: requests are read by ``bodies.py`` (whose error messages are
the contract) and answers are built by ``presenters.py``; tests check that the real
answers validate against these schemas. The decorators at the end attach them to the
routes through sanic-ext's ``openapi`` decorators.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema
from sanic_ext.extensions.openapi import openapi
from sanic_ext.extensions.openapi.builders import OperationStore
from sanic_ext.extensions.openapi.definitions import Component, Parameter, Reference, Response

from domain.model import PASSWORD_MAX_BYTES, PASSWORD_MIN_BYTES, QuoteCurrencies

F = TypeVar("F", bound=Callable[..., Any])

JSON = "application/json"
TICKER_PATTERN = r"^[A-Za-z0-9]{1,20}$"
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
NO_NUL = r"^[^\x00]*$"  # no string in a body may hold a NUL character (400)


class OpenApi30Schema(GenerateJsonSchema):
    """sanic-ext writes OpenAPI 3.0.3, where a null is ``nullable: true``, not a type."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return {**self.generate_inner(schema["schema"]), "nullable": True}

    def literal_schema(self, schema: core_schema.LiteralSchema) -> JsonSchemaValue:
        generated = super().literal_schema(schema)
        if "const" in generated:  # JSON Schema 2019 and later; OpenAPI 3.0 has only enum
            generated["enum"] = [generated.pop("const")]
        return generated


class Shape(BaseModel):
    """A body the API reads or writes; its JSON schema in OpenAPI 3.0's dialect."""

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("schema_generator", OpenApi30Schema)
        return super().model_json_schema(*args, **kwargs)


class Answer(Shape):
    """A body the API writes: these fields and no others."""

    model_config = ConfigDict(extra="forbid")


Timestamp = Annotated[
    str,
    Field(
        pattern=TIMESTAMP_PATTERN,
        description="UTC, to the second",
        json_schema_extra={"format": "date-time", "example": "2024-01-01T12:00:00Z"},
    ),
]
Symbol = Annotated[
    str,
    Field(pattern=r"^[A-Z0-9]{1,20}$", json_schema_extra={"example": "BTC"}),
]
Price = Annotated[
    float,
    Field(
        description="in the currency asked for (?currency=; without it, the default one)",
        json_schema_extra={"example": 45000.5},
    ),
]
NO_PRICE_IN_IT = (
    "in the currency asked for (?currency=; without it, the default one); null: the "
    "latest price has none in it (a currency configured after it was stored)"
)


# Requests. Unknown fields are ignored, so none of them forbids extra properties.


class Credentials(Shape):
    """Logging in: no rules on the strings but being there, without NUL; wrong ones are a 401."""

    username: str = Field(min_length=1, pattern=NO_NUL, json_schema_extra={"example": "alice"})
    password: str = Field(
        min_length=1,
        pattern=NO_NUL,
        json_schema_extra={"format": "password", "example": "correct horse"},
    )


class NewUser(Shape):
    """Registering: the username's rules are exact here; the password's are in bytes."""

    username: str = Field(
        pattern=r"^[A-Za-z0-9_.\-]{3,50}$",
        description="3 to 50 letters, digits, '_', '.' or '-'; unique in any case",
        json_schema_extra={"example": "alice"},
    )
    password: str = Field(
        # JSON Schema counts characters, a UTF-8 character takes 1 to 4 bytes: these
        # bounds are the loosest true ones, and the description has the rule.
        min_length=-(-PASSWORD_MIN_BYTES // 4),
        max_length=PASSWORD_MAX_BYTES,
        pattern=NO_NUL,
        description=(
            f"{PASSWORD_MIN_BYTES} to {PASSWORD_MAX_BYTES} bytes once encoded in UTF-8 "
            f"(bcrypt reads no more than {PASSWORD_MAX_BYTES}); a password of other "
            "characters than ASCII letters and digits may break it in fewer characters"
        ),
        json_schema_extra={"format": "password", "example": "correct horse"},
    )


class SymbolBody(Shape):
    symbol: str = Field(
        pattern=TICKER_PATTERN,
        description="a ticker, in any case; CoinGecko must list it",
        json_schema_extra={"example": "btc"},
    )
    coin_id: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        pattern=NO_NUL,
        description=(
            "the CoinGecko id of the coin to track under the ticker, one of those "
            "GET /coins?symbol=... lists; absent or null: the best-ranked one"
        ),
        json_schema_extra={"example": "bitcoin"},
    )


# Answers.


class Token(Answer):
    token: str = Field(description="send it as 'Authorization: Bearer <token>'")


class Crypto(Answer):
    symbol: Symbol
    name: str = Field(json_schema_extra={"example": "Bitcoin"})
    current_price: Price | None = Field(description=NO_PRICE_IN_IT)
    last_updated: Timestamp = Field(
        description="CoinGecko's time of the current price (UTC, to the second)"
    )


class CryptoEnvelope(Answer):
    crypto: Crypto


class CryptoList(Answer):
    cryptos: list[Crypto] = Field(description="ordered by symbol")


class CoinCandidate(Answer):
    coin_id: str = Field(
        description="CoinGecko's id: POST /crypto's coin_id",
        json_schema_extra={"example": "bitcoin"},
    )
    name: str = Field(json_schema_extra={"example": "Bitcoin"})
    market_cap_rank: int | None = Field(ge=1, description="null: unranked")
    current_price: float | None = Field(
        description="in the currency asked for, up to a few minutes old; null: CoinGecko has none",
        json_schema_extra={"example": 45000.5},
    )


class CoinList(Answer):
    symbol: Symbol
    coins: list[CoinCandidate] = Field(
        description="best market-cap rank first, unranked last; empty: no coin has the ticker"
    )


class HistoryPoint(Answer):
    """One stored observation's price in the currency asked for."""

    price: Price
    timestamp: Timestamp = Field(
        description="CoinGecko's time of the price (UTC, to the second); one row per time"
    )


class History(Answer):
    symbol: Symbol
    history: list[HistoryPoint] = Field(description="oldest first")


class StatsFigures(Answer):
    """Over the stored history's prices in the currency asked for; the figures are null
    while it has none."""

    min_price: float | None = Field(description="to 8 decimal places")
    max_price: float | None = Field(description="to 8 decimal places")
    avg_price: float | None = Field(description="to 8 decimal places")
    price_change: float | None = Field(description="newest minus oldest, to 8 decimal places")
    price_change_percent: float | None = Field(
        description="the change over the oldest price, times 100, to 2 decimal places"
    )
    records_count: int = Field(ge=0)


class Stats(Answer):
    symbol: Symbol
    current_price: Price | None = Field(description=NO_PRICE_IN_IT)
    stats: StatsFigures


class Currencies(Answer):
    currencies: list[str] = Field(
        description="the codes ?currency= takes (QUOTE_CURRENCIES), in the configured order",
        json_schema_extra={"example": ["usd", "eur"]},
    )
    default: str = Field(
        description="the first: what an answer is in without ?currency=",
        json_schema_extra={"example": "usd"},
    )


class Empty(Answer):
    """An empty object."""


class Liveness(Answer):
    status: Literal["ok"]


class Readiness(Answer):
    status: Literal["ok", "degraded", "starting", "unavailable"] = Field(
        description="degraded: ready, but PostgreSQL does not answer now (writes get 503); "
        "starting: the server has not finished starting (nothing else is reported)"
    )
    database: bool | None = Field(None, description="PostgreSQL answers (absent: starting)")
    cache: bool | None = Field(
        None, description="Redis answers (a cache: reported, not required; absent: starting)"
    )
    pending_migrations: list[str] = Field(
        default_factory=list,
        description="migrations this code ships that the database lacks (absent: none)",
    )


class Error(Answer):
    error: str = Field(description="what went wrong, for a person to read")


# Decorators for the routes.


def ref(model: type[BaseModel]) -> Reference:
    """``model`` as a component of the document, by reference."""
    return Component(model)


def body(model: type[Shape], description: str) -> Callable[[F], F]:
    decorate: Callable[[F], F] = openapi.body(
        {JSON: ref(model)}, required=True, description=description
    )
    return decorate


class HeadedResponse(Response):
    """sanic-ext's Response object, with the ``headers`` OpenAPI allows on one."""

    headers: dict[str, Any]


def with_header(
    status: int, name: str, description: str, *, required: bool = True
) -> Callable[[F], F]:
    """Add a response header to ``status``; it must be documented already, so this
    decorator goes above the one that documents it (decorators apply bottom-up)."""

    def inner(func: F) -> F:
        operation = OperationStore()[func]
        documented = operation.responses[status]
        headers = {
            **documented.fields.get("headers", {}),
            name: {"description": description, "required": required, "schema": {"type": "string"}},
        }
        operation.responses[status] = HeadedResponse(**{**documented.fields, "headers": headers})
        return func

    return inner


def answers(status: int, model: type[Shape], description: str) -> Callable[[F], F]:
    decorate: Callable[[F], F] = openapi.response(status, {JSON: ref(model)}, description)
    return decorate


def answers_with_stream(status: int, model: type[Shape], description: str) -> Callable[[F], F]:
    """JSON, or a stream of Server-Sent Events for ``Accept: text/event-stream``."""
    stream = {"schema": {"type": "string", "description": "Server-Sent Events"}}
    content = {JSON: ref(model), "text/event-stream": stream}
    decorate: Callable[[F], F] = openapi.response(status, content, description)
    return decorate


ERRORS: dict[int, str] = {
    401: "no token, or one that is malformed, forged, expired or of a user that is gone",
    404: "the crypto is not tracked",
    413: "the body is over 1 MiB",
    415: "the body is not sent as application/json",
    503: "database unavailable: PostgreSQL did not answer in time",
}


UPSTREAM_FAILED = (500, "CoinGecko failed or is rate limited (then with Retry-After)")
# A call to CoinGecko may also be refused by the month's budget (COINGECKO_CALLS_PER_MONTH).
UNAVAILABLE_OR_SPENT = (
    503,
    "database unavailable, or the month's budget of CoinGecko calls is spent "
    "(then with Retry-After: until it renews, the next calendar month in UTC)",
)


def fails(*statuses: int | tuple[int, str]) -> Callable[[F], F]:
    """The error answers, each ``{"error": "..."}``: ``fails(404, (409, "already
    tracked"))`` gives each status the standard description, or the route's own. A
    status documented already keeps its headers and gets both descriptions."""

    def inner(func: F) -> F:
        for item in statuses:
            status, description = item if isinstance(item, tuple) else (item, ERRORS[item])
            operation = OperationStore()[func]
            documented = operation.responses.get(status)
            if documented is None:
                func = openapi.response(status, {JSON: ref(Error)}, description)(func)
                continue
            fields = dict(documented.fields)
            fields["description"] = f"{fields.get('description')}; or {description}"
            operation.responses[status] = HeadedResponse(**fields)
        return func

    return inner


def retry_after(status: int, *, required: bool = True) -> Callable[[F], F]:
    return with_header(
        status, "Retry-After", "seconds to wait before trying again", required=required
    )


def token_required(func: F) -> F:
    """A route behind the bearer token (checked by ``hooks.on_request``)."""
    func = fails(401)(func)
    func = with_header(401, "WWW-Authenticate", 'Bearer error="invalid_token"')(func)
    secured: Callable[[F], F] = openapi.secured("token")
    return secured(func)


def symbol_in_query(func: F) -> F:
    """``?symbol=``: a ticker in any case, required; anything else is a 400."""
    parameter: Callable[[F], F] = openapi.parameter(
        "symbol",
        openapi.String(pattern=TICKER_PATTERN, example="btc"),
        "query",
        required=True,
        description="a ticker, in any case",
    )
    return fails((400, "no symbol, or one that is not 1 to 20 letters or digits"))(parameter(func))


def symbol_in_path(func: F) -> F:
    """``{symbol}``: a ticker in any case; any other string is a 400."""
    parameter: Callable[[F], F] = openapi.parameter(
        "symbol",
        openapi.String(pattern=TICKER_PATTERN, example="BTC"),
        "path",
        description="a ticker, in any case",
    )
    return fails((400, "the symbol is not 1 to 20 letters or digits"))(parameter(func))


# The handlers that take ?currency=: the configured codes are known only once an app is
# built (``describe_currency_parameter``), after the decorators ran.
_TAKE_CURRENCY: list[Callable[..., Any]] = []
CURRENCY_FAILS = "a blank currency, one given twice or one that is not configured"


def currency_parameter(currencies: QuoteCurrencies | None) -> Parameter:
    """``?currency=``, with the configured codes when they are known."""
    if currencies is None:
        which, default, example = "one of QUOTE_CURRENCIES", None, "eur"
        schema = openapi.String(example=example)
    else:
        codes = currencies.codes
        which, default = f"one of {', '.join(codes)}", currencies.default
        example = codes[1] if len(codes) > 1 else default
        # an enum: a string outside it is a 400, which the document must say is invalid
        schema = openapi.String(default=default, example=example, enum=list(codes))
    return Parameter.make(
        "currency",
        schema,
        "query",
        required=False,
        description=(
            f"the quote currency of the prices, in any case: {which} (GET /currencies "
            f"lists them); absent: the default{'' if default is None else f', {default}'}"
        ),
    )


def currency_in_query(func: F) -> F:
    """``?currency=``: a configured quote currency in any case, optional; a blank,
    repeated or unconfigured one is a 400 (beside the route's other 400s, if any)."""
    OperationStore()[func].parameters.append(currency_parameter(None))
    _TAKE_CURRENCY.append(func)
    return fails((400, CURRENCY_FAILS))(func)


def describe_currency_parameter(currencies: QuoteCurrencies) -> None:
    """Name the configured codes and the default in every ``?currency=`` (sanic-ext's
    document is process-wide: the app built last describes it)."""
    for func in _TAKE_CURRENCY:
        parameters = OperationStore()[func].parameters
        for i, parameter in enumerate(parameters):
            if parameter.fields["name"] == "currency":
                parameters[i] = currency_parameter(currencies)
