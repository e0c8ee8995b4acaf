"""The price rules of domain.rules, which the read model, the unit-test fake and (in
SQL) PostgreSQL all follow; the contract suite checks that the three agree."""

from __future__ import annotations

import pytest

from domain.model import PriceUpdate
from domain.rules import CurrentPriceNeverMovesBack, HistoryKeepsTheNewest, latest_update_per_crypto
from tests.support.cryptos import at


def test_the_current_price_moves_to_the_same_moment_or_later_only():
    assert CurrentPriceNeverMovesBack(at(10), at(9)).is_broken()
    assert not CurrentPriceNeverMovesBack(at(10), at(10)).is_broken()
    assert not CurrentPriceNeverMovesBack(at(10), at(11)).is_broken()


def test_the_history_orders_by_time_then_row_id():
    rows = [(at(2), 5), (at(1), 9), (at(2), 3), (at(1), 1)]
    ordered = sorted(rows, key=lambda r: HistoryKeepsTheNewest.order(*r))
    assert ordered == [(at(1), 1), (at(1), 9), (at(2), 3), (at(2), 5)]


@pytest.mark.parametrize(("held", "surplus"), [(0, 0), (2, 0), (3, 0), (4, 1), (10, 7)])
def test_the_history_lets_the_oldest_beyond_keep_go(held: int, surplus: int):
    assert HistoryKeepsTheNewest(3).surplus(held) == surplus


def test_a_history_keeps_at_least_one_row():
    with pytest.raises(ValueError, match="keep must be at least 1"):
        HistoryKeepsTheNewest(0)


def test_a_batch_keeps_the_latest_update_of_each_crypto_in_id_order():
    first_tie, second_tie = PriceUpdate(1, 3.0, at(5)), PriceUpdate(1, 4.0, at(5))
    updates = [
        PriceUpdate(2, 1.0, at(9)),
        PriceUpdate(1, 2.0, at(7)),
        first_tie,
        second_tie,  # the later of one moment wins
        PriceUpdate(2, 5.0, at(3)),  # older than the one before: ignored
    ]
    assert latest_update_per_crypto(updates) == [PriceUpdate(1, 2.0, at(7)), updates[0]]
    assert latest_update_per_crypto([first_tie, second_tie]) == [second_tie]
    assert latest_update_per_crypto([]) == []
