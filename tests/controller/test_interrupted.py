"""A controller killed mid-sweep: its step processes end with it, `ghostbench status` says interrupted,
and a rerun removes the staging folders the dead writers left and completes."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from controller import cli
from controller import plan as plan_mod
from controller import spec as spec_mod
from jobs import store
from jobs.store import base as store_base
from tests.support.paths import REPO_ROOT
from tests.support.sweeps import make_sweep

POLL_LIMIT_S = 60.0


def poll(what, fn, limit_s=POLL_LIMIT_S):
    """fn() until it returns something true, at most ``limit_s`` seconds (a bounded poll, not a delay)."""
    deadline = time.monotonic() + limit_s
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {limit_s:g}s")
        time.sleep(0.05)


def children(pid, needle):
    """Pids of the processes whose parent is ``pid`` and whose command line contains ``needle`` (Linux /proc)."""
    found = []
    for d in pathlib.Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_bytes().rsplit(b")", 1)[1].split()[1])
            cmdline = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and needle in cmdline:
            found.append(int(d.name))
    return found


def alive(pid):
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
        return (pathlib.Path("/proc") / str(pid) / "stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def staging_dirs(root):
    return [p for p in root.rglob(store_base.TMP_MARK + "*")]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_controller_takes_its_step_along_and_rerun_cleans_up(tmp_path, capsys, sig):
    # one slow inference step: 12 images at 2 images/s
    path = make_sweep(tmp_path, shards=1, targets=[{"name": "slow", "backend": "null", "batch_sizes": [1],
                                                    "backend_options": {"images_per_s": 2}}])
    store_dir = tmp_path / "store"
    plan = plan_mod.make_plan(spec_mod.load(path))
    infer = next(s for s in plan.steps if s.stage == "infer")
    controller = subprocess.Popen([sys.executable, "-m", "controller.cli", "run", str(path)], cwd=REPO_ROOT,
                                  stderr=subprocess.PIPE, text=True)
    try:
        for line in controller.stderr:  # wait for an event, not for time
            if "started infer" in line:
                break
        step_pid, = poll("the infer step's process", lambda: children(controller.pid, "jobs.stages.infer"))
        poll("the infer step's staging folder", lambda: staging_dirs(store_dir / infer.out))
        os.kill(controller.pid, sig)
        controller.wait(timeout=60)
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait()

    poll(f"the end of step process {step_pid}", lambda: not alive(step_pid), limit_s=30)
    # it was stopped, not left to finish beside a rerun
    assert not (store_dir / infer.out / "_manifest.json").exists(), "the step ran on after its controller died"
    assert staging_dirs(store_dir / infer.out)  # what the killed step left behind

    assert cli.main(["status", "s", "--store", str(store_dir)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("sweep s: interrupted")
    assert cli.main(["status", "s", "--store", str(store_dir), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["state"] == "interrupted"

    assert cli.main(["run", str(path)]) == 0
    assert staging_dirs(store_dir) == []
    assert json.loads((store_dir / "sweeps" / "s" / "status.json").read_text())["state"] == "succeeded"


def test_stale_staging_of_dead_writers_is_removed_and_live_ones_kept(tmp_path):
    st = store.open_store(tmp_path)
    st.write_text("artifacts/infer/k/a.txt", "x")
    # a dead writer: a process that has ended (its pid is not running)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    host = store_base.tmp_prefix().split("@", 1)[1].rstrip(".")
    left = tmp_path / "artifacts" / "infer" / "k" / f"{store_base.TMP_MARK}staging-{dead_pid}@{host}.abcd1234"
    (left / "sub").mkdir(parents=True)
    (left / "sub" / "part.npy").write_bytes(b"0" * 100)
    leftover_file = tmp_path / "artifacts" / "infer" / "k" / f"{store_base.TMP_MARK}{dead_pid}@{host}.zz9_aa00"
    leftover_file.write_bytes(b"partial")
    # writers that may still run: this process, and one on another host (recent)
    with st.child("artifacts/infer/k").staging_dir() as live:
        other_host = tmp_path / "artifacts" / "infer" / "k" / f"{store_base.TMP_MARK}staging-1@elsewhere.qq11ww22"
        other_host.mkdir()
        removed = st.clean_stale_tmp("artifacts/infer/k")
        assert sorted(removed) == sorted([f"artifacts/infer/k/{left.name}", f"artifacts/infer/k/{leftover_file.name}"])
        assert live.is_dir() and other_host.is_dir() and not left.exists() and not leftover_file.exists()
        # another host's leftovers go once nothing in them changed for STALE_TMP_AGE_S
        old = time.time() - store_base.STALE_TMP_AGE_S - 60
        os.utime(other_host, (old, old))
        assert st.clean_stale_tmp("artifacts/infer/k") == [f"artifacts/infer/k/{other_host.name}"]
    assert st.list() == ["artifacts/infer/k/a.txt"]
