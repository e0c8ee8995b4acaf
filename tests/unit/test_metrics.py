"""The poller's monitor and the multiprocess directory, on the metrics of this process
(which add up over the whole test run: each test compares after with before)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infrastructure import metrics
from infrastructure.metrics import (
    DIR_ENV,
    PRIVATE_DIR_ENV,
    PrometheusPollerMonitor,
    prepare_multiprocess_dir,
)
from tests.support.metrics import Scrape

ROOT = Path(__file__).resolve().parents[2]


def scrape() -> Scrape:
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    return Scrape(body.decode())


def test_a_cycle_counts_by_outcome_and_times_it():
    monitor = PrometheusPollerMonitor()
    before = scrape()
    monitor.cycle_finished("ok", 0.3, tracked=7)
    monitor.cycle_finished("partial", 0.2, tracked=5)
    monitor.cycle_finished("failed", 12.0, tracked=None)
    after = scrape()
    for outcome in ("ok", "partial", "failed"):
        name, labels = "cps_poll_cycles_total", {"outcome": outcome}
        assert after.value(name, **labels) - before.value(name, **labels) == 1, outcome
    assert after.value("cps_poll_cycles_total", outcome="rate_limited") == before.value(
        "cps_poll_cycles_total", outcome="rate_limited"
    )
    count = "cps_poll_cycle_duration_seconds_count"
    assert after.value(count) - before.value(count) == 3
    total = "cps_poll_cycle_duration_seconds_sum"
    assert after.value(total) - before.value(total) == pytest.approx(12.5)
    bucket = "cps_poll_cycle_duration_seconds_bucket"
    assert after.value(bucket, le="0.5") - before.value(bucket, le="0.5") == 2
    assert after.value(bucket, le="+Inf") - before.value(bucket, le="+Inf") == 3
    assert after.value("cps_tracked_cryptos") == 5  # the last cycle that counted them


def test_every_outcome_has_a_series_from_the_start():
    assert scrape().label_values("cps_poll_cycles_total", "outcome") >= {
        "ok",
        "partial",
        "rate_limited",
        "failed",
    }


def test_leadership_sets_the_lock_gauge():
    monitor = PrometheusPollerMonitor()
    monitor.leadership(True)
    assert scrape().value("cps_poller_leader") == 1
    monitor.leadership(False)
    assert scrape().value("cps_poller_leader") == 0


def test_without_a_directory_a_private_one_is_made(tmp_path):
    environ: dict[str, str] = {}
    path = prepare_multiprocess_dir(environ)
    assert path.is_dir() and not any(path.iterdir())
    assert environ[DIR_ENV] == str(path)
    assert environ[PRIVATE_DIR_ENV] == str(os.getpid())
    path.rmdir()


def test_the_operators_directory_is_emptied_of_old_values_by_the_main_process(tmp_path):
    (tmp_path / "counter_123.db").write_bytes(b"old")
    (tmp_path / "README").write_text("not ours")
    environ = {DIR_ENV: str(tmp_path)}
    assert prepare_multiprocess_dir(environ) == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README"]
    assert environ == {DIR_ENV: str(tmp_path)}


def test_a_missing_operators_directory_is_created(tmp_path):
    wanted = tmp_path / "metrics"
    assert prepare_multiprocess_dir({DIR_ENV: str(wanted)}) == wanted
    assert wanted.is_dir()


@pytest.mark.parametrize("private", [False, True])
def test_a_worker_keeps_the_directory_it_inherited(tmp_path, private):
    (tmp_path / "counter_123.db").write_bytes(b"the main process's")
    environ = {DIR_ENV: str(tmp_path), "SANIC_WORKER_NAME": "Sanic-Server-0-0"}
    if private:
        environ[PRIVATE_DIR_ENV] = "1"
    assert prepare_multiprocess_dir(environ) == tmp_path
    assert (tmp_path / "counter_123.db").exists()


def test_a_server_started_by_a_process_with_a_private_directory_makes_its_own(tmp_path):
    (tmp_path / "counter_123.db").write_bytes(b"the parent's")
    environ = {DIR_ENV: str(tmp_path), PRIVATE_DIR_ENV: "1"}
    path = prepare_multiprocess_dir(environ)
    assert path != tmp_path and Path(environ[DIR_ENV]) == path
    assert (tmp_path / "counter_123.db").exists()
    path.rmdir()


def test_this_process_writes_its_values_to_files():
    # The trap this module exists for: values kept in memory would never reach a scrape.
    assert os.environ[DIR_ENV] == str(metrics.MULTIPROCESS_DIR)
    assert any(metrics.MULTIPROCESS_DIR.glob(f"*_{os.getpid()}.db"))


def test_a_process_that_died_without_a_word_drops_out_of_the_live_gauges():
    child = (
        "import os\n"
        "from infrastructure.metrics import POLLER_LEADER\n"
        "POLLER_LEADER.set(1)\n"
        "os._exit(0)\n"  # as a SIGKILL would: no after_server_stop
    )
    env = {**os.environ, "SANIC_WORKER_NAME": "Sanic-Server-0-0"}  # to share our directory
    PrometheusPollerMonitor().leadership(False)
    done = subprocess.run([sys.executable, "-c", child], env=env, cwd=ROOT, check=True)
    assert done.returncode == 0
    files = list(metrics.MULTIPROCESS_DIR.glob("gauge_livesum_*.db"))
    assert len(files) == 2  # ours and the child's, until a scrape
    assert scrape().value("cps_poller_leader") == 0
    assert list(metrics.MULTIPROCESS_DIR.glob("gauge_livesum_*.db")) == [
        metrics.MULTIPROCESS_DIR / f"gauge_livesum_{os.getpid()}.db"
    ]
