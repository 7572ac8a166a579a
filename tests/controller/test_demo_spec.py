"""The demo's sweep: timed so that two demos of unchanged code can be compared."""

from __future__ import annotations

import pytest

from controller import demo

INPUTS = {"images": "file:///x/images", "labels": "file:///x/labels.csv", "weights": "file:///x/weights.pth",
          "checksum": "sha256:" + "0" * 64}


@pytest.mark.parametrize("cpus,threads", [(1, 1), (2, 1), (4, 3), (64, 63)])
def test_the_demo_leaves_one_cpu_to_the_rest_of_the_machine(cpus, threads):
    assert demo.demo_threads(cpus) == threads


def test_every_demo_target_times_the_threads_it_was_given():
    spec = demo.demo_spec(INPUTS, "file:///x/store", [1, 4], threads=3)
    assert [t.backend_options for t in spec.targets] == [{"intra_op_threads": 3}] * 2
    assert spec.timing.repetitions == 5  # the repetitions compare needs to tell a rerun from a change
    assert spec.timing.min_seconds == 0.3  # 5 x 0.3 s a row: the whole demo under a minute on 2 cores
