"""Which database errors mean "unavailable" (503) rather than a wrong request, and how
an outage is logged: once when it starts, once when it ends, never a traceback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import asyncpg
import pytest
from tortoise.exceptions import DBConnectionError, IntegrityError, OperationalError

from application.poll_schedule import PollSchedule
from domain.errors import StorageUnavailable
from infrastructure.db.engine import (
    OUTAGE,
    OutageLog,
    describe,
    fold_pool_reconnect_tracebacks,
    is_unavailable,
)

ENGINE_LOG = "infrastructure.db.engine"


def wrapped(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    "error",
    [
        TimeoutError(),
        ConnectionRefusedError(111, "Connection refused"),
        FileNotFoundError(2, "No such file or directory"),  # no unix socket: server stopped
        DBConnectionError("can't establish connection"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients already"),
        wrapped(OperationalError("x"), asyncpg.exceptions.ConnectionFailureError("gone")),
    ],
    ids=lambda error: type(error).__name__,
)
def test_unreachable_or_overloaded_database_is_unavailable(error: BaseException) -> None:
    assert is_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        IntegrityError("duplicate key"),
        wrapped(OperationalError("x"), asyncpg.exceptions.UndefinedTableError("no aerich")),
        asyncpg.exceptions.InterfaceError("another operation is in progress"),
        ValueError("a bug"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_errors_in_the_request_itself_keep_their_meaning(error: BaseException) -> None:
    assert not is_unavailable(error)


def test_an_outage_is_logged_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ENGINE_LOG)
    outage = OutageLog()
    outage.answered()  # up, and nothing to say
    for _ in range(50):
        outage.failed("ConnectionRefusedError: refused")
    outage.answered()
    outage.answered()
    outage.failed("no answer within 2 s")  # a second outage

    assert [(r.levelname, r.getMessage().split(" (")[0]) for r in caplog.records] == [
        ("WARNING", "database unavailable"),
        ("INFO", "database available again after 0.0 s"),
        ("WARNING", "database unavailable"),
    ]
    assert "refused" in caplog.records[0].getMessage()


def test_describe_names_each_wrapped_error_but_not_cancellation() -> None:
    error = wrapped(TimeoutError(), asyncio.CancelledError())
    assert describe(error) == "TimeoutError"
    assert describe(wrapped(OperationalError("x"), ConnectionResetError("reset"))) == (
        "OperationalError: x <- ConnectionResetError: reset"
    )


@pytest.fixture
def outage_cleared() -> Iterator[None]:
    OUTAGE.answered()
    yield
    OUTAGE.answered()


def test_asyncpg_pool_reconnect_tracebacks_become_the_one_outage_line(
    caplog: pytest.LogCaptureFixture, outage_cleared: None
) -> None:
    """asyncpg's pool logs a traceback at every failed attempt to reconnect its
    minimum of connections: folded into the outage line instead."""
    caplog.set_level(logging.INFO)
    fold_pool_reconnect_tracebacks()  # as configure_logging does
    pool_log = logging.getLogger("asyncpg.pool")
    for _ in range(3):
        try:
            raise TimeoutError
        except TimeoutError:
            pool_log.warning("Failed to restore the pool connection floor; retrying", exc_info=True)
    pool_log.warning("something else entirely")

    assert not [r for r in caplog.records if r.exc_info]
    assert [(r.name, r.getMessage().split(" (")[0]) for r in caplog.records] == [
        (ENGINE_LOG, "database unavailable"),
        ("asyncpg.pool", "something else entirely"),
    ]


class _Lock:
    async def acquire(self) -> bool:
        return True

    async def release(self) -> None:
        pass


async def test_a_poll_cycle_without_database_is_one_plain_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def poll() -> object:
        raise StorageUnavailable() from ConnectionRefusedError(111, "refused")

    caplog.set_level(logging.DEBUG, logger="application")
    await PollSchedule(poll, _Lock(), 30.0).poll_once()  # type: ignore[arg-type]

    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "poll failed, will retry next cycle: database unavailable")
    ]
    assert not caplog.records[0].exc_info
