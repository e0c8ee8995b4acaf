"""The read model's listener on the real PostgreSQL: a full load in pages, the
connection lost, a write that does not come back in time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from domain.events import UpstreamChanged, UpstreamState
from domain.model import PricePoint, PriceUpdate, QuoteCurrencies, Ticker
from infrastructure.db.changes import upstream_payload
from infrastructure.db.repositories import TortoiseCryptoRepository, notify_change
from infrastructure.read_model import live
from infrastructure.read_model.live import LiveReadModel
from tests.support.clock import wait_until
from tests.support.cryptos import at
from tests.support.database import insert_cryptos
from tests.support.read_models import live_read_model, terminate_listeners, went_live

pytestmark = pytest.mark.integration

KEEP = 100


@pytest.fixture
async def model(db: str) -> AsyncIterator[LiveReadModel]:
    async with live_read_model(db, KEEP, notify=notify_change, sync_timeout=0.5) as started:
        yield started


async def test_a_full_load_goes_page_by_page_and_misses_none(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "PAGE", 3)
    await insert_cryptos(db, *((f"C{i}", f"coin-{i}", f"Coin {i}") for i in range(10)))
    repo = TortoiseCryptoRepository()
    coins = await repo.tracked_coins()
    await repo.record_prices([PriceUpdate(c.crypto_id, {"usd": 5.0}, at(1)) for c in coins], KEEP)
    async with live_read_model(db, KEEP, notify=notify_change) as model:
        assert model.store.list() == await repo.list()
        for crypto in await repo.list():
            assert model.store.history(crypto.symbol, KEEP, "usd") == await repo.history(
                crypto.symbol, KEEP, "usd"
            )


async def test_a_currency_added_starts_empty_and_one_removed_stays_stored(db: str) -> None:
    """Restarts with another QUOTE_CURRENCIES: each model loads its own currencies."""
    btc = Ticker("BTC")
    repo = TortoiseCryptoRepository()
    await insert_cryptos(db, ("BTC", "bitcoin", "Bitcoin"))
    [coin] = await repo.tracked_coins()
    await repo.record_prices([PriceUpdate(coin.crypto_id, {"usd": 2.0}, at(1))], KEEP)

    usd_eur = QuoteCurrencies(("usd", "eur"))
    async with live_read_model(db, KEEP, usd_eur, notify=notify_change) as model:
        assert model.store.history(btc, KEEP, "eur") == []  # added: no price in older rows
        eur = model.store.stats(btc, KEEP, "eur")
        assert eur is not None and (eur.current_price, eur.records_count) == (None, 0)
        await repo.record_prices(
            [PriceUpdate(coin.crypto_id, {"usd": 3.0, "eur": 2.7}, at(2))], KEEP
        )
        await model.sync()  # the batch, as the model applies it
        assert model.store.history(btc, KEEP, "eur") == [PricePoint(2.7, at(2))]
        assert [p.price for p in model.store.history(btc, KEEP, "usd") or []] == [2.0, 3.0]

    eur_only = QuoteCurrencies(("eur",))
    async with live_read_model(db, KEEP, eur_only, notify=notify_change) as model:
        found = model.store.get(btc)
        assert found is not None and found.prices == {"eur": 2.7}
        assert model.store.history(btc, KEEP, "usd") == []  # not loaded
        assert model.store.history(btc, KEEP, "eur") == [PricePoint(2.7, at(2))]

    stored = await repo.history(btc, KEEP, "usd")  # still in the database
    assert stored is not None and [p.price for p in stored] == [2.0, 3.0]


async def test_a_lost_connection_stops_memory_reads_at_once_and_reloads(db: str) -> None:
    changes: list[bool] = []  # each change of ``live``, as the model tells them
    async with live_read_model(db, KEEP, notify=notify_change, observe=changes.append) as model:
        await insert_cryptos(db, ("BTC", "bitcoin", "Bitcoin"))
        # The set missed that insert (no notification); the reload finds it.
        assert await terminate_listeners(db) == 1
        # Told, not sampled: the reload may come back faster than any polling would see.
        await wait_until(lambda: False in changes, "the model to stop serving")
        await wait_until(lambda: changes[changes.index(False) :][-1], "the model to reload")
        assert changes[changes.index(False) - 1 :] == [True, False, True], changes
        found = model.store.get(Ticker("BTC"))
        assert found is not None and found.coin_id == "bitcoin"


async def test_a_write_that_does_not_come_back_in_time_makes_the_model_reload(
    db: str,
) -> None:
    async def lost(payload: str) -> None:  # the sync notification never arrives
        pass

    async with live_read_model(db, KEEP, notify=lost, sync_timeout=0.2) as model:
        await model.sync()
        assert not model.live  # rather than risk a stale answer
        await went_live(model)


async def test_the_upstream_state_is_an_event_when_it_changes_and_survives_a_reconnect(
    db: str,
) -> None:
    since = datetime(2024, 1, 1, 12, 3, tzinfo=UTC)
    published: list[object] = []
    async with live_read_model(
        db, KEEP, notify=notify_change, publish=lambda events: published.extend(events)
    ) as model:
        assert model.upstream is None  # nothing told yet
        await notify_change('{"kind": "upstream", "status": "sleepy", "since": "2024-01-01"}')
        for _ in range(3):  # the leader tells it after every cycle
            await notify_change(upstream_payload("rate_limited", since))
        await model.sync()  # every notification before it is applied
        state = UpstreamState("rate_limited", since)
        assert model.upstream == state
        assert published == [UpstreamChanged(state)]  # once, and the bad one ignored
        assert await terminate_listeners(db) == 1
        await wait_until(lambda: not model.live, "the model to stop serving")
        await went_live(model)
        assert model.upstream == state  # kept: nothing stores it to reload
