"""In-memory fakes of the domain ports, for unit tests of the use cases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from domain.errors import CryptoAlreadyTracked, TooManyAttempts, UpstreamError, UsernameTaken
from domain.model import (
    CoinCandidate,
    CoinMatch,
    CoinRef,
    Crypto,
    PricePoint,
    Prices,
    PriceStats,
    PriceUpdate,
    Quote,
    Ticker,
    TrackedCoin,
    User,
)
from domain.rules import (
    HistoryKeepsTheNewest,
    OnlyNewerPricesAreRecorded,
    latest_update_per_crypto,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@dataclass(frozen=True, slots=True)
class _Row:
    """One observation: its prices in every currency it has one in."""

    row_id: int
    prices: Prices
    at: datetime


@dataclass
class InMemoryCryptoRepository:
    """The rules of the PostgreSQL repository (domain.rules, PriceStats.of), in memory;
    the contract suite (tests/integration/test_repository_contract.py) holds both to
    the same cases."""

    rows: dict[str, Crypto] = field(default_factory=dict)
    history_rows: dict[int, list[_Row]] = field(default_factory=dict)  # in history order
    next_id: int = 1
    next_row_id: int = 1
    record_calls: int = 0

    async def list(self) -> list[Crypto]:
        return [self.rows[s] for s in sorted(self.rows)]

    async def get(self, symbol: Ticker) -> Crypto | None:
        return self.rows.get(symbol.value)

    async def add(self, crypto: Crypto) -> Crypto:
        if crypto.symbol.value in self.rows:
            raise CryptoAlreadyTracked(crypto.symbol)
        stored = replace(crypto, id=self.next_id)
        self.next_id += 1
        self.rows[crypto.symbol.value] = stored
        self.history_rows[stored.id] = [self._row(crypto.prices, crypto.last_updated)]
        return stored

    def _row(self, prices: Prices, at: datetime) -> _Row:
        self.next_row_id += 1
        return _Row(self.next_row_id - 1, dict(prices), at)

    async def record_prices(self, updates: Sequence[PriceUpdate], keep: int) -> set[int]:
        rule = HistoryKeepsTheNewest(keep)  # refuses keep < 1
        self.record_calls += 1
        by_id = {c.id: c for c in self.rows.values()}
        done = set()
        for u in latest_update_per_crypto(updates):
            crypto = by_id.get(u.crypto_id)
            if crypto is None or OnlyNewerPricesAreRecorded(crypto.last_updated, u.at).is_broken():
                continue
            self.rows[crypto.symbol.value] = replace(
                crypto, prices=dict(u.prices), last_updated=u.at
            )
            rows = [*self.history_rows[u.crypto_id], self._row(u.prices, u.at)]
            rows.sort(key=lambda r: rule.order(r.at, r.row_id))
            del rows[: rule.surplus(len(rows))]
            self.history_rows[u.crypto_id] = rows
            done.add(u.crypto_id)
        return done

    async def tracked_coins(self) -> list[TrackedCoin]:
        by_id = sorted(self.rows.values(), key=lambda c: c.id or 0)
        return [TrackedCoin(c.id, c.coin_id) for c in by_id if c.id]

    async def history(self, symbol: Ticker, limit: int, currency: str) -> list[PricePoint] | None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        crypto = self.rows.get(symbol.value)
        if crypto is None:
            return None
        newest = self.history_rows[crypto.id][-limit:]  # observations, then the currency's
        return [PricePoint(r.prices[currency], r.at) for r in newest if currency in r.prices]

    async def stats(self, symbol: Ticker, limit: int, currency: str) -> PriceStats | None:
        crypto = self.rows.get(symbol.value)
        points = await self.history(symbol, limit, currency)
        if crypto is None or points is None:
            return None
        return PriceStats.of(crypto.price_in(currency), (p.price for p in points))

    async def delete(self, symbol: Ticker) -> bool:
        crypto = self.rows.pop(symbol.value, None)
        if crypto is None:
            return False
        del self.history_rows[crypto.id]
        return True


@dataclass
class InMemoryUserRepository:
    """Keyed by the lower-cased name: usernames are unique regardless of case."""

    users: dict[str, User] = field(default_factory=dict)

    async def add(self, username: str, password_hash: str) -> User:
        if username.lower() in self.users:
            raise UsernameTaken(f"username {username!r} is already taken")
        user = User(id=len(self.users) + 1, username=username, password_hash=password_hash)
        self.users[username.lower()] = user
        return user

    async def get_by_username(self, username: str) -> User | None:
        return self.users.get(username.lower())

    async def exists(self, user_id: int) -> bool:
        return any(user.id == user_id for user in self.users.values())


@dataclass
class FakePriceSource:
    """Coins by ticker; prices (with CoinGecko's times of them) by coin id. ``fail``
    makes every call raise."""

    coins: dict[str, CoinMatch] = field(default_factory=dict)
    quotes: dict[str, Quote] = field(default_factory=dict)
    fail: UpstreamError | None = None
    find_calls: list[str] = field(default_factory=list)
    price_calls: list[tuple[list[str], bool]] = field(default_factory=list)
    candidates: dict[str, list[CoinCandidate]] = field(default_factory=dict)
    candidate_calls: list[tuple[str, str]] = field(default_factory=list)
    supported: set[str] = field(default_factory=lambda: {"usd", "eur", "gbp", "btc"})

    async def coins_with_symbol(self, symbol: Ticker, currency: str) -> list[CoinCandidate]:
        """``candidates`` as they are, whatever the currency (a test sets what it needs)."""
        self.candidate_calls.append((symbol.value, currency))
        if self.fail:
            raise self.fail
        return list(self.candidates.get(symbol.value, []))

    def quote(self, coin_id: str, price: float | Prices, at: datetime | None = None) -> None:
        """The prices CoinGecko answers for ``coin_id`` from now on (one number: in usd);
        without ``at``, it sends no time (the fetch time stands in)."""
        prices = {"usd": price} if isinstance(price, int | float) else dict(price)
        self.quotes[coin_id] = Quote(prices, at)

    async def find_coin(self, symbol: Ticker) -> CoinMatch | None:
        self.find_calls.append(symbol.value)
        if self.fail:
            raise self.fail
        return self.coins.get(symbol.value)

    async def prices(self, coin_ids: Sequence[str], *, wait: bool = False) -> dict[str, Quote]:
        self.price_calls.append((list(coin_ids), wait))
        if self.fail:
            raise self.fail
        return {i: self.quotes[i] for i in coin_ids if i in self.quotes}

    async def supported_currencies(self) -> set[str]:
        if self.fail:
            raise self.fail
        return set(self.supported)


@dataclass
class DictTickerCache:
    refs: dict[str, CoinRef] = field(default_factory=dict)
    lists: dict[tuple[str, str], list[CoinCandidate]] = field(default_factory=dict)

    async def get(self, symbol: Ticker) -> CoinRef | None:
        return self.refs.get(symbol.value)

    async def set(self, symbol: Ticker, ref: CoinRef) -> None:
        self.refs[symbol.value] = ref

    async def get_candidates(self, symbol: Ticker, currency: str) -> list[CoinCandidate] | None:
        return self.lists.get((symbol.value, currency))

    async def set_candidates(
        self, symbol: Ticker, currency: str, candidates: list[CoinCandidate]
    ) -> None:
        self.lists[symbol.value, currency] = candidates


class PlainHasher:
    """Reversible 'hash' so tests can see what was stored; never used outside tests."""

    def __init__(self) -> None:
        self.verify_calls: list[tuple[str, str | None]] = []

    async def hash(self, password: str) -> str:
        return "plain$" + password

    async def verify(self, password: str, password_hash: str | None) -> bool:
        self.verify_calls.append((password, password_hash))
        return password_hash == "plain$" + password


class CountingTokens:
    def issue(self, user_id: int) -> str:
        return f"token-for-{user_id}"

    expires_at: int = 2_000_000_000  # 2033-05-18T03:33:20Z

    def verify(self, token: str) -> tuple[str, int]:
        return token.removeprefix("token-for-"), self.expires_at


@dataclass
class RecordingThrottle:
    """Records what a use case tells it; ``refuse`` makes ``check`` raise it."""

    calls: list[tuple[str, ...]] = field(default_factory=list)
    refuse: TooManyAttempts | None = None

    async def check(self, username: str, address: str) -> None:
        self.calls.append(("check", username, address))
        if self.refuse:
            raise self.refuse

    async def record_failure(self, username: str, address: str) -> None:
        self.calls.append(("failure", username, address))

    async def reset(self, username: str) -> None:
        self.calls.append(("reset", username))
