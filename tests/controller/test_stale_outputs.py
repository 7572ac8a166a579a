"""Derived outputs follow the outputs they were built from: a rebuilt infer output rebuilds the eval,
and the sweep's copied report agrees with the summaries (null backend, local executor)."""

import json
import subprocess
import sys

from controller import cli, runner
from controller import plan as plan_mod
from controller import spec as spec_mod
from jobs import store
from jobs.artifacts import commit
from tests.support.sweeps import make_sweep


def _plan(path):
    return plan_mod.make_plan(spec_mod.load(path))


def _eval_manifest(store_dir, plan):
    step = next(s for s in plan.steps if s.stage == "eval")
    return json.loads((store_dir / step.out / commit.MANIFEST).read_text())


def assert_report_agrees_with_summaries(store_dir, plan, sweep="s"):
    """Every run in the sweep's report.json (and the eval output's) has its summary's throughput."""
    reports = [json.loads((store_dir / "sweeps" / sweep / "report.json").read_text())]
    step = next(s for s in plan.steps if s.stage == "eval")
    reports.append(json.loads((store_dir / step.out / "report.json").read_text()))
    for s in plan.steps:
        if s.stage != "infer":
            continue
        summary = json.loads((store_dir / s.out / "summary.json").read_text())
        for report in reports:
            row, = [r for r in report["runs"] if r["target"] == summary["target"]
                    and r["batch_size"] == summary["batch_size"]]
            assert row["throughput"] == summary["throughput"], (s.title, row["throughput"], summary["throughput"])


def test_verify_rebuilds_a_corrupted_summary_and_the_report_follows(tmp_path):
    path = make_sweep(tmp_path)
    store_dir = tmp_path / "store"
    assert cli.main(["run", str(path)]) == 0
    plan = _plan(path)
    infer = next(s for s in plan.steps if s.stage == "infer")
    summary_path = store_dir / infer.out / "summary.json"
    doc = json.loads(summary_path.read_text())
    doc["throughput"] = 0.5  # corrupted after it was committed
    summary_path.write_text(json.dumps(doc))
    eval_before = _eval_manifest(store_dir, plan)

    assert cli.main(["run", str(path), "--verify"]) == 0
    rebuilt = json.loads(summary_path.read_text())
    assert rebuilt["throughput"] != 0.5
    assert _eval_manifest(store_dir, plan)["timings"] != eval_before["timings"]  # the eval ran again
    assert_report_agrees_with_summaries(store_dir, plan)


def test_infer_rerun_under_the_same_key_reruns_eval(tmp_path, capsys):
    path = make_sweep(tmp_path)
    store_dir = tmp_path / "store"
    assert cli.main(["run", str(path)]) == 0
    plan = _plan(path)
    infer = [s for s in plan.steps if s.stage == "infer"][-1]
    (store_dir / infer.out / commit.MANIFEST).unlink()  # the output counts as not committed: it is run again
    capsys.readouterr()

    assert cli.main(["run", str(path)]) == 0
    assert "(2 run now)" in capsys.readouterr().err  # the infer step and the eval
    assert_report_agrees_with_summaries(store_dir, plan)


def test_infer_rebuilt_outside_the_sweep_makes_eval_stale(tmp_path, capsys):
    path = make_sweep(tmp_path)
    store_dir = tmp_path / "store"
    assert cli.main(["run", str(path)]) == 0
    plan = _plan(path)
    infer = next(s for s in plan.steps if s.stage == "infer")
    # the same step run again by hand, replacing its committed output
    subprocess.run([sys.executable, *infer.command(), "--force", "--quiet"], check=True)
    st = store.open_store(store_dir)
    eval_step = next(s for s in plan.steps if s.stage == "eval")
    assert eval_step.key not in runner.committed_keys(plan, st)  # `ghostbench plan` shows it to do
    capsys.readouterr()

    assert cli.main(["run", str(path)]) == 0
    assert "(1 run now)" in capsys.readouterr().err  # only the eval
    assert_report_agrees_with_summaries(store_dir, plan)
