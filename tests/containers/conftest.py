"""The timings tests/containers measured, printed at the end of the run."""

from __future__ import annotations

import pytest

TIMINGS: dict[str, list[float]] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("container timings")
        for what, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{what}: {', '.join(f'{s:.1f} s' for s in seconds)}")
