"""TortoiseUserRepository.exists on the real PostgreSQL: the bearer guard's question."""

import pytest

from infrastructure.db.models import UserRecord
from infrastructure.db.repositories import TortoiseUserRepository

pytestmark = pytest.mark.integration


async def test_exists_answers_for_stored_users_only(db):
    users = TortoiseUserRepository()
    alice = await users.add("alice", "hash")
    assert await users.exists(alice.id)
    assert not await users.exists(alice.id + 1)
    await UserRecord.filter(id=alice.id).delete()
    assert not await users.exists(alice.id)


@pytest.mark.parametrize("user_id", [0, -1, 2**31, 10**30])
async def test_ids_beyond_the_column_are_no_user_and_no_error(db, user_id):
    assert not await TortoiseUserRepository().exists(user_id)
