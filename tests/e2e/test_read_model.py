"""Reads come from each worker's memory, and still never lag a write: three replicas on
one database, a write on one, reads on all of them.

- the replica that wrote answers the new state at once;
- the others answer it within 100 ms (real time is the point here);
- with the listening connections killed (pg_terminate_backend) again and again while
  writes go on, no read on any replica ever answers older than the last write that
  had been answered before the read was sent.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
import pytest

from infrastructure.db.config import connect_kwargs
from infrastructure.read_model.live import APPLICATION_NAME
from tests.support.clock import wait_until
from tests.support.database import truncate_tables
from tests.support.server_process import ServerProcess, running_server, server_env

pytestmark = pytest.mark.integration

REPLICAS = 3
CONSISTENT_WITHIN = 0.100


async def listeners(database_url: str) -> list[int]:
    """The backend pids of the read models' listening connections."""
    conn = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1 || '%' "
            "AND datname = current_database()",
            APPLICATION_NAME,
        )
        return [r["pid"] for r in rows]
    finally:
        await conn.close()


async def terminate_listeners(database_url: str) -> int:
    conn = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name LIKE $1 || '%' AND datname = current_database()) AS t",
            APPLICATION_NAME,
        )
    finally:
        await conn.close()


async def price_on(client: httpx.AsyncClient, auth: dict[str, str]) -> float | None:
    r = await client.get("/crypto/BTC", headers=auth)
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return r.json()["current_price"]


@pytest.fixture
async def replicas(database_url, gecko, tmp_path):
    await truncate_tables(database_url)
    env = server_env(database_url, gecko.base_url, tmp_path, PRICE_POLLER_ENABLED="false")
    async with (
        running_server(env, tmp_path / "r0.log") as r0,
        running_server(env, tmp_path / "r1.log") as r1,
        running_server(env, tmp_path / "r2.log") as r2,
    ):
        servers = [r0, r1, r2]
        for server in servers:
            await server.wait_ready()
        await wait_until(lambda: all_listening(database_url), "three read models listening")
        yield servers


async def all_listening(database_url: str) -> bool:
    return len(await listeners(database_url)) == REPLICAS


async def test_a_write_on_one_replica_is_read_on_every_other_within_100_ms(
    replicas: list[ServerProcess], gecko, database_url
):
    auth = await replicas[0].register()
    writer, *others = [s.client() for s in replicas]
    try:
        lags: list[float] = []
        for round_ in range(5):
            gecko.set_price("bitcoin", 1000.0 + round_)
            if round_ == 0:
                r = await writer.post("/crypto", json={"symbol": "BTC"}, headers=auth)
                assert r.status_code == 201, r.text
            else:
                r = await writer.put("/crypto/BTC/refresh", headers=auth)
                assert r.status_code == 200, r.text
            written = time.monotonic()
            expected = 1000.0 + round_
            # The writer answers the new state at once: its own model has it.
            assert await price_on(writer, auth) == expected
            for other in others:
                while await price_on(other, auth) != expected:
                    assert time.monotonic() - written < 5, "another replica never saw the write"
                lags.append(time.monotonic() - written)
        assert max(lags) < CONSISTENT_WITHIN, f"lags: {[f'{x * 1000:.1f} ms' for x in lags]}"
    finally:
        for client in (writer, *others):
            await client.aclose()


async def test_no_stale_answer_while_the_listening_connections_are_killed(
    replicas: list[ServerProcess], gecko, database_url
):
    auth = await replicas[0].register()
    clients = [s.client() for s in replicas]
    gecko.set_price("bitcoin", 1.0)
    r = await clients[0].post("/crypto", json={"symbol": "BTC"}, headers=auth)
    assert r.status_code == 201, r.text
    answered: list[tuple[float, float]] = [(time.monotonic(), 1.0)]  # (when, price)
    stale: list[str] = []
    reads = 0
    done = asyncio.Event()

    def newest_answered_before(moment: float) -> float:
        return max(price for when, price in answered if when <= moment)

    async def read(client: httpx.AsyncClient) -> None:
        nonlocal reads
        while not done.is_set():
            sent = time.monotonic()
            price = await price_on(client, auth)
            reads += 1
            expected = newest_answered_before(sent)
            if price is None or price < expected:
                stale.append(f"{client.base_url}: {price} after {expected} was answered")

    readers = [asyncio.create_task(read(c)) for c in clients]
    try:
        for step in range(2, 22):
            gecko.set_price("bitcoin", float(step))
            writer = clients[step % REPLICAS]
            r = await writer.put("/crypto/BTC/refresh", headers=auth)
            assert r.status_code == 200, r.text
            answered.append((time.monotonic(), float(step)))
            if step % 4 == 0:
                await wait_until(lambda: all_listening(database_url), "listening again")
                assert await terminate_listeners(database_url) == REPLICAS
            await asyncio.sleep(0.05)
    finally:
        done.set()
        await asyncio.gather(*readers)
        for client in clients:
            await client.aclose()
    assert not stale, stale[:10]
    assert reads > 100
    # And they came back: listening again, serving from memory.
    await wait_until(lambda: all_listening(database_url), "the read models to listen again")
