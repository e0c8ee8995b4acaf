"""The upstream state the leader announces: its ``since``, and how a replica hears it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.events import UPSTREAM_STATUSES, UpstreamChanged, UpstreamState
from infrastructure.db.changes import parse, upstream_payload
from infrastructure.db.upstream import AnnouncedUpstream
from interfaces.http.presenters import event_json
from tests.support.clock import SetClock

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


async def test_since_stays_while_the_status_does_and_moves_when_it_changes():
    sent: list[str] = []

    async def notify(payload: str) -> None:
        sent.append(payload)

    clock = SetClock(T0)
    reporter = AnnouncedUpstream(notify, clock)
    cycles = ((0, "ok"), (1, "ok"), (2, "rate_limited"), (3, "rate_limited"), (4, "ok"))
    for minutes, status in cycles:
        clock.now = T0 + timedelta(minutes=minutes)
        await reporter.report(status)
    told = [(c.status, c.since.minute) for c in map(parse, sent)]
    # Told after every cycle (a replica that started meanwhile learns it), changed or not.
    assert told == [("ok", 0), ("ok", 0), ("rate_limited", 2), ("rate_limited", 2), ("ok", 4)]


async def test_a_new_leader_carries_on_the_since_its_process_heard():
    sent: list[str] = []

    async def notify(payload: str) -> None:
        sent.append(payload)

    heard = UpstreamState("rate_limited", T0)
    clock = SetClock(T0)
    clock.now = T0 + timedelta(minutes=5)
    reporter = AnnouncedUpstream(notify, clock, lambda: heard)
    await reporter.report("rate_limited")
    await reporter.report("ok")
    assert [(c.status, c.since) for c in map(parse, sent)] == [
        ("rate_limited", T0),
        ("ok", clock.now),
    ]


async def test_a_failed_announcement_is_not_raised():
    async def notify(payload: str) -> None:
        raise ConnectionError("database down")

    await AnnouncedUpstream(notify, SetClock(T0)).report("failing")


@pytest.mark.parametrize("status", UPSTREAM_STATUSES)
def test_every_status_is_rendered_as_the_stream_tells_it(status):
    # budget_spent included: the monthly budget sets it, this renders it.
    state = parse(upstream_payload(status, T0))
    assert event_json(UpstreamChanged(UpstreamState(state.status, state.since)), "usd") == (
        "upstream",
        {"status": status, "since": "2024-01-01T12:00:00Z"},
    )


def test_an_unknown_status_is_refused():
    with pytest.raises(ValueError):
        UpstreamState("sleepy", T0)
