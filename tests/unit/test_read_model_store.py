"""The read model's tracked set: the database's history rules, applied in memory, and
the events each change makes."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from domain.events import CryptoAdded, CryptoRemoved, PriceChanged
from domain.model import PricePoint, PriceStats, QuoteCurrencies, Ticker
from infrastructure.read_model.store import (
    EPOCH,
    CryptoState,
    HistoryRow,
    PriceState,
    TrackedSet,
    moment,
)
from tests.support.cryptos import at, crypto

BTC, ETH = Ticker("BTC"), Ticker("ETH")
USD = QuoteCurrencies(("usd",))


def micros(when: datetime) -> int:
    """Microseconds since the Unix epoch, exactly, as the listener's queries give them."""
    delta = when - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def stored(symbol: str, crypto_id: int, price: float = 100.0, seconds: int = 0):
    return replace(crypto(symbol, price, at(seconds)), id=crypto_id)


def row(row_id: int, seconds: int, price: float) -> HistoryRow:
    return HistoryRow(row_id, micros(at(seconds)), {"usd": price})


def state(symbol: str, crypto_id: int, *rows: HistoryRow) -> CryptoState:
    last = rows[-1] if rows else row(0, 0, 100.0)
    return CryptoState.of(stored(symbol, crypto_id, last.prices["usd"], 0), rows)


def prices(tracked: TrackedSet, symbol: Ticker = BTC) -> list[float]:
    points = tracked.history(symbol, tracked.keep, "usd")
    assert points is not None
    return [p.price for p in points]


def test_micros_and_moment_are_exact_inverses():
    for seconds in (0, 1, 86_399, 10**9):
        when = at(seconds).replace(microsecond=123_457)
        assert moment(micros(when)) == when


def test_rows_are_kept_in_time_then_id_order_and_trimmed_to_the_newest():
    tracked = TrackedSet(keep=3, currencies=USD)
    tracked.upsert([state("BTC", 1, row(10, 10, 1.0))])
    assert tracked.apply_prices([PriceState(1, {"usd": 3.0}, at(30), [row(30, 30, 3.0)])])
    # A slower commit of an older time arrives later: it goes in its place.
    tracked.apply_prices([PriceState(1, {"usd": 3.0}, at(30), [row(20, 20, 2.0)])])
    assert prices(tracked) == [1.0, 2.0, 3.0]
    # Same second, ids decide; then the oldest goes.
    tracked.apply_prices(
        [PriceState(1, {"usd": 3.0}, at(30), [row(31, 30, 3.5), row(29, 30, 2.5)])]
    )
    assert prices(tracked) == [2.5, 3.0, 3.5]
    assert tracked.history(BTC, 2, "usd") == [
        PricePoint(3.0, at(30)),
        PricePoint(3.5, at(30)),
    ]


def test_applying_rows_again_changes_nothing_and_tells_nothing():
    tracked = TrackedSet(keep=5, currencies=USD)
    tracked.upsert([state("BTC", 1, row(1, 0, 1.0))])
    batch = [PriceState(1, {"usd": 2.0}, at(10), [row(2, 10, 2.0)])]
    assert tracked.apply_prices(batch) == [PriceChanged(BTC, {"usd": 2.0}, at(10))]
    before = tracked.history(BTC, 5, "usd")
    assert tracked.apply_prices(batch) == []
    assert tracked.history(BTC, 5, "usd") is before  # unchanged: the same object


def test_a_smaller_keep_of_a_batch_trims_to_it():
    tracked = TrackedSet(keep=5, currencies=USD)
    tracked.upsert([state("BTC", 1, *(row(i, i, float(i)) for i in range(1, 6)))])
    tracked.apply_prices([PriceState(1, {"usd": 6.0}, at(6), [row(6, 6, 6.0)])], keep=2)
    assert prices(tracked) == [5.0, 6.0]


def test_reads_hand_out_the_same_objects_until_a_change():
    tracked = TrackedSet(keep=5, currencies=USD)
    tracked.upsert([state("BTC", 1, row(1, 0, 1.0)), state("ETH", 2, row(2, 0, 5.0))])
    listed, history, stats = (
        tracked.list(),
        tracked.history(BTC, 5, "usd"),
        tracked.stats(BTC, None, "usd"),
    )
    assert [c.symbol for c in listed] == [BTC, ETH]
    assert tracked.list() is listed
    assert tracked.history(BTC, 5, "usd") is history
    assert tracked.stats(BTC, None, "usd") is stats
    tracked.apply_prices([PriceState(1, {"usd": 2.0}, at(10), [row(3, 10, 2.0)])])
    assert tracked.list() is not listed
    assert tracked.history(BTC, 5, "usd") is not history
    assert tracked.stats(BTC, None, "usd") == PriceStats.of(2.0, [1.0, 2.0])
    assert tracked.stats(ETH, None, "usd") is not None


def test_events_of_adds_removals_and_a_full_reload():
    tracked = TrackedSet(keep=5, currencies=USD)
    btc, eth = state("BTC", 1, row(1, 0, 1.0)), state("ETH", 2, row(2, 0, 5.0))
    assert tracked.upsert([btc, eth]) == [CryptoAdded(btc.crypto), CryptoAdded(eth.crypto)]
    assert tracked.remove([2, 99]) == [CryptoRemoved(ETH)]
    assert tracked.get(ETH) is None and tracked.history(ETH, 5, "usd") is None

    # While the listener was down: BTC's price moved, ETH was added again (a new id),
    # and DOGE came and went. The reload tells the difference, removals first.
    moved = CryptoState.of(replace(btc.crypto, prices={"usd": 2.0}, last_updated=at(10)), [])
    eth_again = state("ETH", 3, row(4, 0, 6.0))
    tracked.upsert([state("DOGE", 4)])
    events = tracked.replace_all([moved, eth_again])
    assert events == [
        CryptoRemoved(Ticker("DOGE")),
        PriceChanged(BTC, {"usd": 2.0}, at(10)),
        CryptoAdded(eth_again.crypto),
    ]
    assert tracked.ids() == [1, 3]


def test_a_symbol_added_again_under_a_new_id_replaces_the_old_one():
    tracked = TrackedSet(keep=5, currencies=USD)
    first, second = state("BTC", 1, row(1, 0, 1.0)), state("BTC", 7, row(9, 0, 9.0))
    tracked.upsert([first])
    assert tracked.upsert([second]) == [CryptoRemoved(BTC), CryptoAdded(second.crypto)]
    assert tracked.ids() == [7]
    assert prices(tracked) == [9.0]


def test_prices_of_cryptos_not_held_are_ignored():
    tracked = TrackedSet(keep=5, currencies=USD)
    assert tracked.apply_prices([PriceState(5, {"usd": 1.0}, at(0), [row(1, 0, 1.0)])]) == []
    assert len(tracked) == 0


def test_keep_below_one_is_refused():
    with pytest.raises(ValueError):
        TrackedSet(keep=0, currencies=USD)


def test_a_crypto_loaded_with_more_rows_than_keep_holds_the_newest():
    tracked = TrackedSet(keep=3, currencies=USD)
    tracked.upsert([state("BTC", 1, *(row(i, i, float(i)) for i in range(1, 6)))])
    assert prices(tracked) == [3.0, 4.0, 5.0]


def test_a_current_price_of_an_older_moment_is_not_applied_but_its_row_is():
    tracked = TrackedSet(keep=5, currencies=USD)
    tracked.upsert([CryptoState.of(stored("BTC", 1, 1.0, seconds=10), [row(1, 10, 1.0)])])
    assert tracked.apply_prices([PriceState(1, {"usd": 0.5}, at(5), [row(2, 5, 0.5)])]) == []
    found = tracked.get(BTC)
    assert found is not None and (found.price_in("usd"), found.last_updated) == (1.0, at(10))
    assert prices(tracked) == [0.5, 1.0]


def versions(tracked: TrackedSet, symbol: Ticker = BTC) -> tuple[int | None, ...]:
    """The versions of the list and of what is held of ``symbol``, as read now."""
    crypto, history, stats = (
        tracked.get(symbol),
        tracked.history(symbol, 5, "usd"),
        tracked.stats(symbol, None, "usd"),
    )
    return (
        tracked.version_of(tracked.list()),
        tracked.version_of(crypto, symbol),
        tracked.version_of(history, symbol),
        tracked.version_of(stats, symbol),
    )


def test_every_change_gives_the_crypto_and_the_list_new_versions():
    tracked = TrackedSet(keep=5, currencies=USD)
    tracked.upsert([state("BTC", 1, row(1, 0, 1.0))])
    added = versions(tracked)
    assert None not in added
    _, btc_version, *others = added
    assert others == [btc_version, btc_version]  # one version for all that is held of it
    assert versions(tracked) == added  # reading changes nothing

    tracked.apply_prices([PriceState(1, {"usd": 2.0}, at(10), [row(2, 10, 2.0)])])  # a new price
    priced = versions(tracked)
    assert all(new > old for new, old in zip(priced, added, strict=True))  # type: ignore[operator]

    tracked.apply_prices([PriceState(1, {"usd": 2.0}, at(10), [row(2, 10, 2.0)])])  # the same again
    assert versions(tracked) == priced

    tracked.apply_prices([PriceState(1, {"usd": 2.0}, at(10), [])], keep=1)  # a trim only
    trimmed = versions(tracked)
    assert trimmed[0] == priced[0]  # the listed crypto is the same
    assert trimmed[1] is not None and priced[1] is not None and trimmed[1] > priced[1]

    tracked.upsert([state("ETH", 2, row(3, 0, 5.0))])  # another crypto added
    assert versions(tracked)[0] != trimmed[0] and versions(tracked)[1:] == trimmed[1:]

    tracked.remove([2])  # and deleted
    assert versions(tracked)[0] not in (trimmed[0], None)


def test_values_not_handed_out_by_the_set_have_no_version():
    tracked = TrackedSet(keep=5, currencies=USD)
    tracked.upsert([state("BTC", 1, row(1, 0, 1.0), row(2, 1, 2.0))])
    crypto, listed = tracked.get(BTC), tracked.list()
    # Equal values read through to the database are other objects: no version.
    assert tracked.version_of(replace(crypto), BTC) is None  # type: ignore[arg-type]
    assert tracked.version_of(list(listed)) is None
    assert tracked.version_of(tracked.history(BTC, 5, "usd"), ETH) is None
    assert tracked.version_of(PriceStats.of(1.0, [1.0]), BTC) is None
    # A shorter history or its stats are made on the spot: not kept, no version.
    assert tracked.version_of(tracked.history(BTC, 1, "usd"), BTC) is None
    assert tracked.version_of(tracked.stats(BTC, 1, "usd"), BTC) is None

    tracked.remove([1])  # what was handed out before has none any more
    assert tracked.version_of(crypto, BTC) is None
    assert tracked.version_of(listed) is None


# --- quote currencies -------------------------------------------------------------------

USD_EUR = QuoteCurrencies(("usd", "eur"))


def observation(row_id: int, seconds: int, **prices: float) -> HistoryRow:
    return HistoryRow(row_id, micros(at(seconds)), prices)


def held(crypto_id: int, *rows: HistoryRow, **now: float) -> CryptoState:
    return CryptoState.of(replace(crypto("BTC", prices=now), id=crypto_id), rows)


def in_currency(tracked: TrackedSet, currency: str, limit: int = 100) -> list[tuple[float, int]]:
    points = tracked.history(BTC, limit, currency)
    assert points is not None
    return [(p.price, int((p.timestamp - at(0)).total_seconds())) for p in points]


def test_each_configured_currency_has_its_history_and_gaps_are_left_out():
    tracked = TrackedSet(keep=5, currencies=USD_EUR)
    # eur configured after the first observation; the third had no usable eur price.
    tracked.upsert([held(1, observation(1, 0, usd=1.0), eur=0.9, usd=2.0)])
    tracked.apply_prices(
        [
            PriceState(
                1,
                {"usd": 3.0},
                at(2),
                [observation(2, 1, usd=2.0, eur=1.8), observation(3, 2, usd=3.0)],
            )
        ]
    )

    assert in_currency(tracked, "usd") == [(1.0, 0), (2.0, 1), (3.0, 2)]
    assert in_currency(tracked, "eur") == [(1.8, 1)]
    # limit counts observations: of the newest two, one has an eur price; of the newest, none
    assert in_currency(tracked, "eur", 2) == [(1.8, 1)]
    assert in_currency(tracked, "eur", 1) == []
    assert in_currency(tracked, "usd", 2) == [(2.0, 1), (3.0, 2)]
    found = tracked.get(BTC)
    assert found is not None and found.prices == {"usd": 3.0}
    assert found.price_in("eur") is None
    eur = tracked.stats(BTC, None, "eur")
    assert eur == PriceStats.of(None, [1.8])
    assert tracked.stats(BTC, 1, "eur") == PriceStats.of(None, [])
    assert tracked.stats(BTC, None, "usd") == PriceStats.of(3.0, [1.0, 2.0, 3.0])


def test_only_configured_currencies_are_held_and_told():
    tracked = TrackedSet(keep=5, currencies=USD_EUR)
    added = tracked.upsert([held(1, observation(1, 0, usd=1.0, gbp=0.8), usd=1.0, gbp=0.8)])
    assert added == [CryptoAdded(replace(crypto("BTC", 1.0), id=1))]
    assert tracked.history(BTC, 5, "gbp") == []  # not configured: none kept
    assert in_currency(tracked, "eur") == []  # configured, never stored

    events = tracked.apply_prices(
        [PriceState(1, {"usd": 2.0, "eur": 1.9, "gbp": 1.7}, at(1), [observation(2, 1, usd=2.0)])]
    )
    assert events == [PriceChanged(BTC, {"usd": 2.0, "eur": 1.9}, at(1))]
    listed = tracked.list()
    assert [c.prices for c in listed] == [{"usd": 2.0, "eur": 1.9}]


def test_a_trim_drops_the_oldest_observation_in_every_currency():
    tracked = TrackedSet(keep=2, currencies=USD_EUR)
    rows = [observation(i, i, usd=float(i), eur=i / 2) for i in range(1, 4)]
    tracked.upsert([held(1, *rows, usd=3.0, eur=1.5)])
    assert in_currency(tracked, "usd") == [(2.0, 2), (3.0, 3)]
    assert in_currency(tracked, "eur") == [(1.0, 2), (1.5, 3)]

    tracked.apply_prices([PriceState(1, {"usd": 4.0}, at(4), [observation(4, 4, usd=4.0)])])
    assert in_currency(tracked, "usd") == [(3.0, 3), (4.0, 4)]
    assert in_currency(tracked, "eur") == [(1.5, 3)]


def test_every_currencys_history_and_stats_have_the_cryptos_version():
    tracked = TrackedSet(keep=5, currencies=USD_EUR, materialised=10)
    tracked.upsert([held(1, observation(1, 0, usd=1.0, eur=0.9), usd=1.0, eur=0.9)])
    usd, eur = tracked.history(BTC, 5, "usd"), tracked.history(BTC, 5, "eur")
    usd_stats, eur_stats = tracked.stats(BTC, None, "usd"), tracked.stats(BTC, None, "eur")
    version = tracked.version_of(tracked.get(BTC), BTC)

    assert usd is not eur and usd_stats is not eur_stats
    assert tracked.history(BTC, 5, "eur") is eur and tracked.stats(BTC, None, "eur") is eur_stats
    assert version is not None
    for value in (usd, eur, usd_stats, eur_stats):
        assert tracked.version_of(value, BTC) == version

    tracked.apply_prices([PriceState(1, {"usd": 2.0}, at(1), [observation(2, 1, usd=2.0)])])
    for value in (usd, eur, usd_stats, eur_stats):
        assert tracked.version_of(value, BTC) is None
    assert tracked.history(BTC, 5, "eur") is not eur


def test_materialised_histories_are_kept_per_crypto_and_currency():
    tracked = TrackedSet(keep=5, currencies=USD_EUR, materialised=1)
    tracked.upsert([held(1, observation(1, 0, usd=1.0, eur=0.9), usd=1.0, eur=0.9)])
    usd = tracked.history(BTC, 5, "usd")
    assert tracked.version_of(usd, BTC) is not None
    eur = tracked.history(BTC, 5, "eur")  # takes the one place
    assert tracked.version_of(usd, BTC) is None and tracked.version_of(eur, BTC) is not None
    assert tracked.history(BTC, 5, "usd") == usd
