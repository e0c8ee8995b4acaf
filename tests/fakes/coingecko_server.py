"""A local stand-in for CoinGecko's v3 API, over real HTTP (aiohttp.web).

It answers with CoinGecko's documented shapes from a small in-memory dataset that a
test may change while it runs, fails on demand (globally or for one path), and
records every request it got.

In a test::

    async with FakeCoinGecko() as fake:            # or: base_url = await fake.start()
        client = CoinGeckoClient(fake.base_url, limiter=CallBudget(30))
        fake.set_price("bitcoin", None)             # any JSON value, or ABSENT
        fake.fail(Failure.rate_limited(119), path="/simple/price", times=1)
        fake.max_url_length = 1500                  # 414 above this
        fake.set_price("bitcoin", 70000.0)          # its last_updated_at moves to fake.clock()
        fake.set_price("bitcoin", 61000.0, currency="eur")  # else usd price * RATES["eur"]
        fake.supported = ["usd", "eur"]              # what it lists and answers
        assert fake.calls("/simple/price")[0].query["ids"] == "bitcoin"

Standalone, for black-box runs of the whole service::

    python -m tests.fakes.coingecko_server --port 8765
    COINGECKO_BASE_URL=http://127.0.0.1:8765/api/v3 sanic interfaces.http.app:create_app ...

and steer it over HTTP (outside the API prefix, never recorded, never failing)::

    curl -X POST localhost:8765/_fake/fail -d '{"kind": "rate_limited", "retry_after": 30}'
    curl -X DELETE localhost:8765/_fake/fail
    curl -X PUT localhost:8765/_fake/coins/bitcoin -d '{"price": null}'
    curl -X PUT localhost:8765/_fake/coins/bitcoin -d '{"price": 1.5, "updated_at": 1711356400}'
    curl -X PUT localhost:8765/_fake/coins/bitcoin -d '{"price": 1.4, "currency": "eur"}'
    curl localhost:8765/_fake/requests
    curl -X POST localhost:8765/_fake/config -d '{"max_url_length": 2000, "plan": "demo"}'
    curl -X POST localhost:8765/_fake/config -d '{"supported_vs_currencies": ["usd", "eur"]}'
    curl -X POST localhost:8765/_fake/reset

A failure's "kind" is rate_limited (retry_after), server_error (status), key_missing,
malformed_json, hang (seconds) or json (status, payload); each takes "path", "times"
and "after" as ``FakeCoinGecko.fail`` does.

Times and precision, as CoinGecko has them: every coin carries the time CoinGecko last
updated its price (``last_updated_at`` of /simple/price, ``last_updated`` of
/coins/markets), which moves only when its price changes (CoinGecko serves prices from
a cache of about 60 s: polls within it get the same price and the same time). Prices
are rounded to ``DEFAULT_DECIMALS`` places unless the request asks for ``precision``
(``full``, or 0 to 18 places), on /simple/price and /coins/markets alike.

Currencies: every code of ``supported`` (``RATES``' codes unless changed) is listed by
/simple/supported_vs_currencies and answered: a coin's price in it is its usd price
times the code's rate (btc and eth follow bitcoin's and ethereum's usd prices, so
Bitcoin in btc is 1.0) unless ``FakeCoin.prices`` overrides it. /simple/price answers
every asked supported code and ignores the others; /coins/markets answers 400 for a
``vs_currency`` not supported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

API_PREFIX = "/api/v3"
CONTROL_PREFIX = "/_fake"
RATE_LIMIT_MESSAGE = (
    "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing "
    "to subscribe to our API plans for higher rate limits."
)
KEY_MISSING_MESSAGE = "API Key Missing. Please make sure you're using the right API key."
WRONG_HOST_MESSAGE = "If you are using {} API key, please change your root URL from {} to {}"
PUBLIC, PRO = "api.coingecko.com", "pro-api.coingecko.com"
UPDATED_AT = 1711356300  # the last_updated_at of every price until it changes
# CoinGecko's documentation does not say how it rounds without ``precision``; its
# documented answers show up to 10 decimals (67187.3358936566), so the stand-in rounds
# to 10 places: what takes the digits of a coin worth fractions of a cent.
DEFAULT_DECIMALS = 10
MAX_PRECISION = 18
# The usd price times these is a coin's price in each supported code (about March 2024's).
RATES: dict[str, float] = {
    "usd": 1.0,
    "eur": 0.925,
    "gbp": 0.792,
    "jpy": 151.3,
    "chf": 0.901,
    "cad": 1.357,
    "aud": 1.532,
    "cny": 7.226,
    "inr": 83.4,
    "btc": 1 / 67187.3358936566,
    "eth": 1 / 3421.1,
}
# Crypto quotes follow their coin's usd price while it has a usable one (RATES otherwise).
QUOTED_BY = {"btc": "bitcoin", "eth": "ethereum"}


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"

    def __reduce__(self) -> str:
        return "ABSENT"  # copies (dataclasses.asdict's) and pickles are the one ABSENT


ABSENT: Any = _Absent()
"""A coin's price that /simple/price leaves out of its answer (and /coins/markets sends as null)."""


@dataclass
class FakeCoin:
    id: str
    symbol: str  # lower-case, as CoinGecko sends it
    name: str
    price: Any = 1.0  # what /simple/price sends as "usd": any JSON value, or ABSENT
    market_cap: float | None = None  # /coins/markets orders by this, largest first
    market_cap_rank: int | None = None
    updated_at: int = UPDATED_AT  # when CoinGecko last updated the price, Unix seconds
    # the price in other codes (any JSON value, or ABSENT), instead of price times the rate
    prices: dict[str, Any] = field(default_factory=dict)


def default_coins() -> list[FakeCoin]:
    """Tickers shared by several coins, the famous one never first by id."""
    return [
        FakeCoin("batcat", "btc", "batcat", 0.00012, 18_000.0, None),
        FakeCoin("bitcoin", "btc", "Bitcoin", 67187.3358936566, 1.32e12, 1),
        FakeCoin("bitcoin-bridged-zksync", "btc", "Bridged Bitcoin (zkSync)", 66950.5, 2.1e6, 3120),
        FakeCoin("bridged-ether-starkgate", "eth", "Bridged Ether (StarkGate)", 3419.9, 3.9e8, 410),
        FakeCoin("ethereum", "eth", "Ethereum", 3421.1, 4.11e11, 2),
        FakeCoin("ethereum-wormhole", "eth", "Ethereum (Wormhole)", 3418.2, 2.2e8, 612),
        FakeCoin("binance-peg-dogecoin", "doge", "Binance-Peg Dogecoin", 0.1601, 5.0e7, 1020),
        FakeCoin("dogecoin", "doge", "Dogecoin", 0.1603, 2.3e10, 8),
        FakeCoin("solana", "sol", "Solana", 172.45, 7.6e10, 5),
        FakeCoin("tether", "usdt", "Tether", 1.0002, 1.1e11, 3),
        *more_shared_tickers(),
    ]


def more_shared_tickers() -> list[FakeCoin]:
    """The tickers users trip on, several coins each as on CoinGecko: ranked ones
    (their market caps in rank order) and unranked ones (no market cap)."""
    return [
        FakeCoin("uniswap", "uni", "Uniswap", 7.42, 4.4e9, 22),
        FakeCoin("uniswap-wormhole", "uni", "Uniswap (Wormhole)", 7.39, 1.2e6, 3410),
        FakeCoin("unicorn-token", "uni", "Unicorn Token", 0.0000412, None, None),
        FakeCoin("uni-ai", "uni", "UNI AI", 0.0031, None, None),
        FakeCoin("the-graph", "grt", "The Graph", 0.2185, 2.1e9, 48),
        FakeCoin("golden-ratio-token", "grt", "Golden Ratio Token", 0.0097, None, None),
        FakeCoin("wrapped-solana", "sol", "Wrapped SOL", 172.31, 9.6e8, 160),
        FakeCoin("solana-wormhole", "sol", "Solana (Wormhole)", 171.9, 3.1e6, 2950),
        FakeCoin("cardano", "ada", "Cardano", 0.4512, 1.6e10, 10),
        FakeCoin("binance-peg-cardano", "ada", "Binance-Peg Cardano", 0.4509, 1.1e8, 720),
        FakeCoin("ada-the-dog", "ada", "ADA the Dog", 0.00000821, None, None),
    ]


def _json_body(payload: object) -> bytes:
    return json.dumps(payload).encode()


def _status_body(code: int, message: str) -> bytes:
    timestamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return _json_body(
        {"status": {"timestamp": timestamp, "error_code": code, "error_message": message}}
    )


def _html_page(status: int, reason: str) -> bytes:
    return (
        f"<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>\n"
        f"<body><center><h1>{status} {reason}</h1></center><hr><center>cloudflare</center>"
        "</body></html>\n"
    ).encode()


@dataclass(frozen=True)
class Failure:
    """An answer to give instead of the real one, after ``delay`` seconds.
    ``status=None`` answers normally after the delay (a slow or hung CoinGecko)."""

    status: int | None = 500
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def rate_limited(cls, retry_after: int | str | None = 119) -> Failure:
        """429 with CoinGecko's JSON body; Retry-After left out when None."""
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return cls(429, _status_body(429, RATE_LIMIT_MESSAGE), headers=headers)

    @classmethod
    def server_error(
        cls, status: int = 503, reason: str = "Service Temporarily Unavailable"
    ) -> Failure:
        """A 5xx with the CDN's HTML page."""
        return cls(status, _html_page(status, reason), "text/html")

    @classmethod
    def coded(cls, status: int, error_code: int, message: str) -> Failure:
        """CoinGecko's ``{"status": {"error_code": ..., "error_message": ...}}``."""
        return cls(status, _status_body(error_code, message))

    @classmethod
    def key_missing(cls) -> Failure:
        """401 with error_code 10002."""
        return cls.coded(401, 10002, KEY_MISSING_MESSAGE)

    @classmethod
    def json(cls, status: int, payload: object) -> Failure:
        """Any JSON body, e.g. ``{"error": "coin not found"}`` or ``[1, 2]``."""
        return cls(status, _json_body(payload))

    @classmethod
    def malformed_json(cls) -> Failure:
        """200 with a body that is not JSON (cut off halfway)."""
        return cls(200, b'{"bitcoin":{"usd":67187.33,"last_upd')

    @classmethod
    def hang(cls, seconds: float = 60.0) -> Failure:
        """Answer nothing for ``seconds`` (cut short when the fake stops), then normally."""
        return cls(status=None, delay=seconds)

    def response(self) -> web.Response:
        assert self.status is not None
        return web.Response(
            status=self.status, body=self.body, content_type=self.content_type, headers=self.headers
        )


@dataclass
class _Rule:
    failure: Failure
    path: str | None
    remaining: int | None
    spare: int  # matching requests still to answer normally first


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # without the API prefix: "/simple/price"
    query: dict[str, str]
    headers: CIMultiDictProxy[str]  # case-insensitive
    url_length: int  # path and query as sent, prefix included

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": dict(self.headers),
            "url_length": self.url_length,
        }


Plan = Literal["public", "demo", "pro"]


class FakeCoinGecko:
    """The fake server. Public state a test may change at any time:

    - ``coins``: id -> FakeCoin (``add_coin``, ``remove_coin``, ``set_price``);
    - ``max_url_length``: answer 414 (HTML) when path and query are longer; None: never;
    - ``plan`` / ``api_key``: which key header the host wants. "public" wants none
      (a pro key gets 400 10010); "demo" wants x-cg-demo-api-key (none: 401 10002,
      a pro key: 400 10010); "pro" wants x-cg-pro-api-key (none: 401 10002, a demo
      key: 400 10011). With ``api_key`` set, another value gets 401 10002.
    - ``requests``: every API request received, in order (``calls(path)`` filters).
    """

    def __init__(self, coins: Iterable[FakeCoin] | None = None, *, prefix: str = API_PREFIX):
        self.prefix = prefix.rstrip("/")
        given = default_coins() if coins is None else coins
        self._initial = [replace(c, prices=dict(c.prices)) for c in given]
        self.coins: dict[str, FakeCoin] = {}
        self.requests: list[RecordedRequest] = []
        self.max_url_length: int | None = None
        self.plan: Plan = "public"
        self.api_key: str | None = None
        self.supported: list[str] = list(RATES)
        self.clock: Callable[[], float] = time.time  # when set_price says a price changed
        self._rules: list[_Rule] = []
        self._runner: web.AppRunner | None = None
        self._released: asyncio.Event | None = None
        self.base_url = ""
        self.reset()

    # --- state ---------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the initial coins; no failures, no records, no key, no URL limit,
        RATES' currencies."""
        self.coins = {c.id: replace(c, prices=dict(c.prices)) for c in self._initial}
        self.supported = list(RATES)
        self.requests.clear()
        self._rules.clear()
        self.max_url_length = None
        self.plan = "public"
        self.api_key = None

    def add_coin(self, coin: FakeCoin) -> None:
        self.coins[coin.id] = coin

    def remove_coin(self, coin_id: str) -> None:
        del self.coins[coin_id]

    def set_price(
        self, coin_id: str, price: Any, *, currency: str = "usd", updated_at: int | None = None
    ) -> None:
        """Any JSON value (None, "abc", -1 ...) or ABSENT: in usd, ABSENT leaves the coin
        out (and its derived prices follow the new one); in another ``currency`` it
        overrides the derived price, ABSENT leaving that code out of the coin's answer.
        Its time (``last_updated_at``) becomes ``updated_at`` when given (any int: 0,
        the far future ...), else moves on to ``clock()`` if the price changed."""
        coin = self.coins[coin_id]
        before = self.price_in(coin, currency)
        if updated_at is not None:
            coin.updated_at = updated_at
        elif price != before or type(price) is not type(before):
            coin.updated_at = self._next_update(coin)
        if currency == "usd":
            coin.price = price
        else:
            coin.prices[currency] = price

    def price_in(self, coin: FakeCoin, currency: str) -> Any:
        """The coin's price in ``currency``: its override, else its usd price times the
        rate (a price that is no number stays as it is)."""
        if currency == "usd":
            return coin.price
        if currency in coin.prices:
            return coin.prices[currency]
        return self._converted(coin.price, currency)

    def _converted(self, usd: Any, currency: str) -> Any:
        """A usd amount in ``currency`` (any other JSON value, or ABSENT, as it is)."""
        if isinstance(usd, bool) or not isinstance(usd, int | float):
            return usd
        quoted = self.coins.get(QUOTED_BY.get(currency, ""))
        if quoted is not None and _positive(quoted.price):
            return usd / quoted.price
        return usd * RATES.get(currency, 1.0)

    def _next_update(self, coin: FakeCoin) -> int:
        """Now on ``clock()``, to the second as CoinGecko's times are, and always later
        than the coin's last time: two changes within one second are two moments."""
        return max(int(self.clock()), coin.updated_at + 1)

    def fail(
        self,
        failure: Failure,
        *,
        path: str | None = None,
        times: int | None = None,
        after: int = 0,
    ) -> None:
        """Answer ``failure`` to requests for ``path`` ("/simple/price"), or to all
        when None: after ``after`` such requests answered normally, the next ``times``
        times, or until ``clear_failures``. Rules for a path are tried before global
        ones; the newest rule first."""
        self._rules.insert(0, _Rule(failure, path, times, after))

    def clear_failures(self) -> None:
        self._rules.clear()

    def release_hung(self) -> None:
        """Let every request held by a ``Failure.hang`` answer now (and later ones at once)."""
        self.clear_failures()
        if self._released is not None:
            self._released.set()

    def calls(self, path: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if path is None or r.path == path]

    def clear_requests(self) -> None:
        self.requests.clear()

    # --- lifecycle -----------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: a free port); returns the base URL to give the client."""
        self._released = asyncio.Event()
        app = web.Application(middlewares=[self._middleware])
        api = {
            "/ping": self._ping,
            "/coins/list": self._coins_list,
            "/coins/markets": self._coins_markets,
            "/coins/{coin_id}": self._coin,
            "/simple/price": self._simple_price,
            "/simple/supported_vs_currencies": self._supported_vs_currencies,
            "/search": self._search,
        }
        for path, api_handler in api.items():
            app.router.add_get(self.prefix + path, api_handler)
        control = [
            ("POST", "/reset", self._control_reset),
            ("POST", "/fail", self._control_fail),
            ("DELETE", "/fail", self._control_clear),
            ("PUT", "/coins/{coin_id}", self._control_coin),
            ("POST", "/config", self._control_config),
            ("GET", "/requests", self._control_requests),
        ]
        for method, path, control_handler in control:
            app.router.add_route(method, CONTROL_PREFIX + path, control_handler)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://{host}:{bound_port}{self.prefix}"
        return self.base_url

    async def stop(self) -> None:
        if self._released is not None:
            self._released.set()  # let hung handlers finish
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeCoinGecko:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- plumbing ------------------------------------------------------------------

    def _take_failure(self, path: str) -> Failure | None:
        rules = [r for r in self._rules if r.path == path] + [
            r for r in self._rules if r.path is None
        ]
        for rule in rules:
            if rule.spare > 0:
                rule.spare -= 1
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._rules.remove(rule)
            return rule.failure
        return None

    def _key_problem(self, headers: CIMultiDictProxy[str]) -> web.Response | None:
        demo, pro = headers.get("x-cg-demo-api-key"), headers.get("x-cg-pro-api-key")
        if self.plan != "pro" and pro is not None:
            return Failure.coded(
                400, 10010, WRONG_HOST_MESSAGE.format("Pro", PUBLIC, PRO)
            ).response()
        if self.plan == "pro" and pro is None and demo is not None:
            return Failure.coded(
                400, 10011, WRONG_HOST_MESSAGE.format("Demo", PRO, PUBLIC)
            ).response()
        if self.plan == "public":
            return None
        given = pro if self.plan == "pro" else demo
        if given is None or (self.api_key is not None and given != self.api_key):
            return Failure.key_missing().response()
        return None

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith(self.prefix + "/"):
            return await handler(request)  # the control API
        path = request.path[len(self.prefix) :]
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=path,
                query=dict(request.query),
                headers=CIMultiDictProxy(CIMultiDict(request.headers)),
                url_length=len(request.raw_path),
            )
        )
        failure = self._take_failure(path)
        if failure is not None and failure.delay > 0:
            assert self._released is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), failure.delay)
        if failure is not None and failure.status is not None:
            return failure.response()
        if self.max_url_length is not None and len(request.raw_path) > self.max_url_length:
            return web.Response(
                status=414, body=_html_page(414, "Request-URI Too Large"), content_type="text/html"
            )
        problem = self._key_problem(request.headers)
        if problem is not None:
            return problem
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return web.json_response(
                {"error": "Incorrect path. Please check https://www.coingecko.com/api/"}, status=404
            )

    # --- the API -------------------------------------------------------------------

    def _ranked(self, coins: Iterable[FakeCoin]) -> list[FakeCoin]:
        """Largest market cap first; coins without one last, by id."""
        return sorted(coins, key=lambda c: (c.market_cap is None, -(c.market_cap or 0), c.id))

    def _by_symbols(self, symbols: list[str], include_tokens: str) -> list[FakeCoin]:
        chosen: list[FakeCoin] = []
        for symbol in symbols:
            same = self._ranked(c for c in self.coins.values() if c.symbol == symbol)
            chosen.extend(same if include_tokens == "all" else same[:1])
        return chosen

    @staticmethod
    def _split(value: str | None) -> list[str]:
        return [part.strip().lower() for part in (value or "").split(",") if part.strip()]

    async def _ping(self, request: web.Request) -> web.Response:
        return web.json_response({"gecko_says": "(V3) To the Moon!"})

    async def _coins_list(self, request: web.Request) -> web.Response:
        return web.json_response(
            [
                {"id": c.id, "symbol": c.symbol, "name": c.name}
                for c in sorted(self.coins.values(), key=lambda c: c.id)
            ]
        )

    def _market_entry(self, coin: FakeCoin, currency: str, decimals: int | None) -> dict[str, Any]:
        price = self.price_in(coin, currency)
        price = None if price is ABSENT else _rounded(price, decimals)
        market_cap = self._converted(coin.market_cap, currency)
        return {
            "id": coin.id,
            "symbol": coin.symbol,
            "name": coin.name,
            "image": f"https://coin-images.coingecko.com/coins/images/1/large/{coin.id}.png",
            "current_price": price,
            "market_cap": market_cap,
            "market_cap_rank": coin.market_cap_rank,
            "total_volume": None if market_cap is None else market_cap / 50,
            "high_24h": price,
            "low_24h": price,
            "price_change_24h": 0.0,
            "price_change_percentage_24h": 0.0,
            "last_updated": _iso_millis(coin.updated_at),
        }

    async def _coins_markets(self, request: web.Request) -> web.Response:
        query = request.query
        currency = query.get("vs_currency", "").lower()
        if currency not in self.supported:
            return web.json_response(
                {"error": "Missing or unsupported parameter vs_currency"}, status=400
            )
        ids, symbols = self._split(query.get("ids")), self._split(query.get("symbols"))
        if ids:
            if len(ids) > 250:
                return web.json_response({"error": "Too many ids: at most 250 a call"}, status=400)
            coins = self._ranked(self.coins[i] for i in ids if i in self.coins)
        elif symbols:
            include = query.get("include_tokens", "top").lower()
            if include == "all" and len(symbols) > 50:
                return web.json_response(
                    {"error": "Too many symbols: at most 50 with include_tokens=all"}, status=400
                )
            coins = self._ranked(self._by_symbols(symbols, include))
        else:
            coins = self._ranked(self.coins.values())
        try:
            per_page = min(max(int(query.get("per_page", "100")), 1), 250)
            page = max(int(query.get("page", "1")), 1)
        except ValueError:
            return web.json_response({"error": "per_page and page must be numbers"}, status=400)
        if query.get("order", "market_cap_desc") == "market_cap_asc":
            coins.reverse()
        start = (page - 1) * per_page
        decimals = _decimals(query)
        return web.json_response(
            [self._market_entry(c, currency, decimals) for c in coins[start : start + per_page]]
        )

    async def _coin(self, request: web.Request) -> web.Response:
        coin = self.coins.get(request.match_info["coin_id"])
        if coin is None:
            return web.json_response({"error": "coin not found"}, status=404)
        prices = {code: self.price_in(coin, code) for code in self.supported}
        return web.json_response(
            {
                "id": coin.id,
                "symbol": coin.symbol,
                "name": coin.name,
                "market_cap_rank": coin.market_cap_rank,
                "market_data": {
                    "current_price": {
                        code: None if price is ABSENT else price for code, price in prices.items()
                    },
                    "market_cap": {
                        code: self._converted(coin.market_cap, code) for code in self.supported
                    },
                },
            }
        )

    async def _simple_price(self, request: web.Request) -> web.Response:
        query = request.query
        currencies = self._split(query.get("vs_currencies"))
        if not currencies:
            return web.json_response({"error": "Missing parameter vs_currencies"}, status=400)
        ids = self._split(query.get("ids"))
        if ids:
            keyed = [(i, self.coins[i]) for i in ids if i in self.coins]
        else:
            include = query.get("include_tokens", "top").lower()
            symbols = self._split(query.get("symbols"))
            if include == "all" and len(symbols) > 50:
                return web.json_response(
                    {"error": "Too many symbols: at most 50 with include_tokens=all"}, status=400
                )
            keyed = [(c.symbol, c) for c in self._by_symbols(symbols, include)]
        answer: dict[str, dict[str, Any]] = {}
        decimals = _decimals(query)
        for key, coin in keyed:
            if coin.price is ABSENT:
                continue
            entry: dict[str, Any] = {}
            for currency in currencies:
                price = self.price_in(coin, currency)
                if currency not in self.supported or price is ABSENT:
                    continue
                entry[currency] = _rounded(price, decimals)
                market_cap = self._converted(coin.market_cap, currency)
                if query.get("include_market_cap") == "true":
                    entry[f"{currency}_market_cap"] = market_cap
                if query.get("include_24hr_vol") == "true":
                    entry[f"{currency}_24h_vol"] = None if market_cap is None else market_cap / 50
                if query.get("include_24hr_change") == "true":
                    entry[f"{currency}_24h_change"] = 0.0
            if query.get("include_last_updated_at") == "true":
                entry["last_updated_at"] = coin.updated_at
            answer[key] = entry
        return web.json_response(answer)

    async def _supported_vs_currencies(self, request: web.Request) -> web.Response:
        return web.json_response(self.supported)

    async def _search(self, request: web.Request) -> web.Response:
        text = request.query.get("query", "").strip().lower()
        found = [
            c
            for c in self.coins.values()
            if text and (text in c.id or text in c.symbol or text in c.name.lower())
        ]
        found.sort(key=lambda c: (c.market_cap_rank is None, c.market_cap_rank or 0, c.id))
        coins = [
            {
                "id": c.id,
                "name": c.name,
                "api_symbol": c.id,
                "symbol": c.symbol.upper(),
                "market_cap_rank": c.market_cap_rank,
                "thumb": f"https://coin-images.coingecko.com/coins/images/1/thumb/{c.id}.png",
                "large": f"https://coin-images.coingecko.com/coins/images/1/large/{c.id}.png",
            }
            for c in found
        ]
        return web.json_response(
            {"coins": coins, "exchanges": [], "icos": [], "categories": [], "nfts": []}
        )

    # --- the control API (standalone runs) -----------------------------------------

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            data = json.loads(await request.read())
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text="send a JSON object")
        return data

    async def _control_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({})

    async def _control_fail(self, request: web.Request) -> web.Response:
        data = await self._body(request)
        kind = data.get("kind", "server_error")
        makers: dict[str, Callable[[], Failure]] = {
            "rate_limited": lambda: Failure.rate_limited(data.get("retry_after", 119)),
            "server_error": lambda: Failure.server_error(int(data.get("status", 503))),
            "key_missing": Failure.key_missing,
            "malformed_json": Failure.malformed_json,
            "hang": lambda: Failure.hang(float(data.get("seconds", 60))),
            "json": lambda: Failure.json(int(data.get("status", 500)), data.get("payload")),
        }
        if kind not in makers:
            return web.json_response({"error": f"kind must be one of {sorted(makers)}"}, status=400)
        self.fail(
            makers[kind](),
            path=data.get("path"),
            times=data.get("times"),
            after=int(data.get("after", 0)),
        )
        return web.json_response({})

    async def _control_clear(self, request: web.Request) -> web.Response:
        self.clear_failures()
        return web.json_response({})

    async def _control_coin(self, request: web.Request) -> web.Response:
        data = await self._body(request)
        coin_id = request.match_info["coin_id"]
        current = self.coins.get(coin_id)
        if current is None:
            if "symbol" not in data or "name" not in data:
                return web.json_response({"error": "a new coin needs symbol and name"}, status=400)
            current = FakeCoin(coin_id, str(data["symbol"]).lower(), str(data["name"]))
        fields = {
            k: v
            for k, v in data.items()
            if k in ("symbol", "name", "market_cap", "market_cap_rank")
        }
        self.coins[coin_id] = replace(current, **fields)
        if "price" in data or data.get("absent") or "updated_at" in data:
            currency = str(data.get("currency", "usd")).lower()
            price = self.price_in(current, currency)
            price = ABSENT if data.get("absent") else data.get("price", price)
            updated_at = data.get("updated_at")
            self.set_price(
                coin_id,
                price,
                currency=currency,
                updated_at=None if updated_at is None else int(updated_at),
            )
        coin = asdict(self.coins[coin_id])
        coin["price"] = None if coin["price"] is ABSENT else coin["price"]
        coin["prices"] = {k: None if v is ABSENT else v for k, v in coin["prices"].items()}
        return web.json_response(coin)

    async def _control_config(self, request: web.Request) -> web.Response:
        data = await self._body(request)
        if "max_url_length" in data:
            self.max_url_length = data["max_url_length"]
        if "plan" in data:
            self.plan = data["plan"]
        if "api_key" in data:
            self.api_key = data["api_key"]
        if "supported_vs_currencies" in data:
            self.supported = [str(code).lower() for code in data["supported_vs_currencies"]]
        return web.json_response(
            {
                "max_url_length": self.max_url_length,
                "plan": self.plan,
                "api_key": self.api_key,
                "supported_vs_currencies": self.supported,
            }
        )

    async def _control_requests(self, request: web.Request) -> web.Response:
        return web.json_response([r.as_json() for r in self.requests])


def _decimals(query: Mapping[str, str]) -> int | None:
    """The decimals a request asks prices in: None for ``precision=full``, 0 to 18 as
    asked, DEFAULT_DECIMALS without (or with a value CoinGecko would not take)."""
    precision = query.get("precision", "").strip().lower()
    if precision == "full":
        return None
    if precision.isdigit() and int(precision) <= MAX_PRECISION:
        return int(precision)
    return DEFAULT_DECIMALS


def _positive(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and value > 0


def _rounded(price: Any, decimals: int | None) -> Any:
    """A numeric price rounded to ``decimals`` places (None: as it is); any other JSON
    value as it is."""
    if decimals is None or isinstance(price, bool) or not isinstance(price, int | float):
        return price
    return round(price, decimals)


def _iso_millis(unix_seconds: int) -> str:
    """``2024-04-07T16:49:31.000Z``, as /coins/markets writes ``last_updated``."""
    moment = datetime.fromtimestamp(unix_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _serve_forever(host: str, port: int) -> None:
    fake = FakeCoinGecko()
    base_url = await fake.start(host, port)
    control = base_url.removesuffix(API_PREFIX) + CONTROL_PREFIX
    print(f"fake CoinGecko at {base_url} (control API at {control}); Ctrl-C stops it", flush=True)
    try:
        await asyncio.Event().wait()  # until interrupted
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local stand-in for CoinGecko's v3 API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args.host, args.port))


if __name__ == "__main__":
    main()
