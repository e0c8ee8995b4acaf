"""The ports: what the use cases need from the outside world, as Protocols.

Adapters in ``infrastructure`` implement them; the app factory wires them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from domain.events import PriceEvent
from domain.model import (
    CoinCandidate,
    CoinMatch,
    CoinRef,
    Crypto,
    PricePoint,
    PriceStats,
    PriceUpdate,
    Quote,
    Ticker,
    TrackedCoin,
    User,
)


class Clock(Protocol):
    def __call__(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class CryptoRepository(Protocol):
    async def list(self) -> list[Crypto]:
        """Every tracked crypto, ordered by symbol."""
        ...

    async def get(self, symbol: Ticker) -> Crypto | None: ...

    async def add(self, crypto: Crypto) -> Crypto:
        """Store a new crypto and its first history row (its current price) together.

        Raises CryptoAlreadyTracked when the symbol is stored already, also when
        another request stored it a moment earlier. Returns the crypto with its id.
        """
        ...

    async def record_prices(self, updates: Sequence[PriceUpdate], keep: int) -> set[int]:
        """In one transaction: set each crypto's current prices, add one history row
        for each (its prices in every currency), and trim each one's history to its
        newest ``keep`` rows; only for updates newer than the crypto's current price
        (``OnlyNewerPricesAreRecorded``), and no change is announced when none is.

        Uses a constant number of statements whatever the number of updates. Updates
        for cryptos deleted meanwhile are skipped. Returns the ids that were updated.
        """
        ...

    async def tracked_coins(self) -> list[TrackedCoin]:
        """What the poller refreshes: every stored crypto's id and CoinGecko id."""
        ...

    async def history(self, symbol: Ticker, limit: int, currency: str) -> list[PricePoint] | None:
        """The prices in ``currency`` of the newest ``limit`` observations, oldest
        first (an observation with no price in it is left out: ``limit`` still counts
        observations); None when the symbol is not tracked."""
        ...

    async def stats(self, symbol: Ticker, limit: int, currency: str) -> PriceStats | None:
        """``PriceStats.of`` the current price in ``currency`` and ``history``'s prices;
        None when the symbol is not tracked."""
        ...

    async def delete(self, symbol: Ticker) -> bool:
        """Remove a crypto and its history; False when it was not tracked."""
        ...


class UserRepository(Protocol):
    """Usernames are unique regardless of case: ``Carol`` and ``carol`` are one name."""

    async def add(self, username: str, password_hash: str) -> User:
        """Raises UsernameTaken when the username is stored already, in any case."""
        ...

    async def get_by_username(self, username: str) -> User | None:
        """The user whose name matches in any case (``CAROL`` finds ``Carol``)."""
        ...

    async def exists(self, user_id: int) -> bool:
        """Whether a user with this id is stored."""
        ...


class UserDirectory(Protocol):
    """Answers the bearer guard's question on every request: is this user still
    stored? (A UserRepository is one; a cache in front of it is another.)"""

    async def exists(self, user_id: int) -> bool: ...


class LoginThrottle(Protocol):
    """Failed logins counted per username (in any case) and per client address, in a
    window; once either is full, every attempt is refused until the window lets one
    through, whatever its password: a login answered while a window is full is
    refused even if its password was checked and found right (concurrent guesses must
    not tell the right password from the wrong ones by their answers).

    Each method raises TooManyAttempts(retry_after) to refuse."""

    async def check(self, username: str, address: str) -> None:
        """Before the password is checked (it costs a hash), and again once it proved right."""
        ...

    async def record_failure(self, username: str, address: str) -> None:
        """The password (or the username) was wrong: count it for both. Refuses when a
        window was full already."""
        ...

    async def reset(self, username: str) -> None:
        """The login succeeded: the username's count starts again (the address's does not)."""
        ...


class PriceSource(Protocol):
    """The market data provider (CoinGecko)."""

    async def find_coin(self, symbol: Ticker) -> CoinMatch | None:
        """The coin users mean by this ticker (the best market-cap rank among the
        coins sharing it), with its current prices (in the currencies the answer
        carries: the default one, typically) and CoinGecko's time of them when the
        answer carries usable ones; None when no coin has this ticker. Raises
        UpstreamError."""
        ...

    async def coins_with_symbol(self, symbol: Ticker, currency: str) -> list[CoinCandidate]:
        """Every coin with this ticker, priced in ``currency``, in one call: best
        market-cap rank first, unranked last; empty when none has it. Raises
        UpstreamError."""
        ...

    async def prices(self, coin_ids: Sequence[str], *, wait: bool = False) -> dict[str, Quote]:
        """Current prices in every quote currency, asked in the same call, unrounded,
        with CoinGecko's time of each, by coin id, batched. A currency with an unusable
        price is left out of a coin's quote; ids missing from the answer or with no
        usable price at all are left out (and logged). ``wait`` lets the caller wait
        out the rate limit (the poller does; requests fail fast). Raises UpstreamError
        when no answer could be had."""
        ...

    async def supported_currencies(self) -> set[str]:
        """The quote currency codes CoinGecko lists (``/simple/supported_vs_currencies``),
        lower case. Raises UpstreamError."""
        ...


class TickerCache(Protocol):
    """Ticker to CoinGecko id. A cache: failures are logged and read as a miss."""

    async def get(self, symbol: Ticker) -> CoinRef | None: ...

    async def set(self, symbol: Ticker, ref: CoinRef) -> None: ...


class CandidateCache(Protocol):
    """Ticker and currency to every coin that has it (``coins_with_symbol``'s answer),
    kept a few minutes since it carries prices. A cache: failures are logged and read
    as a miss."""

    async def get_candidates(self, symbol: Ticker, currency: str) -> list[CoinCandidate] | None: ...

    async def set_candidates(
        self, symbol: Ticker, currency: str, candidates: list[CoinCandidate]
    ) -> None: ...


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Check a password; with no hash (unknown user), spend the same time
        against a dummy hash and answer False."""
        ...


class TokenService(Protocol):
    def issue(self, user_id: int) -> str: ...

    def verify(self, token: str) -> tuple[str, int]:
        """The subject and the exp (Unix seconds) of a valid token. Raises InvalidToken."""
        ...


class LeaderLock(Protocol):
    """One holder per deployment: whoever holds it runs the price poller."""

    async def acquire(self) -> bool:
        """True when this process holds the lock (now or already); never raises."""
        ...

    async def release(self) -> None: ...


class PollerMonitor(Protocol):
    """Told what the poller does, for metrics. Must not raise or block."""

    def cycle_finished(self, outcome: str, seconds: float, tracked: int | None) -> None:
        """``outcome`` is ok, partial, rate_limited, budget_spent (the month's CoinGecko
        calls) or failed; ``tracked`` is the number of tracked cryptos when the cycle
        got that far."""
        ...

    def leadership(self, held: bool) -> None: ...

    def interval_in_effect(self, seconds: float) -> None:
        """The poll interval now in effect (the monthly budget may lengthen it)."""
        ...


class MonthlyCalls(Protocol):
    """The CoinGecko calls of the calendar month (UTC), counted for the whole
    deployment (every replica, across restarts) against ``budget`` calls a month."""

    budget: int

    async def take(self, *, polling: bool) -> None:
        """Count one call about to be made, or raise CallBudgetSpent (counting nothing)
        when the month's budget is spent; a poll's call (``polling``) may not spend the
        share kept for adds and refreshes."""
        ...

    async def used(self) -> int:
        """The calls counted so far this month."""
        ...


class UpstreamReporter(Protocol):
    """Told by the leader's poller how each cycle fared at the price source, and tells
    every replica (``domain.events.UPSTREAM_STATUSES``). Must not raise."""

    async def report(self, status: str) -> None: ...


class Subscription(Protocol):
    """One subscriber's view of the price events, from when it subscribed."""

    async def next(self, within: float) -> Sequence[PriceEvent] | None:
        """The events of the next commit, in commit order; None when ``within``
        seconds passed without any. Raises FeedClosed when the feed ends this
        subscription (the server stops, or the subscriber fell too far behind)."""
        ...

    def close(self) -> None: ...


class PriceFeed(Protocol):
    """Every commit's events, fanned out to this process's subscribers."""

    def subscribe(self) -> Subscription:
        """Raises TooManyStreams when this process serves as many as it allows."""
        ...
