"""The process's read model: the tracked set in memory, kept current by LISTEN/NOTIFY.

One dedicated connection per server process listens on ``changes.CHANNEL``. On connecting it
loads everything, then applies each notification with one query for what it names
(``infrastructure.db.changes``), in commit order, and hands the events each change
makes to the price feed. It loads the configured quote currencies only, each one's
prices as a float8 column of its own (``Queries``): a currency removed from the
configuration is not loaded, and its stored prices stay in the database.

The consistency it promises:
- ``live`` is True only while the listening connection is up and the set is loaded.
  While it is False (starting, connection lost, reconnecting, reloading) the
  repository reads through to the database: no answer comes from a set that may have
  missed a notification. Losing the connection turns ``live`` off at once (asyncpg's
  termination callback), before any later request is served. Only when the database
  cannot answer either does a read fall back to the set last loaded (stale-if-error,
  ``last_known``): in an outage nothing can commit, and an answer beats a 503.
- A process that writes waits in ``sync()`` until its own listener has applied the
  write, so it answers the new state right away; every other replica applies it as
  soon as PostgreSQL delivers the notification (a millisecond or so).
- A connection that stops answering without closing (a network partition, a paused
  server) is found by a heartbeat query every ``heartbeat`` seconds that must answer
  within ``heartbeat_timeout``; until then the set may lag (when the whole server is
  paused nothing can commit, so it does not).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from array import array
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from domain.events import PriceEvent, UpstreamChanged, UpstreamState
from domain.model import Crypto, QuoteCurrencies, Ticker
from infrastructure.db.changes import CHANNEL, Change, parse, sync_payload
from infrastructure.db.config import connect_kwargs
from infrastructure.read_model.store import (
    CryptoState,
    HistoryRow,
    PriceState,
    TrackedSet,
    has_price,
)

log = logging.getLogger(__name__)

APPLICATION_NAME = "cps-read-model"

# A full load's page: the rows of one page stay a few MB, where those of 10,000
# cryptos at once took about 170 MB on top of the set (bench/RESULTS.md).
PAGE = 500


def _price(column: str, param: int) -> str:
    """The price in the currency of parameter ``param`` of a prices object; NaN where
    it has none (an array cannot hold the NULL ->> gives for a missing key)."""
    return f"coalesce(({column}->>${param})::float8, 'NaN')"


def _price_columns(column: str, first: int, alias: str, currencies: int) -> str:
    """``, <price of currency i> AS <alias>_<i>`` for each currency, its code in
    parameter ``first + i``."""
    return "".join(f", {_price(column, first + i)} AS {alias}_{i}" for i in range(currencies))


@dataclass(frozen=True, slots=True)
class Queries:
    """The loader's SQL for ``currencies`` configured currencies, built once: each
    currency's prices come as a float8 column of their own (``now_<i>`` the current
    one, ``p_<i>`` the history's as an array), its code a parameter.

    - ``load_page(keep, *codes, after, page)``, ``load_ids(keep, *codes, ids)``:
      cryptos with their newest ``keep`` history rows, as arrays (a page by id of a
      full load, or the cryptos named);
    - ``prices(ids, since, *codes)``: a price batch, the cryptos' current prices and
      their rows stamped ``since`` or later (rows already held are recognised by id).
    """

    load_page: str
    load_ids: str
    prices: str

    @classmethod
    def build(cls, currencies: int) -> Queries:
        codes = range(currencies)
        # The loads: $1 keep, then the codes, then what the WHERE needs.
        first = 2
        now = _price_columns("c.current_prices", first, "now", currencies)
        aggregates = "".join(
            f",\n           array_agg({_price('prices', first + i)} ORDER BY ts, id) AS p_{i}"
            for i in codes
        )
        arrays = "".join(f", h.p_{i}" for i in codes)
        load = f"""
SELECT c.id, c.symbol, c.coin_id, c.name, c.last_updated{now},
       h.row_ids, h.times{arrays}
FROM cryptos AS c
LEFT JOIN LATERAL (
    SELECT array_agg(id ORDER BY ts, id) AS row_ids,
           array_agg((extract(epoch FROM ts) * 1000000)::int8 ORDER BY ts, id) AS times{aggregates}
    FROM (
        SELECT id, ts, prices FROM price_history
        WHERE crypto_id = c.id
        ORDER BY ts DESC, id DESC
        LIMIT $1
    ) AS newest
) AS h ON TRUE
"""
        after = first + currencies
        # The price batch: $1 ids, $2 since, then the codes.
        now_at_3 = _price_columns("c.current_prices", 3, "now", currencies)
        row_prices = _price_columns("h.prices", 3, "p", currencies)
        prices = f"""
SELECT c.id, c.last_updated{now_at_3},
       h.id AS row_id, (extract(epoch FROM h.ts) * 1000000)::int8 AS at_us{row_prices}
FROM cryptos AS c
LEFT JOIN price_history AS h ON h.crypto_id = c.id AND h.ts >= $2
WHERE c.id = ANY($1::int[])
"""
        return cls(
            load_page=load + f"WHERE c.id > ${after} ORDER BY c.id LIMIT ${after + 1}\n",
            load_ids=load + f"WHERE c.id = ANY(${after}::int[])\n",
            prices=prices,
        )


Publish = Callable[[Sequence[PriceEvent]], None]


def _current(r: asyncpg.Record, codes: Sequence[str]) -> dict[str, float]:
    return {code: r[f"now_{i}"] for i, code in enumerate(codes) if has_price(r[f"now_{i}"])}


def _states(rows: Sequence[asyncpg.Record], codes: Sequence[str]) -> list[CryptoState]:
    """Rows of ``Queries.load_page``/``load_ids`` asked with ``codes``."""
    return [
        CryptoState(
            Crypto(
                symbol=Ticker(r["symbol"]),
                coin_id=r["coin_id"],
                name=r["name"],
                prices=_current(r, codes),
                last_updated=r["last_updated"],
                id=r["id"],
            ),
            array("q", r["row_ids"] or ()),
            array("q", r["times"] or ()),
            {code: array("d", r[f"p_{i}"] or ()) for i, code in enumerate(codes)},
        )
        for r in rows
    ]


def _price_states(rows: Sequence[asyncpg.Record], codes: Sequence[str]) -> list[PriceState]:
    """Rows of ``Queries.prices`` asked with ``codes``."""
    new_rows: dict[int, list[HistoryRow]] = defaultdict(list)
    current: dict[int, asyncpg.Record] = {}
    for r in rows:
        current[r["id"]] = r
        if r["row_id"] is not None:
            prices = {c: r[f"p_{i}"] for i, c in enumerate(codes) if has_price(r[f"p_{i}"])}
            new_rows[r["id"]].append(HistoryRow(r["row_id"], r["at_us"], prices))
    return [
        PriceState(crypto_id, _current(r, codes), r["last_updated"], new_rows[crypto_id])
        for crypto_id, r in current.items()
    ]


class LiveReadModel:
    def __init__(
        self,
        database_url: str,
        keep: int,
        currencies: QuoteCurrencies,
        *,
        notify: Callable[[str], Awaitable[None]],
        publish: Publish | None = None,
        observe: Callable[[bool], None] | None = None,
        query_timeout: float = 30.0,
        connect_timeout: float = 5.0,
        heartbeat: float = 5.0,
        heartbeat_timeout: float = 2.0,
        sync_timeout: float = 2.0,
        max_retry_delay: float = 5.0,
    ) -> None:
        self.store = TrackedSet(keep, currencies)
        # Only the configured currencies are loaded: one removed from the
        # configuration stays in the database, unread.
        self._codes = currencies.codes
        self._sql = Queries.build(len(self._codes))
        self._connect: dict[str, Any] = {
            **connect_kwargs(database_url),
            "timeout": connect_timeout,
        }
        self._notify = notify
        self._publish = publish or (lambda events: None)
        self._observe = observe or (lambda live: None)  # told each change of ``live``
        self._query_timeout = query_timeout
        self._heartbeat = heartbeat
        self._heartbeat_timeout = heartbeat_timeout
        self._sync_timeout = sync_timeout
        self._max_retry_delay = max_retry_delay
        self._live = False
        self._loads = 0  # times it went live
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self._outage_logged = False
        # The latest upstream state the leader announced; None until one arrives.
        # Kept across reconnects: the leader repeats it every cycle anyway.
        self._upstream: UpstreamState | None = None

    @property
    def upstream(self) -> UpstreamState | None:
        """How the poller fares at CoinGecko, as last announced (None: not heard yet)."""
        return self._upstream

    @property
    def live(self) -> bool:
        """Whether reads may be answered from ``store``."""
        return self._live

    @property
    def last_known(self) -> bool:
        """Whether ``store`` holds a set once loaded live: what the database last told
        this process, kept while the listener is down (it is replaced on reload)."""
        return self._loads > 0

    def tracked_count(self) -> int | None:
        """How many cryptos are tracked, from memory while live (else None: unknown here)."""
        return len(self.store) if self._live else None

    def oldest_update(self) -> datetime | None:
        """The oldest current price's time, from the set last loaded (None: nothing
        tracked, or never loaded). Kept while the listener is down: in an outage nothing
        commits, so the prices it holds are the prices there are."""
        return self.store.oldest_update() if self.last_known else None

    async def start(self) -> None:
        """Start listening in the background; reads go to the database until loaded."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="read-model-listener")

    async def stop(self) -> None:
        self._set_down()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close()

    async def sync(self) -> None:
        """Return once this process's model has applied every write committed before
        the call (its own, typically). When it cannot tell within ``sync_timeout``,
        the model stops serving and reloads, rather than risk answering stale data."""
        if not self._live:
            return
        token = uuid.uuid4().hex
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[token] = waiter
        try:
            async with asyncio.timeout(self._sync_timeout):
                await self._notify(sync_payload(token))
                await waiter
        except TimeoutError:
            if self._live:
                log.warning(
                    "read model: a write did not come back within %s s; reloading",
                    self._sync_timeout,
                )
                self._reconnect()
        finally:
            self._waiting.pop(token, None)

    # The listener.

    async def _run(self) -> None:
        delay = 0.1
        while True:
            loads = self._loads
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # any failure: read through, reconnect, reload
                self._set_down()
                if not self._outage_logged:
                    self._outage_logged = True
                    log.warning(
                        "read model: listening connection lost (%s: %s); reading through "
                        "to the database until it is back",
                        type(error).__name__,
                        error,
                    )
            finally:
                await self._close()
            # Quick again after a connection that served; slower while none can be had.
            delay = 0.1 if self._loads != loads else min(delay * 2, self._max_retry_delay)
            await asyncio.sleep(delay)

    async def _listen(self) -> None:
        conn = await asyncpg.connect(
            **self._connect,
            server_settings={"application_name": f"{APPLICATION_NAME} {os.getpid()}"},
        )
        self._conn = conn
        # One queue per connection: a payload of a lost one is never applied after it.
        inbox: asyncio.Queue[str | None] = asyncio.Queue()
        conn.add_termination_listener(lambda _: self._lost(inbox))
        await conn.add_listener(CHANNEL, lambda _c, _pid, _ch, payload: inbox.put_nowait(payload))
        # Listening before loading: a change committed meanwhile is both loaded and
        # queued, and applying it twice changes nothing.
        await self._load_all(conn)
        self._set_live()
        while True:
            try:
                async with asyncio.timeout(self._heartbeat):
                    payload = await inbox.get()
            except TimeoutError:
                await conn.fetchval("SELECT 1", timeout=self._heartbeat_timeout)
                continue
            if payload is None:
                raise ConnectionError("the listening connection was closed")
            await self._apply(conn, payload)

    async def _apply(self, conn: asyncpg.Connection, payload: str) -> None:
        try:
            change = parse(payload)
        except ValueError as error:
            log.warning("read model: %s", error)
            return
        if change.kind == "sync":
            waiter = self._waiting.get(change.token or "")
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif change.kind == "upstream":
            self._apply_upstream(change)
        elif change.kind == "added" and change.ids:
            await self._load(conn, list(change.ids))
        elif change.kind == "removed" and change.ids:
            self._emit(self.store.remove(change.ids))
        elif change.kind == "prices" and change.since is not None:
            ids = list(change.ids) if change.ids is not None else self.store.ids()
            if ids:
                rows = await conn.fetch(
                    self._sql.prices, ids, change.since, *self._codes, timeout=self._query_timeout
                )
                states = _price_states(rows, self._codes)
                unknown = [s.crypto_id for s in states if not self.store.holds(s.crypto_id)]
                self._emit(self.store.apply_prices(states, change.keep))
                if unknown:  # not held (never expected: an add is delivered first)
                    await self._load(conn, unknown)

    def _apply_upstream(self, change: Change) -> None:
        try:
            if change.status is None or change.since is None:
                raise ValueError("status and since are needed")
            state = UpstreamState(change.status, change.since)
        except ValueError:
            log.warning("read model: not an upstream state: %r", change)
            return
        # Repeated every cycle: only a change is an event.
        if state != self._upstream:
            self._upstream = state
            self._emit([UpstreamChanged(state)])

    async def _load_all(self, conn: asyncpg.Connection) -> None:
        """Page by page (a change committed between two pages is queued too, and
        applied after), then swapped in at once."""
        states: list[CryptoState] = []
        after = 0
        while True:
            rows = await conn.fetch(
                self._sql.load_page,
                self.store.keep,
                *self._codes,
                after,
                PAGE,
                timeout=self._query_timeout,
            )
            states += _states(rows, self._codes)
            if len(rows) < PAGE:
                break
            after = rows[-1]["id"]
        self._emit(self.store.replace_all(states))

    async def _load(self, conn: asyncpg.Connection, ids: list[int]) -> None:
        rows = await conn.fetch(
            self._sql.load_ids, self.store.keep, *self._codes, ids, timeout=self._query_timeout
        )
        self._emit(self.store.upsert(_states(rows, self._codes)))

    def _emit(self, events: Sequence[PriceEvent]) -> None:
        if events:
            self._publish(events)

    # State.

    def _lost(self, inbox: asyncio.Queue[str | None]) -> None:
        self._set_down()
        inbox.put_nowait(None)

    def _set_live(self) -> None:
        self._live = True
        self._loads += 1
        self._observe(True)
        if self._outage_logged:
            self._outage_logged = False
            log.info("read model: listening again, reloaded %d cryptos", len(self.store))

    def _set_down(self) -> None:
        if self._live:
            self._observe(False)
        self._live = False
        for waiter in self._waiting.values():  # reads go to the database now
            if not waiter.done():
                waiter.set_result(None)

    def _reconnect(self) -> None:
        self._set_down()
        if self._conn is not None:
            self._conn.terminate()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()
