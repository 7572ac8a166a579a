"""The timing protocol's repetitions, validity and real-image rate, and what it records of the host and the
device, on the null backend and the tiny model (no device needed)."""

from __future__ import annotations

import json
import pathlib

import pytest

from jobs.artifacts import records
from jobs.backends.null import backend as null_backend
from jobs.backends.onnxruntime import config as ort_config
from jobs.devices import noise
from jobs.harness import passes
from tests.support.harness import N_IMAGES, make_engine, run_infer


def summary_of(out: pathlib.Path) -> records.InferSummary:
    return records.InferSummary.from_json((out / "summary.json").read_text())


def test_each_repetition_after_the_first_opens_a_fresh_session(harness_work, monkeypatch):
    opened = []
    real_open = null_backend.NullBackend.open.__func__

    def counting_open(cls, *args, **kwargs):
        opened.append(args[1])
        return real_open(cls, *args, **kwargs)

    monkeypatch.setattr(null_backend.NullBackend, "open", classmethod(counting_open))
    code, out = run_infer(harness_work, "reps-null", "--backend", "null", "--data", str(harness_work / "data-float32"),
                          "--batch-size", "4", "--min-batches", "2", "--min-seconds", "0", "--warmup", "1",
                          "--repetitions", "4")
    assert code == 0 and len(opened) == 4  # the stage's session, then one per repetition after the first
    s = summary_of(out)
    assert s.repetitions.n == 4 and all(v > 0 for v in s.repetitions.throughput)
    # each repetition timed its own minimum: 3 batches a pass, 2 batches at least -> one pass each
    assert s.compute.count == 4 * 3 and s.passes == 4
    assert json.loads((out / "summary.json").read_text())["repetitions"]["method"].startswith("95% prediction")


def test_a_short_run_is_not_valid_and_says_why(harness_work):
    code, out = run_infer(harness_work, "short-null", "--backend", "null", "--data", str(harness_work / "data-float32"),
                          "--batch-size", "4", "--min-batches", "1", "--min-seconds", "0", "--repetitions", "2")
    v = summary_of(out).validity
    assert code == 0 and not v.valid
    assert any(r.startswith("short:") for r in v.reasons) and any(r.startswith("few samples:") for r in v.reasons)
    assert "2 repetition(s), a valid run has 3" in v.reasons


def test_a_long_steady_run_is_valid():
    reps = records.Repetitions.of([1000.0, 1001.0, 999.0])
    v = passes.validity([10.0] * 1200, reps, stopped_short=False, batch_size=8)  # 12 s in 1,200 batches
    assert v.valid and v.reasons == ()
    unsteady = passes.validity([10.0] * 1200, records.Repetitions.of([1000.0, 800.0, 1000.0]), False, 8)
    assert not unsteady.valid and unsteady.reasons[0].startswith("unstable: the repetitions differ by 20%")
    capped = passes.validity([10.0] * 1200, reps, stopped_short=True, batch_size=8)
    assert capped.reasons == ("max passes reached before the minimum batches and seconds",)


def test_padding_is_counted_apart_from_the_real_images(harness_work):
    # 10 images at batch 4: 3 batches, 2 of their 12 rows padding; ais_infer's throughput counts them
    code, out = run_infer(harness_work, "pad-null", "--backend", "null", "--option", "images_per_s=2000",
                          "--data", str(harness_work / "data-float32"), "--batch-size", "4", "--min-batches", "3",
                          "--min-seconds", "0")
    s = summary_of(out)
    assert code == 0 and s.padded_images == 2 and s.padded_share == pytest.approx(2 / 12)
    assert s.real_images_per_second == pytest.approx(s.throughput * N_IMAGES / 12)


def test_the_host_is_read_around_the_timed_window(harness_work):
    code, out = run_infer(harness_work, "noise-null", "--backend", "null", "--data", str(harness_work / "data-float32"),
                          "--batch-size", "4", "--min-batches", "1", "--min-seconds", "0")
    host = summary_of(out).noise.host
    assert code == 0 and host.seconds > 0 and host.cpus >= 1 and host.threads >= 1
    assert summary_of(out).noise.device is None  # the null backend has no device to watch


def fake_proc(root: pathlib.Path, busy: int, steal: int, own: int, cpus: int = 2) -> pathlib.Path:
    """/proc/stat and /proc/self/stat in USER_HZ ticks (100 a second here)."""
    (root / "self").mkdir(parents=True, exist_ok=True)
    lines = [f"cpu  {busy} 0 0 100000 0 0 0 {steal} 0 0"] + [f"cpu{i} 0 0 0 0 0 0 0 0 0 0" for i in range(cpus)]
    (root / "stat").write_text("\n".join(lines) + "\n")
    (root / "self" / "stat").write_text("123 (python3) R " + " ".join(["0"] * 10) + f" {own} 0 " + " ".join(["0"] * 30))
    (root / "loadavg").write_text("1.50 1.00 0.50 2/100 123\n")
    (root / "self" / "status").write_text("Name:\tpython3\nThreads:\t7\n")
    return root


def test_other_processes_and_steal_mark_the_host_busy(tmp_path, monkeypatch):
    monkeypatch.setattr(noise, "_ticks", lambda: 100.0)
    clock = iter([0.0, 0.0, 10.0, 10.0])
    proc = fake_proc(tmp_path / "proc", busy=1000, steal=0, own=500)
    sampler = noise.HostSampler(proc, str(tmp_path / "no-sys"), clock=lambda: next(clock))
    sampler.start()
    fake_proc(proc, busy=1000 + 2000 + 600, steal=300, own=500 + 2000)  # 20 s ours, 6 s others', 3 s stolen
    host = sampler.stop()
    assert host.seconds == 10.0 and host.other_cpu_seconds == pytest.approx(6.0) and host.threads == 7
    assert host.other_share == pytest.approx(0.3) and host.steal_share == pytest.approx(0.15)
    reasons = records.Noise(host=host).reasons
    assert reasons == ["other processes took 30% of the host's CPU time", "the hypervisor stole 15% of the host's CPU time"]
    quiet = records.HostNoise(10.0, 2, 0.5, 0.0)
    assert not records.Noise(host=quiet).busy  # 2.5% of the CPU time: below BUSY_SHARE
    assert records.Noise.from_dict(json.loads(json.dumps(records.Noise(host=host).to_dict()))).reasons == reasons


def test_the_other_devices_of_a_run_are_its_own_not_other_load(tmp_path, monkeypatch):
    # four device processes of one run share the host: each one's sampler counts its siblings' CPU time as the
    # run's own, else every run on several devices of a small host was marked busy
    import os

    monkeypatch.setattr(noise, "_ticks", lambda: 100.0)
    proc = fake_proc(tmp_path / "proc", busy=1000, steal=0, own=500)

    def process(pid: int, ppid: int, ticks: int) -> None:
        (proc / str(pid)).mkdir(exist_ok=True)
        (proc / str(pid) / "stat").write_text(f"{pid} (python3) R {ppid} " + " ".join(["0"] * 9) + f" {ticks} 0 "
                                              + " ".join(["0"] * 30))

    for pid in (91, 92, 93):
        process(pid, os.getppid(), 100)
    process(94, 1, 100)  # not a sibling: another program
    assert sorted(noise.sibling_pids(proc)) == [91, 92, 93]
    clock = iter([0.0, 0.0, 10.0, 10.0])
    sampler = noise.HostSampler(proc, str(tmp_path / "no-sys"), clock=lambda: next(clock), siblings=True)
    sampler.start()
    for pid in (91, 92, 93):  # each sibling took 5 s; this process 5 s; another program 1 s
        process(pid, os.getppid(), 600)
    fake_proc(proc, busy=1000 + 2000 + 100, steal=0, own=500 + 500)
    assert sampler.stop().other_cpu_seconds == pytest.approx(1.0)


class FakeNvml:
    """pynvml's calls the noise watcher makes, with a second process on the GPU and a power cap."""

    def __init__(self):
        self.calls = 0

    def nvmlInit(self):
        pass

    def nvmlDeviceGetHandleByIndex(self, index):
        return f"gpu{index}"

    def nvmlDeviceGetUtilizationRates(self, handle):
        return type("U", (), {"gpu": 35})()

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        return [type("P", (), {"pid": 4242})(), type("P", (), {"pid": 1})()]

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle):
        return 0x1 | 0x2 | 0x8  # idle, application clocks set (neither marks the run) and hardware slowdown


def test_a_shared_or_throttled_gpu_marks_the_run():
    watch = noise.watch_device("cuda:0", {}, environ={}, nvml=FakeNvml())
    watch._own = 1  # this process: pid 1 here
    watch.start()
    dev = watch.stop()
    assert dev.kind == "gpu" and dev.other_processes == (4242,) and dev.throttle_reasons == ("hw_slowdown",)
    assert dev.utilization_before == 35.0
    assert records.Noise(host=None, device=dev).reasons == [
        "1 other process(es) on the GPU (pid 4242)", "the GPU was 35% busy before the run", "clocks held down: hw_slowdown"]
    assert noise.watch_device("cpu", {}) is None


def test_a_busy_npu_before_the_run_marks_it(tmp_path, monkeypatch):
    from tests.support.stand_ins import NPU_SMI_INFO, write_tool

    busy = NPU_SMI_INFO.replace("| 0       0                     | 0000:3B:00.0    | 0            1684",
                                "| 0       0                     | 0000:3B:00.0    | 40           1684")
    assert busy != NPU_SMI_INFO
    tool = write_tool(tmp_path / "bin" / "npu-smi", f"import sys\nsys.stdout.write({busy!r})\n")
    watch = noise.watch_device("npu:0", {"acl_device_id": 0}, environ={}, npu_smi_exe=str(tool))
    watch.start()
    dev = watch.stop()
    assert dev.kind == "npu" and dev.utilization_before == 40.0 and dev.error is None
    assert records.Noise(host=None, device=dev).reasons == ["the NPU was 40% busy before the run"]


def test_onnxruntime_does_not_spin_unless_asked(harness_work):
    assert ort_config.OnnxRuntimeConfig.check("cpu", {}).allow_spinning is False
    assert ort_config.OnnxRuntimeConfig.check("cpu", {"allow_spinning": True}).allow_spinning is True
    with pytest.raises(Exception, match="allow_spinning: expected true or false"):
        ort_config.OnnxRuntimeConfig.check("cpu", {"allow_spinning": "yes"})
    engine = make_engine(harness_work, "float32", 2)
    code, out = run_infer(harness_work, "spin", "--engine", engine, "--data", str(harness_work / "data-float32"),
                          "--batch-size", "2", "--min-batches", "1", "--min-seconds", "0")
    assert code == 0 and summary_of(out).backend_info["allow_spinning"] is False
