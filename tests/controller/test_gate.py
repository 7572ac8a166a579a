"""A failing accuracy gate is its own exit code (4), for `run`, `report --check-gate` and the chart's helm test."""

from __future__ import annotations

import yaml

from controller import cli
from jobs import errors
from tests.support.paths import REPO_ROOT
from tests.support.sweeps import make_sweep


def test_run_exits_4_naming_the_runs_below_the_gate(tmp_path, capsys):
    spec = make_sweep(tmp_path, targets=[{"name": "null", "backend": "null", "batch_sizes": [2]}])
    doc = yaml.safe_load(spec.read_text())
    doc["reference"] = {"top1": 99.0, "top5": 99.0, "gate": 1.0}  # the null backend always says class 0
    spec.write_text(yaml.safe_dump(doc))
    assert cli.main(["run", str(spec)]) == errors.EXIT_GATE_FAILED == 4
    err = capsys.readouterr().err
    assert "ACCURACY GATE FAILED for 1 of 1 run(s)" in err and "null bs2: top-1" in err
    assert cli.main(["report", "s", "--store", str(tmp_path / "store"), "--check-gate"]) == 4
    assert "accuracy gate FAILED: null bs2" in capsys.readouterr().err
    assert cli.main(["report", "s", "--store", str(tmp_path / "store")]) == 0  # reading is not gating


def test_run_exits_0_when_every_run_passes(tmp_path):
    spec = make_sweep(tmp_path, targets=[{"name": "null", "backend": "null", "batch_sizes": [2]}])
    doc = yaml.safe_load(spec.read_text())
    doc["reference"] = {"top1": 0.0, "top5": 0.0, "gate": 1.0}
    spec.write_text(yaml.safe_dump(doc))
    assert cli.main(["run", str(spec)]) == 0
    assert cli.main(["report", "s", "--store", str(tmp_path / "store"), "--check-gate"]) == 0


def test_the_charts_helm_test_checks_the_gate():
    hook = (REPO_ROOT / "charts" / "ghostbench" / "templates" / "tests" / "test-report.yaml").read_text()
    assert "- --check-gate" in hook


def test_a_run_with_nonfinite_logits_fails_the_gate_whatever_its_accuracy(tmp_path, capsys):
    # issue 20.2: a model whose logits held inf, -inf and NaN passed a 25% gate at 33%; now the sweep exits 4
    spec = make_sweep(tmp_path, targets=[{"name": "overflow", "backend": "null", "batch_sizes": [4],
                                          "backend_options": {"logits": "nonfinite"}}])
    assert cli.main(["run", str(spec)]) == errors.EXIT_GATE_FAILED
    err = capsys.readouterr().err
    assert "ACCURACY GATE FAILED for 1 of 1 run(s)" in err
    assert "overflow bs4: top-1 33.33%, top-5 66.67%, non-finite logits in 12 of 12 images" in err
    assert cli.main(["report", "s", "--store", str(tmp_path / "store"), "--check-gate"]) == 4
    assert "non-finite logits in 12 of 12 images" in capsys.readouterr().err
    assert cli.main(["status", "s", "--store", str(tmp_path / "store")]) == 4
