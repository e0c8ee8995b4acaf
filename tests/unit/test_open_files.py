"""The server raises its open-files limit to fit STREAM_MAX_CLIENTS streams."""

from __future__ import annotations

import logging
import resource

from infrastructure.open_files import SPARE, ensure_open_files


class Limits:
    def __init__(self, soft: int, hard: int) -> None:
        self.soft, self.hard = soft, hard

    def get(self, which: int) -> tuple[int, int]:
        assert which == resource.RLIMIT_NOFILE
        return self.soft, self.hard

    def set(self, which: int, limits: tuple[int, int]) -> None:
        soft, hard = limits
        if soft > self.hard or hard != self.hard:
            raise ValueError("not allowed")
        self.soft = soft


def test_the_soft_limit_is_raised_to_fit_the_streams():
    limits = Limits(1024, 20_000)
    assert ensure_open_files(5000, get=limits.get, set_=limits.set) == 5000 + SPARE
    assert limits.soft == 5000 + SPARE


def test_a_limit_high_enough_is_left_alone():
    limits = Limits(50_000, 50_000)
    assert ensure_open_files(5000, get=limits.get, set_=limits.set) == 50_000


def test_a_hard_limit_too_low_is_reached_and_said(caplog):
    limits = Limits(1024, 4096)
    with caplog.at_level(logging.WARNING):
        assert ensure_open_files(5000, get=limits.get, set_=limits.set) == 4096
    assert "STREAM_MAX_CLIENTS=5000" in caplog.text
