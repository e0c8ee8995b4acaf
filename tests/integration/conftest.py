"""Fixtures for tests against the real PostgreSQL (see tests/support/database.py).

- ``database_url`` (session, from tests/conftest.py): a fresh database, migrated
  with the committed migrations, dropped when the session ends.
- ``db`` (function, async): Tortoise initialised on that database, with every table
  emptied before and after the test; yields the URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.database import tortoise_session, truncate_tables


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[str]:
    await truncate_tables(database_url)
    async with tortoise_session(database_url):
        yield database_url
    await truncate_tables(database_url)
