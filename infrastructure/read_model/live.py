"""The process's read model: the tracked set in memory, kept current by LISTEN/NOTIFY.

One dedicated connection per server process listens on ``changes.CHANNEL``. On connecting it
loads everything, then applies each notification with one query for what it names
(``infrastructure.db.changes``), in commit order, and hands the events each change
makes to the price feed.

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
from datetime import datetime
from typing import Any

import asyncpg

from domain.events import PriceEvent, UpstreamChanged, UpstreamState
from domain.model import Crypto, Ticker
from infrastructure.db.changes import CHANNEL, Change, parse, sync_payload
from infrastructure.db.config import connect_kwargs
from infrastructure.read_model.store import (
    CryptoState,
    HistoryRow,
    PriceState,
    TrackedSet,
)

log = logging.getLogger(__name__)

APPLICATION_NAME = "cps-read-model"

# Cryptos with their newest $1 history rows, as arrays: each page (by id) of a full
# load, or the cryptos named.
_LOAD = """
SELECT c.id, c.symbol, c.coin_id, c.name, c.current_price, c.last_updated,
       h.row_ids, h.times, h.prices
FROM cryptos AS c
LEFT JOIN LATERAL (
    SELECT array_agg(id ORDER BY ts, id) AS row_ids,
           array_agg((extract(epoch FROM ts) * 1000000)::int8 ORDER BY ts, id) AS times,
           array_agg(price ORDER BY ts, id) AS prices
    FROM (
        SELECT id, ts, price FROM price_history
        WHERE crypto_id = c.id
        ORDER BY ts DESC, id DESC
        LIMIT $1
    ) AS newest
) AS h ON TRUE
{where}
"""
_LOAD_PAGE = _LOAD.format(where="WHERE c.id > $2 ORDER BY c.id LIMIT $3")
_LOAD_IDS = _LOAD.format(where="WHERE c.id = ANY($2::int[])")
# A full load's page: the rows of one page stay a few MB, where those of 10,000
# cryptos at once took about 170 MB on top of the set (bench/RESULTS.md).
PAGE = 500

# A price batch: the cryptos' current prices and their rows stamped $2 or later
# (rows already held are recognised by id).
_PRICES = """
SELECT c.id, c.current_price, c.last_updated,
       h.id AS row_id, (extract(epoch FROM h.ts) * 1000000)::int8 AS at_us, h.price
FROM cryptos AS c
LEFT JOIN price_history AS h ON h.crypto_id = c.id AND h.ts >= $2
WHERE c.id = ANY($1::int[])
"""

Publish = Callable[[Sequence[PriceEvent]], None]


def _states(rows: Sequence[asyncpg.Record]) -> list[CryptoState]:
    return [
        CryptoState(
            Crypto(
                symbol=Ticker(r["symbol"]),
                coin_id=r["coin_id"],
                name=r["name"],
                current_price=r["current_price"],
                last_updated=r["last_updated"],
                id=r["id"],
            ),
            array("q", r["row_ids"] or ()),
            array("q", r["times"] or ()),
            array("d", r["prices"] or ()),
        )
        for r in rows
    ]


def _price_states(rows: Sequence[asyncpg.Record]) -> list[PriceState]:
    new_rows: dict[int, list[HistoryRow]] = defaultdict(list)
    current: dict[int, asyncpg.Record] = {}
    for r in rows:
        current[r["id"]] = r
        if r["row_id"] is not None:
            new_rows[r["id"]].append(HistoryRow(r["row_id"], r["at_us"], r["price"]))
    return [
        PriceState(crypto_id, r["current_price"], r["last_updated"], new_rows[crypto_id])
        for crypto_id, r in current.items()
    ]


class LiveReadModel:
    def __init__(
        self,
        database_url: str,
        keep: int,
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
        self.store = TrackedSet(keep)
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
                rows = await conn.fetch(_PRICES, ids, change.since, timeout=self._query_timeout)
                states = _price_states(rows)
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
                _LOAD_PAGE, self.store.keep, after, PAGE, timeout=self._query_timeout
            )
            states += _states(rows)
            if len(rows) < PAGE:
                break
            after = rows[-1]["id"]
        self._emit(self.store.replace_all(states))

    async def _load(self, conn: asyncpg.Connection, ids: list[int]) -> None:
        rows = await conn.fetch(_LOAD_IDS, self.store.keep, ids, timeout=self._query_timeout)
        self._emit(self.store.upsert(_states(rows)))

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
