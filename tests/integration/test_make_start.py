"""``make start`` without a cluster: fake ``kubectl``, ``docker`` and ``kind`` on PATH
play a kind cluster whose migration Job fails (or succeeds). A failed Job is reported
at once, with its log, instead of after the whole wait."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from subprocess import PIPE

import pytest

ROOT = Path(__file__).resolve().parents[2]
REAL_KUBECTL = Path(sys.executable).parent / "kubectl"
JOB_LOG = "fake migrate log: relation cryptos already exists"
QUICK = 30.0  # seconds; the Makefile's own wait on the Job is 600

# The fake kubectl: renders with the real one (make start builds its overlay from
# k8s/base), answers the Job's status from FAKE_JOB_STATUS ("succeeded/failed" pods),
# blocks in `wait` as the real one does on a condition that never comes, and records
# every other call.
FAKE_KUBECTL = f"""#!/bin/bash
echo "kubectl $*" >> "$FAKE_CALLS"
case "$*" in
  "config current-context") echo kind-fake ;;
  kustomize*) exec {REAL_KUBECTL} "$@" ;;
  *" get job/"*) echo -n "$FAKE_JOB_STATUS" ;;
  *" wait "*) sleep 600 ;;
  *" logs job/"*) echo "{JOB_LOG}" ;;
esac
"""
FAKE_DOCKER = """#!/bin/bash
echo "docker $*" >> "$FAKE_CALLS"
if [ "$1" = build ]; then echo sha256:0123456789abcdef0123456789abcdef > "$3"; fi
"""
FAKE_KIND = """#!/bin/bash
echo "kind $*" >> "$FAKE_CALLS"
"""


def make_start(tmp_path: Path, job_status: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """``make start`` on the fakes; its result and the calls the fakes saw."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, script in (("kubectl", FAKE_KUBECTL), ("docker", FAKE_DOCKER), ("kind", FAKE_KIND)):
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_CALLS": str(calls),
        "FAKE_JOB_STATUS": job_status,
    }
    overlay = tmp_path / "k8s-dev"
    make = shutil.which("make")
    assert make is not None
    command = [make, "-C", ROOT, "start", f"DEV_OVERLAY={overlay}", "JOB_POLL_SECONDS=0.1"]
    # A session of its own: a make that hangs is ended with every fake it started.
    with subprocess.Popen(
        command, env=env, stdout=PIPE, stderr=PIPE, text=True, start_new_session=True
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=QUICK)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise AssertionError(f"make start still running after {QUICK} s") from None
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    return result, calls.read_text()


@pytest.mark.skipif(not REAL_KUBECTL.exists(), reason="make install puts kubectl in .venv")
def test_a_failed_migration_job_fails_make_start_at_once_with_its_log(tmp_path):
    started = time.monotonic()
    result, calls = make_start(tmp_path, "/1")
    assert time.monotonic() - started < QUICK
    assert result.returncode != 0, result.stdout
    assert "job/crypto-price-server-migrate failed" in result.stderr
    assert JOB_LOG in result.stderr
    assert "rollout status deployment/crypto-price-server" not in calls  # no further step


@pytest.mark.skipif(not REAL_KUBECTL.exists(), reason="make install puts kubectl in .venv")
def test_a_complete_migration_job_lets_make_start_wait_for_the_rollout(tmp_path):
    result, calls = make_start(tmp_path, "1/")
    assert result.returncode == 0, result.stderr
    assert "job/crypto-price-server-migrate complete" in result.stdout
    assert JOB_LOG not in result.stdout + result.stderr
    assert "kind load docker-image crypto-price-server:dev-0123456789ab --name fake" in calls
    assert "rollout status deployment/crypto-price-server" in calls
