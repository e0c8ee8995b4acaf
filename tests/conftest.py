"""Fixtures shared by every test package.

``database_url`` (session): a fresh PostgreSQL database on the machine's server,
migrated with the committed migrations, dropped when the run ends.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sanic import Sanic

from tests.support.database import fresh_database
from tests.support.redis_server import private_redis_fixture  # noqa: F401

Sanic.test_mode = True  # one app name, built anew for each test


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url
