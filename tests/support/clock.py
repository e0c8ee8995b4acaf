"""Time for tests that must not depend on how fast the machine is.

``ManualClock`` stands in for ``time.monotonic`` and ``asyncio.sleep`` in the
components that take a ``clock`` (and a ``sleep``): it moves only when a test
advances it or when the code under test sleeps on it, so a 5 s pause costs no real
time and never ends early or late on a loaded machine.

``SetClock`` stands in for ``utc_now``: a datetime that moves only when a test sets or
moves its ``now``.

``HeldSleep`` is a sleep that does not return until the test releases it, for
tests that act while the code under test is asleep.

``wait_until`` waits for a condition where real time must pass (another process, a
real server), with a deadline generous enough for a loaded machine.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

T = TypeVar("T")


class ManualClock:
    """Seconds on a counter: ``clock()`` reads it, ``advance`` moves it, and ``sleep``
    records the nap, moves the counter by it and yields to the loop once."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class SetClock:
    """The time is the ``now`` the test last set."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class HeldSleep:
    """A sleep that records the nap, sets ``entered`` and waits for ``release()``
    (for ever if it never comes: cancel the sleeper then)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.entered = asyncio.Event()
        self._released = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.entered.set()
        await self._released.wait()

    def release(self) -> None:
        self._released.set()


async def wait_until(
    condition: Callable[[], T | Awaitable[T]], what: str, seconds: float = 60
) -> T:
    """Until ``condition()`` holds, checked every 50 ms, and what it gave then; fails
    naming ``what`` after ``seconds`` (a deadline far beyond what the wait takes on an
    idle machine)."""
    deadline = time.monotonic() + seconds
    while True:
        held = condition()
        value = await held if inspect.isawaitable(held) else held
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {seconds} s waiting for {what}")
        await asyncio.sleep(0.05)
