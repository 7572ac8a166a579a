"""Sweeps through the local executor, with the null backend so no model is exported."""

import json
import os
import signal
import subprocess
import sys

import pytest

from controller import cli, runner
from controller import plan as plan_mod
from controller import spec as spec_mod
from jobs import store
from tests.support.paths import REPO_ROOT
from tests.support.sweeps import make_sweep


def report_without_timings(store_dir, sweep):
    rep = json.loads((store_dir / "sweeps" / sweep / "report.json").read_text())
    return [(r["target"], r["batch_size"], r["num_images"], r["accuracy"]) for r in rep["runs"]]


def test_sweep_runs_then_rerun_does_no_stage_work(tmp_path, capsys):
    path = make_sweep(tmp_path)
    assert cli.main(["run", str(path)]) == 0
    sweep_dir = tmp_path / "store" / "sweeps" / "s"
    assert {p.name for p in sweep_dir.iterdir()} >= {"spec.yaml", "plan.json", "status.json", "report.md",
                                                     "report.json", "report.csv"}
    status = json.loads((sweep_dir / "status.json").read_text())
    assert status["state"] == "succeeded" and set(status["counts"]) == {"done"}
    # every step's log is kept next to its output
    for step in json.loads((sweep_dir / "plan.json").read_text())["steps"]:
        assert (tmp_path / "store" / (step["out"] + ".log")).stat().st_size > 0
    spec = spec_mod.load(path)
    plan = plan_mod.make_plan(spec)
    before = {s.key: (tmp_path / "store" / s.out / "_manifest.json").stat().st_mtime_ns for s in plan.steps}
    capsys.readouterr()
    assert cli.main(["run", str(path)]) == 0
    assert "(0 run now)" in capsys.readouterr().err
    after = {s.key: (tmp_path / "store" / s.out / "_manifest.json").stat().st_mtime_ns for s in plan.steps}
    assert before == after
    assert cli.main(["report", "s", "--store", str(tmp_path / "store")]) == 0
    assert "| Batch size | null-f32 | null-u8 | null-u8/null-f32 |" in capsys.readouterr().out


def test_failing_step_fails_dependents_not_siblings(tmp_path, capsys):
    # The last image (in shard 2 of 2) cannot be decoded: shard 1 still finishes.
    path = make_sweep(tmp_path, corrupt="ILSVRC2012_val_00000012.JPEG")
    assert cli.main(["run", str(path), "--jobs", "2"]) == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "preprocess float32 shard 2/2" in err and ".log" in err
    status = json.loads((tmp_path / "store" / "sweeps" / "s" / "status.json").read_text())
    states = {s["title"]: s["state"] for s in status["steps"].values()}
    assert states["preprocess float32 shard 1/2"] == "done"
    assert states["preprocess uint8 shard 1/2"] == "done"
    assert states["preprocess float32 shard 2/2"] == "failed"
    assert states["infer null-f32 bs1"] == "blocked" and states["eval"] == "blocked"
    assert status["state"] == "failed"
    assert cli.main(["status", "s", "--store", str(tmp_path / "store")]) == 1


def test_killed_sweep_resumes_to_the_same_report(tmp_path):
    reference = make_sweep(tmp_path, name="ref", store_dir="ref-store")
    assert cli.main(["run", str(reference)]) == 0

    path = make_sweep(tmp_path, name="s")
    cmd = [sys.executable, "-m", "controller.cli", "run", str(path), "--jobs", "1"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            cwd=REPO_ROOT)
    killed_during = None
    for line in proc.stderr:  # wait for an event, not for time
        if "started preprocess uint8" in line:
            killed_during = line.strip()
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    assert killed_during is not None and proc.returncode == -signal.SIGKILL
    status = json.loads((tmp_path / "store" / "sweeps" / "s" / "status.json").read_text())
    assert status["state"] == "running"  # what a killed controller leaves behind
    assert not (tmp_path / "store" / "sweeps" / "s" / "report.json").exists()

    assert cli.main(["run", str(path)]) == 0
    assert report_without_timings(tmp_path / "store", "s") == report_without_timings(tmp_path / "ref-store", "ref")


def test_plan_command_marks_done_steps(tmp_path, capsys):
    path = make_sweep(tmp_path)
    assert cli.main(["plan", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("todo") == len(out.splitlines()) and "eval" in out
    assert cli.main(["run", str(path)]) == 0
    capsys.readouterr()
    assert cli.main(["plan", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert all(s["done"] for s in doc["steps"])


@pytest.mark.parametrize("argv, message", [
    (["status", "nosuch"], "sweep 'nosuch': no status"),
    (["report", "nosuch"], "sweep 'nosuch': no report"),
    (["run", "/nonexistent/sweep.yaml"], "no such sweep file"),
    (["run", "SPEC", "--namespace", "ns"], "only with --executor kubernetes"),
])
def test_cli_errors_are_one_line_exit_2(tmp_path, capsys, argv, message):
    argv = [str(make_sweep(tmp_path)) if a == "SPEC" else a for a in argv]
    assert cli.main([*argv, "--store", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_store_module_sees_sweep_state(tmp_path):
    path = make_sweep(tmp_path)
    assert cli.main(["run", str(path)]) == 0
    doc = runner.read_status(store.open_store(tmp_path / "store"), "s")
    assert doc is not None and doc.sweep == "s" and doc.state == "succeeded"
