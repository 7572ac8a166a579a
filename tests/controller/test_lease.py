"""One controller per sweep: the lease in sweeps/<id>/lease.json, on a directory store and on S3."""

import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest

from controller import lease as lease_mod
from controller import runner
from jobs import store
from tests.support.paths import REPO_ROOT
from tests.support.sweeps import make_sweep

HOLDER = """
import sys
from controller import lease
from jobs import store
st = store.open_store(sys.argv[1])
held = lease.Lease(st, "s", "sweeps/s")
held.acquire()
print("held", flush=True)
sys.stdin.read()  # until the test closes stdin (or kills this process)
held.release()
"""


@pytest.fixture
def holder(tmp_path):
    """Start a process that holds sweep s's lease in tmp_path/store; returns it once the lease is held."""
    procs = []

    def start(store_dir):
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(store_dir)], cwd=REPO_ROOT, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"  # an event, not a delay
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def ghostbench_run(path):
    return subprocess.run([sys.executable, "-m", "controller.cli", "run", str(path)], cwd=REPO_ROOT, text=True,
                          capture_output=True, timeout=300, check=False)


def _iso(delta_s):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=delta_s)
    return t.isoformat(timespec="milliseconds")


def write_lease(store_dir, host, expires_in_s, pid=4242):
    doc = {"sweep": "s", "owner": "someone-else", "host": host, "pid": pid, "pid_start": "", "started": _iso(-600),
           "renewed": _iso(expires_in_s - 120), "expires": _iso(expires_in_s), "ttl_s": 120}
    p = store_dir / "sweeps" / "s" / "lease.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(doc))


def test_create_exclusive_on_a_directory_has_one_winner(tmp_path):
    st = store.open_store(tmp_path)
    barrier = threading.Barrier(8)
    results = []

    def race(i):
        barrier.wait()
        results.append((st.create_exclusive("a/lease.json", f"writer {i}".encode()), i))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for ok, i in results if ok]
    assert len(winners) == 1
    assert st.read_text("a/lease.json") == f"writer {winners[0]}"
    assert st.list() == ["a/lease.json"]  # no temporaries left


def test_second_run_of_a_running_sweep_exits_2_naming_the_holder(tmp_path, holder):
    path = make_sweep(tmp_path)
    proc = holder(tmp_path / "store")
    second = ghostbench_run(path)
    assert second.returncode == 2, second.stderr
    err = second.stderr.strip().splitlines()
    assert len(err) == 1 and "sweep s is already running" in err[0]
    assert f"host {socket.gethostname()} pid {proc.pid} since " in err[0]
    assert not (tmp_path / "store" / "sweeps" / "s" / "status.json").exists()  # nothing started
    proc.stdin.close()  # the holder ends and releases the lease
    assert proc.wait() == 0
    assert ghostbench_run(path).returncode == 0
    assert not (tmp_path / "store" / "sweeps" / "s" / "lease.json").exists()  # released at the end


def test_lease_of_a_dead_controller_is_taken_over(tmp_path, holder):
    path = make_sweep(tmp_path)
    proc = holder(tmp_path / "store")
    proc.kill()  # SIGKILL: the lease stays behind
    proc.wait()
    assert (tmp_path / "store" / "sweeps" / "s" / "lease.json").exists()
    run = ghostbench_run(path)
    assert run.returncode == 0, run.stderr
    assert f"took over the lease of a controller that is gone (host {socket.gethostname()} pid {proc.pid}" in run.stderr
    assert "no longer runs on this host" in run.stderr


def test_expired_lease_of_another_host_is_taken_over(tmp_path):
    path = make_sweep(tmp_path)
    write_lease(tmp_path / "store", "elsewhere.example", expires_in_s=-5)
    run = ghostbench_run(path)
    assert run.returncode == 0, run.stderr
    assert "took over the lease" in run.stderr and "host elsewhere.example pid 4242" in run.stderr
    assert "expired" in run.stderr


def test_live_lease_of_another_host_is_respected(tmp_path):
    path = make_sweep(tmp_path)
    write_lease(tmp_path / "store", "elsewhere.example", expires_in_s=100)
    run = ghostbench_run(path)
    assert run.returncode == 2
    assert "sweep s is already running: host elsewhere.example pid 4242" in run.stderr


def test_two_takers_of_one_stale_lease_one_wins(tmp_path):
    write_lease(tmp_path, "elsewhere.example", expires_in_s=-5)
    st = store.open_store(tmp_path)
    barrier = threading.Barrier(6)
    won, busy = [], []

    def take():
        lease = lease_mod.Lease(st, "s", "sweeps/s", renew_s=3600)
        barrier.wait()
        try:
            lease.acquire()
            won.append(lease)
        except lease_mod.SweepBusy as e:
            busy.append(str(e))

    threads = [threading.Thread(target=take) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(busy) == 5
    assert json.loads(st.read_text("sweeps/s/lease.json"))["owner"] == won[0].owner
    assert st.list("sweeps/s") == ["sweeps/s/lease.json"]  # no takeover marker left
    won[0].release()


def test_a_controller_that_lost_its_lease_stops(tmp_path):
    st = store.open_store(tmp_path)
    lease = lease_mod.Lease(st, "s", "sweeps/s", renew_s=3600)
    assert lease.acquire() is None
    lease.check()
    write_lease(tmp_path, "elsewhere.example", expires_in_s=100)  # taken over while this one was paused
    lease.renew()
    with pytest.raises(lease_mod.LeaseLost, match="another controller took it over"):
        lease.check()
    lease.release()
    assert json.loads(st.read_text("sweeps/s/lease.json"))["owner"] == "someone-else"  # not deleted


def test_status_of_a_sweep_running_elsewhere_is_running(tmp_path, holder, capsys):
    from controller import cli

    st = store.open_store(tmp_path / "store")
    st.write_text("sweeps/s/status.json", json.dumps({"sweep": "s", "state": "running", "updated": "now",
                                                      "counts": {}, "steps": {}}))
    proc = holder(tmp_path / "store")
    assert cli.main(["status", "s", "--store", str(tmp_path / "store")]) == 0
    assert "sweep s: running" in capsys.readouterr().out
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert cli.main(["status", "s", "--store", str(tmp_path / "store")]) == 1
    out = capsys.readouterr().out
    assert "sweep s: interrupted" in out and f"pid {proc.pid} no longer runs on this host" in out


@pytest.mark.slow
def test_lease_on_s3(s3_bucket):
    st = store.open_store(s3_bucket)
    assert st.create_exclusive("x/once", b"first")
    assert not st.create_exclusive("x/once", b"second")
    assert st.read_bytes("x/once") == b"first"
    first = lease_mod.Lease(st, "s", runner.sweep_dir("s"), renew_s=3600)
    assert first.acquire() is None
    with pytest.raises(lease_mod.SweepBusy, match=f"host {socket.gethostname()} pid {os.getpid()}"):
        lease_mod.Lease(st, "s", runner.sweep_dir("s")).acquire()
    first.release()
    assert not st.exists("sweeps/s/lease.json")
    second = lease_mod.Lease(st, "s", runner.sweep_dir("s"), renew_s=3600)
    assert second.acquire() is None
    second.release()
