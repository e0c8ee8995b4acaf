"""RedisGuard's circuit breaker on a manual clock: which calls reach Redis is counted,
not timed. The commands stand in for Redis (they never use the client they get), so
no Redis is needed; tests/integration covers the guard on real, stopped and hung ones."""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from infrastructure.redis_guard import SKIPPED, RedisGuard
from tests.support.clock import ManualClock

LOGGER = "tests.redis_guard"
RETRY_AFTER = 5.0


class Command:
    """A Redis command that counts its runs and answers "ok", fails, or waits until
    released (``hold``)."""

    def __init__(self) -> None:
        self.runs = 0
        self.failing = False
        self.held = asyncio.Event()
        self.held.set()
        self.entered = asyncio.Event()

    def hold(self) -> None:
        self.held.clear()
        self.entered.clear()

    async def __call__(self, _client: object) -> str:
        self.runs += 1
        self.entered.set()
        await self.held.wait()
        if self.failing:
            raise RedisConnectionError("Connection refused")
        return "ok"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def guard(clock: ManualClock):
    made = RedisGuard(
        "redis://127.0.0.1:6379/0",
        logger=logging.getLogger(LOGGER),
        meanwhile="the test goes without",
        back="the test has it again",
        retry_after_seconds=RETRY_AFTER,
        clock=clock,
    )
    yield made
    await made.close()


@pytest.fixture(autouse=True)
def capture_guard_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)


def logged(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


async def an_outage(guard: RedisGuard, command: Command) -> None:
    command.failing = True
    assert await guard.run(command) is SKIPPED
    assert not guard.available


async def test_after_a_failure_redis_is_skipped_until_the_pause_is_over(guard, clock, caplog):
    command = Command()
    await an_outage(guard, command)

    clock.advance(RETRY_AFTER - 0.01)
    for _ in range(10):
        assert await guard.run(command) is SKIPPED
    assert command.runs == 1  # not tried again within the pause

    command.failing = False
    clock.advance(0.01)
    assert await guard.run(command) == "ok"
    assert command.runs == 2
    assert guard.available
    [warning] = logged(caplog, logging.WARNING)
    assert "is unavailable (ConnectionError: Connection refused)" in warning
    assert "retried every 5 s" in warning
    assert len([line for line in logged(caplog, logging.INFO) if "is back" in line]) == 1


async def test_once_the_pause_is_over_one_caller_probes_and_the_others_skip(guard, clock):
    command = Command()
    await an_outage(guard, command)
    clock.advance(RETRY_AFTER)

    command.failing = False
    command.hold()
    probe = asyncio.create_task(guard.run(command))
    await command.entered.wait()
    others = [await guard.run(command) for _ in range(10)]  # while the probe waits for Redis

    assert others == [SKIPPED] * 10
    assert command.runs == 2  # the failure, then the probe only
    command.held.set()
    assert await probe == "ok"
    assert guard.available
    assert await guard.run(command) == "ok"  # closed: every call goes to Redis again
    assert command.runs == 3


async def test_a_failed_probe_starts_another_pause_without_another_warning(guard, clock, caplog):
    command = Command()
    await an_outage(guard, command)
    clock.advance(RETRY_AFTER)
    assert await guard.run(command) is SKIPPED  # the probe, failing
    assert command.runs == 2

    clock.advance(RETRY_AFTER - 0.01)
    assert await guard.run(command) is SKIPPED
    assert command.runs == 2
    clock.advance(0.01)
    assert await guard.run(command) is SKIPPED
    assert command.runs == 3
    assert len(logged(caplog, logging.WARNING)) == 1


async def test_a_probe_call_ignores_the_pause(guard):
    command = Command()
    await an_outage(guard, command)
    command.failing = False

    assert await guard.run(command, probe=True) == "ok"
    assert command.runs == 2
    assert guard.available


async def test_a_command_that_hangs_costs_the_timeout_then_is_skipped(clock, caplog):
    guard = RedisGuard(
        "redis://127.0.0.1:6379/0",
        logger=logging.getLogger(LOGGER),
        meanwhile="the test goes without",
        back="the test has it again",
        timeout_seconds=0.05,
        clock=clock,
    )
    command = Command()
    command.hold()  # never released: only the guard's timeout ends it
    try:
        assert await asyncio.wait_for(guard.run(command), timeout=30) is SKIPPED
        assert await guard.run(command) is SKIPPED
    finally:
        await guard.close()
    assert command.runs == 1
    [warning] = logged(caplog, logging.WARNING)
    assert "(no answer within 0.05 s)" in warning
