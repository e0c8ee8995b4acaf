"""The storage ports (``domain.ports``) on PostgreSQL through Tortoise ORM.

Prices are stored as JSON objects of currency code -> number (``cryptos.current_prices``,
``price_history.prices``: one history row per observation, with its price in every
currency). They go in as JSON text (``prices_json``) and come out through
``(prices->>code)::float8``, which gives back the very double that went in. ``list``
and ``get`` return every currency stored, including any no longer configured (the
read model keeps only the configured ones; the HTTP layer only ever asks for those).

Simple reads and writes go through the models; adding, the batch update and the
history are SQL (placeholders ``$1``, asyncpg's style) so PostgreSQL does the work
and the number of statements never grows with the data. The statistics are the
domain's (``PriceStats.of``) over the history read; the rules the batch update
carries out in SQL are named in ``domain.rules``. Tortoise must be
initialised (``register_tortoise`` in the app, ``Tortoise.init`` in tests) first.

No ``tortoise.transactions.in_transaction`` here: in tortoise-orm 1.1.9, when BEGIN
fails on a connection the server dropped (a PostgreSQL restart), its
``TransactionContextPooled.__aenter__`` leaves that connection checked out of the
pool and the calling task bound to the dead connection for good (the failure of
tortoise-orm #1793, still there: a long-lived task such as the poller never
recovers). Adding is one statement, atomic by itself; the batch update runs in
``_transaction()``, an asyncpg transaction on a connection borrowed from Tortoise's
pool, which is always given back.

Every operation, ``_transaction()`` included, borrows its connection through
``engine.DeadlineAsyncpgClient``: it ends within the configured deadline, and an
unreachable database raises ``StorageUnavailable``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace

import asyncpg
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import get_connection
from tortoise.exceptions import IntegrityError, OperationalError

from domain.errors import CryptoAlreadyTracked, StorageUnavailable, UsernameTaken
from domain.model import (
    Crypto,
    PricePoint,
    Prices,
    PriceStats,
    PriceUpdate,
    Ticker,
    TrackedCoin,
    User,
)
from domain.rules import latest_update_per_crypto
from infrastructure.db.changes import NOTIFY, announce, prices_payload
from infrastructure.db.config import APP_LABEL, CONNECTION
from infrastructure.db.engine import database_deadline
from infrastructure.db.migrate import APPLIED_SQL, missing_from
from infrastructure.db.models import CryptoRecord, UserRecord

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 2.0
_MAX_ID = 2**31 - 1  # users.id is an integer (int4)

# The crypto and its first history row, announced on commit, in one statement.
_ADD = f"""
WITH crypto AS (
    INSERT INTO cryptos (symbol, coin_id, name, current_prices, last_updated)
    VALUES ($1, $2, $3, $4::text::jsonb, $5)
    RETURNING id
), first_price AS (
    INSERT INTO price_history (crypto_id, prices, ts)
    SELECT id, $4::text::jsonb, $5 FROM crypto
    RETURNING crypto_id
)
SELECT crypto_id, {announce("added", "crypto_id")} FROM first_price
"""

# Its history goes with it (ON DELETE CASCADE).
_DELETE = f"""
WITH gone AS (DELETE FROM cryptos WHERE symbol = $1 RETURNING id)
SELECT id, {announce("removed", "id")} FROM gone
"""

# Row locks in id order first, so two batches touching the same cryptos queue up
# instead of deadlocking, and a concurrent DELETE waits for this transaction.
_LOCK_CRYPTOS = "SELECT id FROM cryptos WHERE id = ANY($1::int[]) ORDER BY id FOR UPDATE"

# domain.rules.OnlyNewerPricesAreRecorded, in the WHERE: a price no newer than the
# current one (CoinGecko's cached observation fetched again, or a batch slower to
# commit than a newer one) changes nothing and adds no row. The history row goes in
# only for the cryptos updated, which the lock found still there; as the current
# price is the newest row, no two rows of a crypto share a moment. The prices come as
# JSON text (text[], cast here: no jsonb codec needed), whatever the currencies.
_RECORD_NEWER = """
WITH moved AS (
    UPDATE cryptos AS c
    SET current_prices = u.prices::jsonb, last_updated = u.at
    FROM unnest($1::int[], $2::text[], $3::timestamptz[]) AS u(crypto_id, prices, at)
    WHERE c.id = u.crypto_id AND c.last_updated < u.at
    RETURNING c.id, c.current_prices, u.at
)
INSERT INTO price_history (crypto_id, prices, ts)
SELECT id, current_prices, at FROM moved
RETURNING crypto_id, ts
"""

# domain.rules.HistoryKeepsTheNewest: per crypto, everything older than its keep-th
# newest (ts, id) goes, so a lowered keep converges in one cycle. Found by an
# index-only walk of keep entries of (crypto_id, ts, id) per crypto: ranking the
# batch's whole history cost ten times more.
_TRIM_HISTORY = """
DELETE FROM price_history AS p
USING unnest($1::int[]) AS c(id)
CROSS JOIN LATERAL (
    SELECT h.ts, h.id FROM price_history AS h
    WHERE h.crypto_id = c.id
    ORDER BY h.ts DESC, h.id DESC
    OFFSET $2 - 1 LIMIT 1
) AS cut
WHERE p.crypto_id = c.id AND (p.ts, p.id) < (cut.ts, cut.id)
"""

# The newest $2 rows (domain.rules.HistoryKeepsTheNewest's order), oldest first, with
# their price and the current one in currency $3 (NULL where there is none): one row
# per tracked symbol (history columns NULL when it has none); no row when the symbol
# is not tracked. $2 counts observations: those with no price in $3 are left out after.
_HISTORY = """
SELECT (c.current_prices->>$3)::float8 AS current_price, (h.prices->>$3)::float8 AS price, h.ts
FROM cryptos AS c
LEFT JOIN LATERAL (
    SELECT prices, ts, id FROM price_history
    WHERE crypto_id = c.id
    ORDER BY ts DESC, id DESC
    LIMIT $2
) AS h ON TRUE
WHERE c.symbol = $1
ORDER BY h.ts, h.id
"""


# Usernames are unique regardless of case (a unique index on lower(username)); the
# same expression on both sides lets that index serve the lookup.
_USER_BY_NAME = """
SELECT id, username, password_hash FROM users WHERE lower(username) = lower($1)
"""


def _db() -> BaseDBAsyncClient:
    return get_connection(CONNECTION)


@asynccontextmanager
async def _transaction() -> AsyncIterator[asyncpg.Connection]:
    """A connection from Tortoise's pool inside a transaction: committed when the
    block ends, rolled back when it raises, returned to the pool either way."""
    async with _db().acquire_connection() as conn, conn.transaction():
        yield conn


def prices_json(prices: Prices) -> str:
    """Prices as the JSON object stored: Python writes a float's shortest exact
    decimal, so the double read back is the one written. Only usable prices reach
    here (``domain.model.valid_price``): NaN and the infinities are refused."""
    return json.dumps({code: float(price) for code, price in prices.items()}, allow_nan=False)


def _has_price(price: float | None) -> bool:
    # A NaN (migrated from versions that stored one) is no price, as in the read model.
    return price is not None and not math.isnan(price)


def stored_prices(stored: object) -> dict[str, float]:
    """The prices of a stored JSON object, as floats (a migrated infinity is the JSON
    string PostgreSQL writes for it, "Infinity"; a migrated "NaN" is left out)."""
    if isinstance(stored, str | bytes):  # undecoded jsonb
        stored = json.loads(stored)
    if not isinstance(stored, dict):
        return {}
    prices = {str(code): float(price) for code, price in stored.items()}
    return {code: price for code, price in prices.items() if _has_price(price)}


def _to_crypto(record: CryptoRecord) -> Crypto:
    return Crypto(
        symbol=Ticker(record.symbol),
        coin_id=record.coin_id,
        name=record.name,
        prices=stored_prices(record.current_prices),
        last_updated=record.last_updated,
        id=record.id,
    )


def _to_user(record: UserRecord) -> User:
    return User(id=record.id, username=record.username, password_hash=record.password_hash)


class TortoiseCryptoRepository:
    """``domain.ports.CryptoRepository`` on the ``cryptos`` and ``price_history`` tables."""

    async def list(self) -> list[Crypto]:
        return [_to_crypto(r) for r in await CryptoRecord.all().order_by("symbol")]

    async def get(self, symbol: Ticker) -> Crypto | None:
        record = await CryptoRecord.get_or_none(symbol=symbol.value)
        return None if record is None else _to_crypto(record)

    async def add(self, crypto: Crypto) -> Crypto:
        values = [
            crypto.symbol.value,
            crypto.coin_id,
            crypto.name,
            prices_json(crypto.prices),
            crypto.last_updated,
        ]
        try:
            rows = await _db().execute_query_dict(_ADD, values)
        except IntegrityError:
            # The unique symbol settles races: the loser's insert fails here.
            raise CryptoAlreadyTracked(crypto.symbol) from None
        return replace(crypto, id=rows[0]["crypto_id"])

    async def record_prices(self, updates: Sequence[PriceUpdate], keep: int) -> set[int]:
        """See ``CryptoRepository.record_prices``. At most four statements in one
        transaction: lock the cryptos, update the prices and insert their history
        rows, trim history, announce the change (``infrastructure.db.changes``); the
        last two only when some price was newer.

        The rules of ``domain.rules``: several updates for one crypto collapse to its
        latest (``latest_update_per_crypto``), only prices newer than the current one
        are recorded (``OnlyNewerPricesAreRecorded``), the history keeps its newest
        ``keep`` rows (``HistoryKeepsTheNewest``).
        """
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        batch = latest_update_per_crypto(updates)
        if not batch:
            return set()
        ids = [u.crypto_id for u in batch]
        prices = [prices_json(u.prices) for u in batch]
        times = [u.at for u in batch]
        async with _transaction() as conn:
            locked = await conn.fetch(_LOCK_CRYPTOS, ids)
            if not locked:
                return set()
            recorded = await conn.fetch(_RECORD_NEWER, ids, prices, times)
            if not recorded:
                return set()  # nothing newer: nothing to trim, nothing to announce
            moved = sorted(row["crypto_id"] for row in recorded)
            await conn.execute(_TRIM_HISTORY, moved, keep)
            since = min(row["ts"] for row in recorded)
            await conn.execute(NOTIFY, prices_payload(moved, since, keep))
        return set(moved)

    async def tracked_coins(self) -> list[TrackedCoin]:
        rows = await CryptoRecord.all().order_by("id").values_list("id", "coin_id")
        return [TrackedCoin(crypto_id=crypto_id, coin_id=coin_id) for crypto_id, coin_id in rows]

    async def history(self, symbol: Ticker, limit: int, currency: str) -> list[PricePoint] | None:
        found = await self._newest(symbol, limit, currency)
        return None if found is None else found[1]

    async def stats(self, symbol: Ticker, limit: int, currency: str) -> PriceStats | None:
        # Computed here from the rows a history read returns, not by SQL aggregates:
        # PriceStats.of is the one implementation of the statistics.
        found = await self._newest(symbol, limit, currency)
        if found is None:
            return None
        current_price, points = found
        return PriceStats.of(current_price, (p.price for p in points))

    async def _newest(
        self, symbol: Ticker, limit: int, currency: str
    ) -> tuple[float | None, list[PricePoint]] | None:
        """The current price in ``currency`` (None: none) and the prices in it of the
        newest ``limit`` observations that have one, oldest first, in one query; None
        when the symbol is not tracked."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        _, rows = await _db().execute_query(_HISTORY, [symbol.value, limit, currency])
        if not rows:
            return None
        points = [
            PricePoint(price=row["price"], timestamp=row["ts"])
            for row in rows
            if _has_price(row["price"])
        ]
        current = rows[0]["current_price"]
        return (current if _has_price(current) else None), points

    async def delete(self, symbol: Ticker) -> bool:
        _, rows = await _db().execute_query(_DELETE, [symbol.value])
        return bool(rows)


class TortoiseUserRepository:
    """``domain.ports.UserRepository`` on the ``users`` table."""

    async def add(self, username: str, password_hash: str) -> User:
        try:
            record = await UserRecord.create(username=username, password_hash=password_hash)
        except IntegrityError:
            # Also when only the case differs (the lower(username) index).
            raise UsernameTaken(f"username {username!r} is already taken") from None
        return _to_user(record)

    async def get_by_username(self, username: str) -> User | None:
        _, rows = await _db().execute_query(_USER_BY_NAME, [username])
        if not rows:
            return None
        row = rows[0]
        return User(id=row["id"], username=row["username"], password_hash=row["password_hash"])

    async def exists(self, user_id: int) -> bool:
        if not 0 < user_id <= _MAX_ID:  # beyond the column's range PostgreSQL would refuse it
            return False
        return await UserRecord.filter(id=user_id).exists()


async def notify_change(payload: str) -> None:
    """Send a change notification of no write (``LiveReadModel.sync``'s)."""
    await _db().execute_query(NOTIFY, [payload])


async def database_ready() -> tuple[bool, list[str]]:
    """A cheap readiness probe, within READY_TIMEOUT_SECONDS: whether PostgreSQL answers,
    and the shipped migrations its schema still lacks (serving on an older schema would
    fail request after request)."""
    try:
        with database_deadline(READY_TIMEOUT_SECONDS):
            try:
                _, rows = await _db().execute_query(APPLIED_SQL, [APP_LABEL])
            except OperationalError as error:
                if not isinstance(error.__cause__, asyncpg.UndefinedTableError):
                    raise
                rows = []  # aerich's table is not there yet: nothing is applied
    except StorageUnavailable:  # the engine logs the outage, once
        return False, []
    except Exception as error:  # any failure means "not ready"; say why in the log
        log.warning("database not ready: %s: %s", type(error).__name__, error)
        return False, []
    return True, missing_from(row["version"] for row in rows)
