"""Kept JSON bodies: one per key, kept while the read model's version holds."""

from __future__ import annotations

import json
from dataclasses import replace

from domain.events import CryptoRemoved, PriceChanged, PriceEvent
from domain.model import QuoteCurrencies, Ticker
from infrastructure.read_model.store import CryptoState, HistoryRow, PriceState, TrackedSet
from interfaces.http import price_stream
from interfaces.http.presenters import crypto_json
from interfaces.http.rendered import RenderedBodies
from tests.support.cryptos import at, crypto
from tests.unit.test_read_model_store import micros

BTC = Ticker("BTC")
USD_EUR = QuoteCurrencies(("usd", "eur"))


def row(row_id: int, seconds: int, usd: float, eur: float | None = None) -> HistoryRow:
    prices = {"usd": usd} if eur is None else {"usd": usd, "eur": eur}
    return HistoryRow(row_id, micros(at(seconds)), prices)


def observed(crypto_id: int, seconds: int, usd: float, eur: float | None = None) -> CryptoState:
    """BTC, stored with one observation (in usd, and in eur when given)."""
    first = row(crypto_id, seconds, usd, eur)
    stored = replace(crypto("BTC"), prices=first.prices, last_updated=at(seconds), id=crypto_id)
    return CryptoState.of(stored, [first])


class Renders:
    """A render function that counts its calls."""

    def __init__(self, content: object) -> None:
        self.content, self.calls = content, 0

    def __call__(self) -> object:
        self.calls += 1
        return self.content


def test_a_body_is_rendered_once_per_version():
    bodies, render = RenderedBodies(), Renders({"a": 1})
    assert bodies.body("k", 1, render) == b'{"a":1}'
    assert bodies.body("k", 1, render) == b'{"a":1}'
    assert render.calls == 1

    render.content = {"a": 2}
    assert bodies.body("k", 2, render) == b'{"a":2}'
    assert bodies.body("k", 1, render) == b'{"a":2}'  # an old version is not kept beside
    assert render.calls == 3


def test_a_value_without_a_version_is_rendered_every_time():
    bodies, render = RenderedBodies(), Renders([])
    bodies.body("k", None, render)
    bodies.body("k", None, render)
    assert render.calls == 2


def test_a_price_the_read_model_applies_changes_the_kept_body():
    tracked, bodies = TrackedSet(keep=5, currencies=USD_EUR), RenderedBodies()
    tracked.upsert([observed(1, 0, usd=1.0, eur=0.9)])

    def body(currency: str = "usd") -> dict[str, object]:
        found = tracked.get(BTC)
        assert found is not None
        kept = bodies.body(
            ("crypto", BTC, currency),
            tracked.version_of(found, BTC),
            lambda: crypto_json(found, currency),
        )
        return json.loads(kept)

    assert body()["current_price"] == 1.0
    tracked.apply_prices([PriceState(1, {"usd": 2.0, "eur": 1.8}, at(10), [row(2, 10, 2.0, 1.8)])])
    assert body()["current_price"] == 2.0
    # The same crypto read through (a copy, with a price of its own) is never kept.
    through = replace(crypto("BTC", 3.0), id=1)
    kept = bodies.body(
        ("crypto", BTC, "usd"),
        tracked.version_of(through, BTC),
        lambda: crypto_json(through, "usd"),
    )
    assert json.loads(kept)["current_price"] == 3.0
    assert body()["current_price"] == 2.0


def test_one_version_covers_every_currency_so_the_key_names_the_currency():
    tracked, bodies = TrackedSet(keep=5, currencies=USD_EUR), RenderedBodies()
    tracked.upsert([observed(1, 0, usd=1.0, eur=0.9)])
    found = tracked.get(BTC)
    assert found is not None
    version = tracked.version_of(found, BTC)
    usd = bodies.body(("crypto", BTC, "usd"), version, lambda: crypto_json(found, "usd"))
    eur = bodies.body(("crypto", BTC, "eur"), version, lambda: crypto_json(found, "eur"))
    assert (json.loads(usd)["current_price"], json.loads(eur)["current_price"]) == (1.0, 0.9)
    # Both kept at once: reads alternating between the two render nothing again.
    again = Renders({})
    assert bodies.body(("crypto", BTC, "usd"), version, again) == usd
    assert bodies.body(("crypto", BTC, "eur"), version, again) == eur
    assert again.calls == 0


def test_a_crypto_with_no_price_in_a_currency_renders_null():
    # Stored before eur was configured: the latest observation has usd only.
    tracked = TrackedSet(keep=5, currencies=USD_EUR)
    tracked.upsert([observed(1, 0, usd=1.0)])
    found = tracked.get(BTC)
    assert found is not None
    assert crypto_json(found, "eur")["current_price"] is None
    assert crypto_json(found, "usd")["current_price"] == 1.0


def test_a_stream_batch_is_encoded_once_per_currency_without_the_prices_it_lacks(monkeypatch):
    encoded: list[str] = []
    real = price_stream.event_json

    def counted(event: PriceEvent, currency: str) -> tuple[str, dict[str, object]] | None:
        encoded.append(currency)
        return real(event, currency)

    monkeypatch.setattr(price_stream, "event_json", counted)
    render = price_stream._Rendered()
    batch = (
        PriceChanged(BTC, {"usd": 2.0, "eur": 1.8}, at(10)),
        PriceChanged(Ticker("ETH"), {"usd": 3.0}, at(10)),  # none in eur
        CryptoRemoved(Ticker("DOGE")),
    )
    usd = render(batch, "usd")
    assert render(batch, "usd") is usd and render(batch, "eur") is render(batch, "eur")
    assert encoded == ["usd"] * 3 + ["eur"] * 3  # once per currency, for every stream
    eur = render(batch, "eur").decode()
    assert eur == (
        'event: price\ndata: {"symbol":"BTC","current_price":1.8,'
        '"last_updated":"2024-01-01T12:00:10Z"}\n\n'
        'event: removed\ndata: {"symbol":"DOGE"}\n\n'
    )
    assert usd.decode().count("event: price") == 2
    assert render((PriceChanged(Ticker("ETH"), {"usd": 3.0}, at(20)),), "eur") == b""
