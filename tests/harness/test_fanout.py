"""Several devices at once (``jobs.harness.fanout``): one process each, a start barrier before each timed
repetition, a worker's failure stops the others at the gate and names its device, a worker that never comes lets the
others start alone (bounded, as ais_bench's start wait)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from jobs import errors
from jobs.harness import fanout
from tests.support import devices as workers
from tests.support.paths import REPO_ROOT


def test_every_worker_passes_every_gate_together():
    results, together = fanout.run(workers.passes_gate, [(10,), (11,), (12,)], ["none:0", "none:1", "none:2"])
    assert together is True
    assert [r["index"] for r in results] == [0, 1, 2]
    assert [r["value"] for r in results] == [10, 11, 12]
    assert all(r["waits"] == 2 and r["together"] for r in results)


def test_a_failing_worker_stops_the_others_and_names_its_device():
    with pytest.raises(errors.BadInput, match=r"^device npu:1: worker 1 cannot start$"):
        fanout.run(workers.fails_before_gate, [(1,), (1,), (1,)], ["npu:0", "npu:1", "npu:2"], start_timeout_s=60)


def test_a_worker_that_never_comes_lets_the_others_start_alone():
    results, together = fanout.run(workers.skips_gate, [(), ()], ["none:0", "none:1"], start_timeout_s=0.5)
    assert together is False
    assert results[0] == {"index": 0, "together": False}


def test_a_worker_that_dies_stops_the_others_at_once_and_is_named(tmp_path):
    mark = tmp_path / "went-on"
    with pytest.raises(errors.GhostbenchError, match=r"^device none:1: its process ended without a result"):
        fanout.run(workers.dies_before_gate, [(1, str(mark))] * 3, ["none:0", "none:1", "none:2"],
                   start_timeout_s=60)
    assert not mark.exists(), mark.read_text()  # the gate was aborted, not waited out for 60 s and passed alone


def test_the_workers_end_with_the_process_that_started_them():
    """An infer stage ended by SIGTERM (its controller gone) leaves no device process behind."""
    code = ("from jobs.harness import fanout; from tests.support import devices; "
            "fanout.run(devices.prints_pid_and_waits, [(), ()], ['none:0', 'none:1'])")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=REPO_ROOT)
    pids = [int(proc.stdout.readline()) for _ in range(2)]  # both workers are running
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.communicate(timeout=60)  # end of file: every holder of its stdout, the workers too, has ended
    except subprocess.TimeoutExpired:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.communicate()
        pytest.fail(f"worker processes {pids} outlived the process that started them")
    assert proc.returncode == -signal.SIGTERM
