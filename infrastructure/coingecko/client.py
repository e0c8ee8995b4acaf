"""The CoinGecko adapter: domain.ports.PriceSource over CoinGecko's v3 HTTP API.

Prices are asked in every quote currency (``currencies``) in the same
``/simple/price`` call; ``/coins/markets`` takes one currency a call.

Every call takes a slot of the call budget (shared through Redis) first, then is
counted against the month's budget (``month``, in PostgreSQL; none when None), then
has ``timeout_seconds`` in all (connect, send, answer). Failures become UpstreamError
(UpstreamRateLimited for a 429 or a spent budget) with a message a person can act on;
CoinGecko's ``error_code`` is logged with a hint.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import aiohttp

from domain.errors import UpstreamError, UpstreamRateLimited
from domain.model import (
    CoinCandidate,
    CoinMatch,
    CoinRef,
    Quote,
    QuoteCurrencies,
    Ticker,
    best_rank_first,
    usable_prices,
    valid_price,
)
from domain.ports import MonthlyCalls
from infrastructure.coingecko.call_budget import CallBudget
from infrastructure.coingecko.errors import (
    CoinGeckoUnreachable,
    parse_error_body,
    parse_retry_after,
)
from infrastructure.metrics import observe_coingecko_call, observe_rate_limit_wait

if TYPE_CHECKING:
    from infrastructure.settings import Settings

log = logging.getLogger(__name__)

Plan = Literal["public", "demo", "pro"]
KEY_HEADERS: dict[str, str] = {"demo": "x-cg-demo-api-key", "pro": "x-cg-pro-api-key"}
USER_AGENT = "crypto-price-server/0.1"
REQUEST_MAX_WAIT = 2.0  # a request waits this long at most for a slot, then fails fast
POLL_MAX_WAIT = 900.0  # wait=True (the poller) waits out a 429 pause and a full window
MAX_LOGGED_IDS = 20
# Every price call asks for the price unrounded: without it CoinGecko may round the
# price of a coin worth fractions of a cent.
PRECISION = "full"
USD_ONLY = QuoteCurrencies(("usd",))  # QUOTE_CURRENCIES' default


class _UrlTooLong(Exception):
    """CoinGecko answered 414: ask for fewer ids a call."""


def _ids_text(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:MAX_LOGGED_IDS])
    return shown + (f" and {len(ids) - MAX_LOGGED_IDS} more" if len(ids) > MAX_LOGGED_IDS else "")


def _chunks(ids: list[str], size: int) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _unix_time(value: object) -> datetime | None:
    """``last_updated_at`` of /simple/price (Unix seconds); None when it is no usable number
    (whether the time is believable is ``domain.rules.PriceMoment``'s to say)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):  # beyond what a datetime holds, or NaN
        return None


def _iso_time(value: object) -> datetime | None:
    """``last_updated`` of /coins/markets (``2024-04-07T16:49:31.736Z``); None when it is
    no ISO 8601 time. A time without an offset is read as UTC, as CoinGecko's are."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _rank(value: object) -> tuple[int, int]:
    """Sort key of a market-cap rank: 1 first, unranked last."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return (0, value)
    return (1, 0)


def _rank_or_none(value: object) -> int | None:
    order, rank = _rank(value)
    return rank if order == 0 else None


class CoinGeckoClient:
    """PriceSource on CoinGecko. Build one per process, share it, ``close()`` it."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        plan: Plan = "public",
        limiter: CallBudget,
        currencies: QuoteCurrencies = USD_ONLY,
        month: MonthlyCalls | None = None,
        timeout_seconds: float = 10.0,
        batch_size: int = 100,
        request_max_wait: float = REQUEST_MAX_WAIT,
        poll_max_wait: float = POLL_MAX_WAIT,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if plan not in ("public", "demo", "pro"):
            raise ValueError(f"plan must be public, demo or pro, not {plan!r}")
        if plan != "public" and not api_key:
            raise ValueError(f"the {plan} plan needs an API key")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._base_url = base_url.rstrip("/")
        self._headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if plan != "public" and api_key:
            self._headers[KEY_HEADERS[plan]] = api_key  # never in the query: URLs get logged
        self._limiter = limiter
        self.currencies = currencies
        self._ignored_codes: set[str] = set()  # codes already reported as ignored
        self._month = month
        self._timeout_seconds = timeout_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.batch_size = batch_size  # lowered for good after a 414
        self._request_max_wait = request_max_wait
        self._poll_max_wait = poll_max_wait
        self._session = session
        self._owns_session = session is None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, limiter: CallBudget, month: MonthlyCalls | None = None
    ) -> CoinGeckoClient:
        return cls(
            settings.coingecko_base_url,
            api_key=settings.coingecko_api_key,
            plan=settings.coingecko_api_plan,
            limiter=limiter,
            currencies=settings.currencies,
            month=month,
            timeout_seconds=settings.coingecko_timeout_seconds,
        )

    async def close(self) -> None:
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()
        if self._owns_session:
            self._session = None

    # --- PriceSource -----------------------------------------------------------------

    async def find_coin(self, symbol: Ticker) -> CoinMatch | None:
        """The coin with the best market-cap rank among those sharing the ticker.

        One ``/coins/markets?symbols=...&include_tokens=top`` call: CoinGecko picks
        the largest coin of the symbol and sends its price along, in the default
        currency (the call takes one). An empty answer means no coin has this ticker."""
        wanted = symbol.value.lower()
        path = "/coins/markets"
        currency = self.currencies.default
        data = await self._get(
            path,
            {
                "vs_currency": currency,
                "symbols": wanted,
                "include_tokens": "top",
                "order": "market_cap_desc",
                "precision": PRECISION,
            },
            max_wait=self._request_max_wait,
        )
        candidates = self._market_rows(path, symbol, data)
        if not candidates:
            return None
        # the list comes ordered by market cap; the rank settles it should it hold several
        _, best = min(candidates, key=lambda pair: (_rank(pair[1].get("market_cap_rank")), pair[0]))
        return CoinMatch(
            ref=self._ref(best),
            prices=usable_prices({currency: best.get("current_price")}, [currency]),
            at=_iso_time(best.get("last_updated")),
        )

    async def coins_with_symbol(self, symbol: Ticker, currency: str) -> list[CoinCandidate]:
        """Every coin of the ticker with its price in ``currency``, in one
        ``/coins/markets?symbols=...&include_tokens=all`` call (250 a page, one page:
        no ticker has that many)."""
        path = "/coins/markets"
        data = await self._get(
            path,
            {
                "vs_currency": currency,
                "symbols": symbol.value.lower(),
                "include_tokens": "all",
                "order": "market_cap_desc",
                "per_page": "250",
                "precision": PRECISION,
            },
            max_wait=self._request_max_wait,
        )
        return best_rank_first(
            CoinCandidate(
                ref=self._ref(entry),
                market_cap_rank=_rank_or_none(entry.get("market_cap_rank")),
                current_price=valid_price(entry.get("current_price")),
                price_at=_iso_time(entry.get("last_updated")),
            )
            for _, entry in self._market_rows(path, symbol, data)
        )

    async def prices(self, coin_ids: Sequence[str], *, wait: bool = False) -> dict[str, Quote]:
        """Prices in every quote currency and CoinGecko's times of them by coin id,
        ``batch_size`` ids a ``/simple/price`` call (every currency in the same call).

        A 414 halves the batch (for this call and the ones after it). A currency
        missing or unusable for a coin is logged and left out of its quote; ids missing
        from the answer or with no usable price at all are logged and left out. When a
        batch fails, the others still count: what was fetched is returned and the
        failure logged; UpstreamError is raised only when no batch was answered.
        After a rate limit, a timeout or a connection failure the remaining batches
        are not asked for (they would fail alike and spend the budget)."""
        ids = list(dict.fromkeys(coin_id for coin_id in coin_ids if coin_id))
        if not ids:
            return {}
        max_wait = self._poll_max_wait if wait else self._request_max_wait
        pending = deque(_chunks(ids, self.batch_size))
        found: dict[str, Quote] = {}
        failures: list[UpstreamError] = []
        answered = 0
        while pending:
            chunk = pending.popleft()
            if len(chunk) > self.batch_size:  # the batch size went down meanwhile
                pending.extendleft(reversed(_chunks(chunk, self.batch_size)))
                continue
            try:
                found.update(await self._price_batch(chunk, max_wait, polling=wait))
                answered += 1
            except _UrlTooLong:
                if len(chunk) == 1:
                    failures.append(
                        UpstreamError(f"CoinGecko refused the URL for {chunk[0]} (414)")
                    )
                    continue
                self.batch_size = min(self.batch_size, len(chunk) // 2)
                log.warning(
                    "CoinGecko answered 414 to a URL with %d ids; asking for %d a call from now on",
                    len(chunk),
                    self.batch_size,
                )
                pending.appendleft(chunk)
            except UpstreamError as error:
                failures.append(error)
                if isinstance(error, UpstreamRateLimited | CoinGeckoUnreachable):
                    break
        if failures:
            unasked = sum(len(chunk) for chunk in pending)
            if not answered:
                raise next((f for f in failures if isinstance(f, UpstreamRateLimited)), failures[0])
            log.warning(
                "CoinGecko: %d of %d price batches failed (first: %s); %d ids not asked; "
                "returning the %d prices fetched",
                len(failures),
                len(failures) + answered,
                failures[0].message,
                unasked,
                len(found),
            )
        return found

    async def supported_currencies(self) -> set[str]:
        """The codes of ``/simple/supported_vs_currencies``, lower case. A poller call
        (the month's share kept for adds and refreshes stays untouched) that waits
        for a slot no longer than a request does: it must never hold up a cycle."""
        path = "/simple/supported_vs_currencies"
        data = await self._get(path, {}, max_wait=self._request_max_wait, polling=True)
        if not isinstance(data, list) or not all(isinstance(code, str) for code in data):
            raise self._unexpected(path, "a list of currency codes", data)
        return {code.lower() for code in data}

    async def ping(self) -> None:
        """One ``/ping`` call; raises UpstreamError when CoinGecko does not answer it."""
        data = await self._get("/ping", {}, max_wait=self._request_max_wait)
        if not isinstance(data, dict):
            raise self._unexpected("/ping", "an object", data)

    # --- internals -------------------------------------------------------------------

    def _market_rows(
        self, path: str, symbol: Ticker, data: object
    ) -> list[tuple[int, dict[str, Any]]]:
        """The rows of a ``/coins/markets`` answer that are coins of ``symbol``, with
        their place in it; raises UpstreamError when the answer is not a list."""
        if not isinstance(data, list):
            raise self._unexpected(path, "a list of coins", data)
        wanted = symbol.value.lower()
        rows = [
            (index, entry)
            for index, entry in enumerate(data)
            if isinstance(entry, dict)
            and isinstance(entry.get("symbol"), str)
            and entry["symbol"].lower() == wanted
            and isinstance(entry.get("id"), str)
            and entry["id"]
        ]
        if data and not rows:
            log.warning("CoinGecko answered %s for %s with no coin of that symbol", path, symbol)
        return rows

    @staticmethod
    def _ref(entry: Mapping[str, Any]) -> CoinRef:
        coin_id: str = entry["id"]
        name = entry.get("name")
        return CoinRef(coin_id=coin_id, name=name if isinstance(name, str) and name else coin_id)

    async def _price_batch(
        self, ids: list[str], max_wait: float, *, polling: bool
    ) -> dict[str, Quote]:
        path = "/simple/price"
        codes = self.currencies.codes
        data = await self._get(
            path,
            {
                "ids": ",".join(ids),
                "vs_currencies": ",".join(codes),
                "include_last_updated_at": "true",
                "precision": PRECISION,
            },
            max_wait=max_wait,
            polling=polling,
        )
        if not isinstance(data, dict):
            raise self._unexpected(path, "an object keyed by coin id", data)
        found: dict[str, Quote] = {}
        missing: list[str] = []  # coins with no price in any currency
        partly: list[str] = []  # coin.currency with no price, the coin having others
        unusable: list[str] = []  # coin.currency=value
        entries = [e for e in (data.get(i) for i in ids) if isinstance(e, dict)]
        # A code no coin of the answer has: CoinGecko ignored it (one it does not list,
        # which CheckQuoteCurrencies reports), said once per process, not every batch.
        ignored = {code for code in codes if entries and all(code not in e for e in entries)}
        if ignored - self._ignored_codes:
            log.warning(
                "CoinGecko sent no price in %s for any coin; is it one of its vs_currencies?",
                ", ".join(sorted(ignored - self._ignored_codes)),
            )
            self._ignored_codes |= ignored
        for coin_id in ids:
            entry = data.get(coin_id)
            if not isinstance(entry, dict) or not any(code in entry for code in codes):
                missing.append(coin_id)
                continue
            prices = usable_prices(entry, codes)
            for code in codes:
                if code in ignored:
                    continue
                if code not in entry:
                    partly.append(f"{coin_id}.{code}")
                elif code not in prices:
                    unusable.append(f"{coin_id}.{code}={entry[code]!r}")
            if prices:
                found[coin_id] = Quote(prices, _unix_time(entry.get("last_updated_at")))
        # One line per kind and batch, however many coins and currencies it names.
        if missing:
            log.warning(
                "CoinGecko sent no price for %d ids (skipped): %s", len(missing), _ids_text(missing)
            )
        if partly:
            log.warning(
                "CoinGecko sent no price in some currencies (left out): %s", _ids_text(partly)
            )
        if unusable:
            log.warning("CoinGecko sent unusable prices (left out): %s", _ids_text(unusable))
        return found

    def _http(self) -> aiohttp.ClientSession:
        """The session, made on first use inside the running loop (and made again
        after close() or when the loop changed: aiohttp sessions are loop-bound)."""
        loop = asyncio.get_running_loop()
        if self._session is not None and not self._owns_session:
            return self._session
        if self._session is None or self._session.closed or self._session_loop is not loop:
            self._session = aiohttp.ClientSession(raise_for_status=False)
            self._session_loop = loop
        return self._session

    async def _get(
        self, path: str, params: Mapping[str, str], *, max_wait: float, polling: bool = False
    ) -> Any:
        """One call. ``polling``: the poller's, which may not spend the monthly budget's
        share kept for adds and refreshes."""
        await self._take_slot(max_wait, polling=polling)
        url = self._base_url + path
        try:
            async with self._http().get(
                url,
                params=params,
                headers=self._headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                body = await response.read()
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except (TimeoutError, aiohttp.ClientError) as error:
            observe_coingecko_call(path, "timeout" if isinstance(error, TimeoutError) else "error")
            raise self._unreachable(path, error) from None

        if 200 <= status < 300:
            try:
                data = json.loads(body)
            except ValueError:
                observe_coingecko_call(path, "bad_body")
                log.warning(
                    "CoinGecko %s answered %d with malformed JSON: %r", path, status, body[:200]
                )
                raise UpstreamError(
                    f"CoinGecko sent a malformed answer (not JSON) to {path}; try again later"
                ) from None
            observe_coingecko_call(path, "ok")
            return data
        outcome = "429" if status == 429 else "5xx" if status >= 500 else "error"
        observe_coingecko_call(path, outcome)
        if status == 414:
            raise _UrlTooLong
        error_body = parse_error_body(body)
        log.warning(
            "CoinGecko %s answered %d: error_code=%s message=%r%s",
            path,
            status,
            error_body.code,
            error_body.message,
            f" (hint: {error_body.hint})" if error_body.hint else "",
        )
        if status == 429:
            pause = await self._limiter.pause(parse_retry_after(retry_after))
            raise UpstreamRateLimited(
                f"CoinGecko is rate-limiting us; retry in {math.ceil(pause)} s", retry_after=pause
            )
        message = f"CoinGecko answered {status}"
        if error_body.code is not None and error_body.message:
            message += f" (error {error_body.code}: {error_body.message})"
        elif error_body.message:
            message += f" ({error_body.message})"
        if error_body.hint:
            message += f"; {error_body.hint}"
        elif status >= 500:
            message += "; try again later"
        raise UpstreamError(message)

    async def _take_slot(self, max_wait: float, *, polling: bool) -> None:
        """A slot of the minute's budget, its wait observed for the metrics; then the
        call counted in the month's (CallBudgetSpent when spent). The month comes second
        so that a call refused a slot is not counted: only calls surely made are."""
        started = time.monotonic()
        try:
            await self._limiter.acquire(max_wait=max_wait)
        except UpstreamRateLimited:
            observe_rate_limit_wait(time.monotonic() - started, refused=True)
            raise
        observe_rate_limit_wait(time.monotonic() - started, refused=False)
        if self._month is not None:
            await self._month.take(polling=polling)

    def _unreachable(self, path: str, error: Exception) -> CoinGeckoUnreachable:
        if isinstance(error, TimeoutError):  # aiohttp's timeouts are TimeoutErrors too
            problem = f"CoinGecko did not answer within {self._timeout_seconds:g} s"
        elif isinstance(error, aiohttp.ClientConnectorError):
            reason = error.os_error.strerror or error.os_error
            problem = f"cannot connect to CoinGecko at {error.host}:{error.port} ({reason})"
        else:
            problem = f"the call to CoinGecko failed ({type(error).__name__})"
        # str, not repr: an aiohttp ClientResponseError's repr shows the request's
        # headers, the API key among them.
        log.warning("CoinGecko %s: %s: %s: %s", path, problem, type(error).__name__, error)
        return CoinGeckoUnreachable(f"{problem}; try again later")

    def _unexpected(self, path: str, expected: str, data: object) -> UpstreamError:
        log.warning("CoinGecko %s: expected %s, got %.200r", path, expected, data)
        return UpstreamError(f"CoinGecko sent an unexpected answer to {path}; try again later")
