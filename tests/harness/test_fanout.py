"""Several devices at once (``jobs.harness.fanout``): one process each, a start barrier before each timed
repetition, a worker's failure stops the others at the gate and names its device, a worker that never comes lets the
others start alone (bounded, as ais_bench's start wait)."""

from __future__ import annotations

import pytest

from jobs import errors
from jobs.harness import fanout
from tests.support import devices as workers


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
