"""The price rules of domain.rules, which the read model, the unit-test fake and (in
SQL) PostgreSQL all follow; the contract suite checks that the three agree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.model import PriceUpdate
from domain.rules import (
    MAX_CLOCK_LEAD,
    CurrentPriceNeverMovesBack,
    HistoryKeepsTheNewest,
    MonthlyBudgetLastsTheMonth,
    OnlyNewerPricesAreRecorded,
    PriceMoment,
    latest_update_per_crypto,
    month_start,
    next_month_start,
)
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


DAY = 86_400.0
NOVEMBER = 30 * DAY


def pace(budget=10_000, used=0, calls_per_poll=1, seconds_left=NOVEMBER, floor=30.0):
    return MonthlyBudgetLastsTheMonth(budget, used, calls_per_poll, seconds_left, floor)


def test_the_month_is_the_calendar_month_in_utc():
    # 23:30 on 31 December in New York is already January in UTC
    new_york = timezone(timedelta(hours=-5))
    late = datetime(2024, 12, 31, 23, 30, tzinfo=new_york)
    assert month_start(late) == datetime(2025, 1, 1, tzinfo=UTC)
    assert next_month_start(late) == datetime(2025, 2, 1, tzinfo=UTC)
    assert next_month_start(datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)) == datetime(
        2025, 1, 1, tzinfo=UTC
    )
    assert month_start(datetime(2024, 2, 29, 12, tzinfo=UTC)) == datetime(2024, 2, 1, tzinfo=UTC)


def test_polls_may_spend_all_but_a_tenth_of_the_budget():
    assert MonthlyBudgetLastsTheMonth.poll_share(10_000) == 9_000
    assert MonthlyBudgetLastsTheMonth.poll_share(15) == 13  # the reserve rounds up
    assert MonthlyBudgetLastsTheMonth.poll_share(1) == 0


def test_a_demo_key_over_a_whole_month_polls_every_288_s():
    # 9,000 calls for polls over 30 days, one call a poll (up to 100 coins)
    assert pace().interval() == pytest.approx(NOVEMBER / 9_000) == 288.0


def test_each_batch_of_coins_a_poll_stretches_the_interval():
    # 250 coins: three calls a poll, 3,000 polls in the month
    assert pace(calls_per_poll=3).interval() == pytest.approx(864.0)


def test_the_calls_already_made_count_and_the_interval_recomputes():
    # half the poll share spent with half the month left: the same pace
    assert pace(used=4_500, seconds_left=NOVEMBER / 2).interval() == pytest.approx(288.0)
    # spent faster (adds, refreshes, a shorter interval before): slower from now on
    assert pace(used=8_100, seconds_left=NOVEMBER / 2).interval() == pytest.approx(1_440.0)


def test_a_budget_that_allows_more_keeps_the_configured_interval():
    assert pace(budget=1_000_000).interval() == 30.0
    assert pace(calls_per_poll=0).interval() == 30.0  # nothing tracked: a poll costs nothing


def test_when_only_the_reserve_is_left_the_poller_waits_for_the_new_month():
    assert pace(used=9_000, seconds_left=3 * DAY).polls_left() == 0
    assert pace(used=9_000, seconds_left=3 * DAY).interval() == 3 * DAY
    assert pace(used=8_999, calls_per_poll=2, seconds_left=DAY).interval() == DAY
    assert pace(used=10_000, seconds_left=10.0).interval() == 30.0  # never below the floor


def test_a_monthly_budget_is_at_least_one_call():
    with pytest.raises(ValueError, match="budget"):
        pace(budget=0)


def test_only_a_price_newer_than_the_current_one_is_recorded():
    assert OnlyNewerPricesAreRecorded(at(10), at(9)).is_broken()
    assert OnlyNewerPricesAreRecorded(at(10), at(10)).is_broken()  # the same observation again
    assert not OnlyNewerPricesAreRecorded(at(10), at(11)).is_broken()


def test_a_price_is_stored_under_coingeckos_time_of_it_to_the_second():
    quoted = at(-40) + timedelta(milliseconds=736)
    assert PriceMoment(quoted, fetched_at=at(0)).moment() == at(-40)


def test_coingeckos_clock_may_run_a_little_ahead_of_ours():
    assert PriceMoment(at(0) + MAX_CLOCK_LEAD, fetched_at=at(0)).moment() == at(0) + MAX_CLOCK_LEAD


@pytest.mark.parametrize(
    "quoted",
    [
        None,  # CoinGecko sent no usable time
        datetime(1970, 1, 1, tzinfo=UTC),  # last_updated_at 0
        datetime(2009, 1, 2, 23, 59, 59, tzinfo=UTC),  # before any crypto had a price
        at(0) + MAX_CLOCK_LEAD + timedelta(seconds=1),  # it would shut out the true prices
        datetime(9999, 1, 1, tzinfo=UTC),
    ],
)
def test_a_missing_or_absurd_time_gives_way_to_the_fetch_time(quoted):
    moment = PriceMoment(quoted, fetched_at=at(0))
    assert not moment.is_believable()
    assert moment.moment() == at(0)
