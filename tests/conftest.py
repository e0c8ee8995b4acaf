"""Fixtures shared by every test package.

``database_url`` (session): a fresh PostgreSQL database on the machine's server,
migrated with the committed migrations, dropped when the run ends.

tests/containers (Docker, minutes) is collected only when named on the command line
(``make container-test``), never by a plain ``pytest`` or ``make test``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sanic import Sanic

from tests.support.database import fresh_database
from tests.support.redis_server import private_redis_fixture  # noqa: F401

Sanic.test_mode = True  # one app name, built anew for each test

CONTAINER_TESTS = Path(__file__).parent / "containers"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path != CONTAINER_TESTS:
        return None
    named = (Path(arg.split("::")[0]).resolve() for arg in config.args)
    return not any(path.is_relative_to(CONTAINER_TESTS) for path in named) or None


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture
def private_tmp() -> Iterator[Path]:
    """A scratch directory outside pytest's own: every pytest session that starts resets
    /tmp/pytest-of-<user> to mode 0700, which locks out the embedded PostgreSQL's
    unprivileged user when tests run as root beside another session."""
    path = Path(tempfile.mkdtemp(prefix="cps-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
