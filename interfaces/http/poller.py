"""The background price poller: one per deployment, every PRICE_POLL_INTERVAL_SECONDS.

Each worker runs this loop; the leader lock lets exactly one of them poll. A failing
cycle is logged and tried again at the next tick; the loop only ends when cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from application.poll_prices import PollResult
from domain.errors import UpstreamError, UpstreamRateLimited

log = logging.getLogger(__name__)


class LeaderLock(Protocol):
    async def acquire(self) -> bool: ...

    async def release(self) -> None: ...


async def poll_once(poll: Callable[[], Awaitable[PollResult]]) -> float:
    """Run one cycle; never raises (but cancellation). Returns how long to wait at least
    before the next one (the Retry-After of a 429, else 0)."""
    started = time.monotonic()
    try:
        result = await poll()
    except UpstreamRateLimited as error:
        log.warning("poll: %s", error.message)
        return error.retry_after
    except UpstreamError as error:
        log.warning("poll failed, will retry next cycle: %s", error.message)
    except Exception:
        log.exception("poll failed, will retry next cycle")
    else:
        log.info(
            "poll: %d of %d cryptos updated in %.2f s",
            result.updated,
            result.tracked,
            time.monotonic() - started,
        )
    return 0.0


async def run_poller(
    poll: Callable[[], Awaitable[PollResult]], lock: LeaderLock, interval: float
) -> None:
    """Poll every ``interval`` seconds while holding the leader lock; until cancelled."""
    try:
        while True:
            started = time.monotonic()
            pause = await poll_once(poll) if await lock.acquire() else 0.0
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(interval - elapsed, pause, 0.0))
    finally:
        await lock.release()
