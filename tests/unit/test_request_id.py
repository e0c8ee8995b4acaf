"""Which X-Request-ID a request keeps."""

import uuid

import pytest

from interfaces.http.hooks import request_id_for


@pytest.mark.parametrize(
    "sent", ["abc-123", "a", "A.b_C-9", "x" * 128, "0123456789abcdef0123456789abcdef"]
)
def test_a_fit_id_is_kept(sent):
    assert request_id_for(sent) == sent


@pytest.mark.parametrize(
    "sent",
    [None, "", "x" * 129, "has space", "tab\tin", "new\nline", "a/b", "a;b", "ünï", "a\x00b"],
)
def test_anything_else_gets_a_fresh_uuid4(sent):
    got = request_id_for(sent)
    assert got != sent
    assert len(got) == 32 and set(got) <= set("0123456789abcdef")
    assert str(uuid.UUID(got)) and uuid.UUID(got).version == 4
    assert uuid.UUID(got).variant == uuid.RFC_4122


def test_fresh_ids_differ():
    assert len({request_id_for(None) for _ in range(100)}) == 100
