"""The monthly budget of CoinGecko calls, counted in PostgreSQL.

Why PostgreSQL and not Redis, which holds the per-minute budget: the count must
outlive a restart of the whole deployment, and Redis here keeps nothing on disk
(Compose and the manifests run it without persistence), while losing a month's count
means overspending the key. The per-minute window can be lost without harm; this
cannot. A call costs one more round trip, which is nothing beside CoinGecko's; calls
are rare (a poll is one call per 100 coins).

One row a month; a call is counted by one ``INSERT ... ON CONFLICT DO UPDATE ...
WHERE calls < limit RETURNING``, so replicas counting at the same time never pass the
budget: the row lock serialises them, and a refused call counts nothing. Without the
database no call is counted, so none is made (StorageUnavailable): a write would fail
anyway, and an uncounted call is one the budget cannot see.
"""

from __future__ import annotations

from tortoise import BaseDBAsyncClient
from tortoise.connection import get_connection

from domain.errors import CallBudgetSpent
from domain.ports import Clock
from domain.rules import MonthlyBudgetLastsTheMonth, month_start, next_month_start
from infrastructure.db.config import CONNECTION
from infrastructure.metrics import observe_month_calls

_TAKE = """
INSERT INTO coingecko_month_calls AS m (month, calls) VALUES ($1, 1)
ON CONFLICT (month) DO UPDATE SET calls = m.calls + 1 WHERE m.calls < $2
RETURNING calls
"""
_USED = "SELECT calls FROM coingecko_month_calls WHERE month = $1"


def _db() -> BaseDBAsyncClient:
    return get_connection(CONNECTION)


class PostgresMonthlyCalls:
    """``domain.ports.MonthlyCalls`` on the ``coingecko_month_calls`` table, with
    ``clock`` telling the month."""

    def __init__(self, budget: int, clock: Clock, reserve: float = 0.1) -> None:
        if budget < 1:
            raise ValueError("budget must be at least 1 (0 means no monthly budget: none)")
        self.budget = budget
        self.reserve = reserve
        self._clock = clock

    async def take(self, *, polling: bool) -> None:
        now = self._clock()
        limit = (
            MonthlyBudgetLastsTheMonth.poll_share(self.budget, self.reserve)
            if polling
            else self.budget
        )
        rows = []
        if limit >= 1:  # execute_query would not fetch an INSERT's RETURNING rows
            rows = await _db().execute_query_dict(_TAKE, [month_start(now).date(), limit])
        if rows:
            observe_month_calls(rows[0]["calls"])
            return
        renews = next_month_start(now)
        share = "the share kept for polls of " if polling else ""
        raise CallBudgetSpent(
            f"{share}this month's budget of {self.budget} CoinGecko calls "
            f"(COINGECKO_CALLS_PER_MONTH) is spent; it renews at {renews:%Y-%m-%dT%H:%M:%SZ}",
            renews_at=renews,
            now=now,
        )

    async def used(self) -> int:
        _, rows = await _db().execute_query(_USED, [month_start(self._clock()).date()])
        calls = rows[0]["calls"] if rows else 0
        observe_month_calls(calls)
        return calls
