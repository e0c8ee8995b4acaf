"""Time for code on the ``limits`` library, which stamps its windows with time.time()
itself (in MemoryStorage and in its redis-py storage): ``follow`` makes both read a
test's clock (a ManualClock, say) instead, for the rest of the test."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import limits.aio.storage.memory
import limits.aio.storage.redis.redispy
import pytest


def follow(monkeypatch: pytest.MonkeyPatch, clock: Callable[[], float]) -> None:
    fake_time = SimpleNamespace(time=clock)
    monkeypatch.setattr(limits.aio.storage.memory, "time", fake_time)
    monkeypatch.setattr(limits.aio.storage.redis.redispy, "time", fake_time)
