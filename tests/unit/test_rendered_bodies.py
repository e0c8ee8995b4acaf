"""Kept JSON bodies: one per key, kept while the read model's version holds."""

from __future__ import annotations

import json
from dataclasses import replace

from domain.model import Ticker
from infrastructure.read_model.store import PriceState, TrackedSet
from interfaces.http.presenters import crypto_json
from interfaces.http.rendered import RenderedBodies
from tests.support.cryptos import at, crypto
from tests.unit.test_read_model_store import row, state

BTC = Ticker("BTC")


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
    tracked, bodies = TrackedSet(keep=5), RenderedBodies()
    tracked.upsert([state("BTC", 1, row(1, 0, 1.0))])

    def body() -> dict[str, object]:
        found = tracked.get(BTC)
        assert found is not None
        kept = bodies.body(
            ("crypto", BTC), tracked.version_of(found, BTC), lambda: crypto_json(found)
        )
        return json.loads(kept)

    assert body()["current_price"] == 1.0
    tracked.apply_prices([PriceState(1, 2.0, at(10), [row(2, 10, 2.0)])])
    assert body()["current_price"] == 2.0
    # The same crypto read through (a copy, with a price of its own) is never kept.
    through = replace(crypto("BTC", 3.0), id=1)
    kept = bodies.body(
        ("crypto", BTC), tracked.version_of(through, BTC), lambda: crypto_json(through)
    )
    assert json.loads(kept)["current_price"] == 3.0
    assert body()["current_price"] == 2.0
