"""Energy per image: device power sampled around the timed passes (``jobs.devices.power``).

The samplers run against test doubles: a fake ``pynvml`` module (NVML's calls, its units: mW and mJ) and a
stand-in ``npu-smi`` on PATH that prints ``npu-smi info -t power`` as the Ascend driver does. Readings are
driven by hand with a fake clock (``background=False``); the one test of the background thread synchronizes on
an event the fake sets, never on a sleep. End to end, the infer stage with the null backend and ``--power nvml``
(the fake pynvml in ``sys.modules``) fills ``summary.json``'s ``power`` and the report's energy section; without
power neither appears. A measured images-per-joule figure needs a GPU or an NPU: nothing here measures one.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import threading
import types

import pytest

from jobs import errors
from jobs.artifacts import records
from jobs.devices import power
from jobs.stages import eval as eval_stage
from jobs.stages import infer, preprocess
from jobs.tools import fake_imagenet
from tests.support.acl import engine as acl_engine
from tests.support.acl import run as acl_run
from tests.support.stand_ins import NPU_SMI_INFO, write_tool

N_IMAGES = 6


# -- test doubles -----------------------------------------------------------------------------------------------

class FakeClock:
    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):  # pynvml's own name
    pass


def fake_pynvml(watts: float = 100.0, energy_step_mj: float | None = 1000.0, fail_init: str | None = None,
                gpus: int = 1) -> types.ModuleType:
    """A stand-in ``pynvml``: ``watts`` (settable, or a list consumed one per reading) as mW; the energy counter
    advances ``energy_step_mj`` per read (None: NVMLError_NotSupported, a GPU before Volta)."""
    m = types.ModuleType("pynvml")
    m.NVMLError = NVMLError
    m.state = types.SimpleNamespace(watts=watts, energy=0.0, energy_step=energy_step_mj, inits=0, shutdowns=0,
                                    power_reads=0, fail_power=None, on_read=None, handles=[])

    def init():
        if fail_init:
            raise NVMLError(fail_init)
        m.state.inits += 1

    def handle_by_index(i):
        if not 0 <= i < gpus:
            raise NVMLError("Invalid Argument")
        m.state.handles.append(("index", i))
        return ("gpu", i)

    def handle_by_uuid(uuid):
        m.state.handles.append(("uuid", uuid))
        return ("gpu", uuid)

    def power_usage(handle):
        s = m.state
        s.power_reads += 1
        if s.on_read is not None:
            s.on_read(s.power_reads)
        if s.fail_power:
            raise NVMLError(s.fail_power)
        w = s.watts.pop(0) if isinstance(s.watts, list) else s.watts
        return round(w * 1000)

    def energy(handle):
        if m.state.energy_step is None:
            raise NVMLError_NotSupported("Not Supported")
        m.state.energy += m.state.energy_step
        return int(m.state.energy)

    m.nvmlInit = init
    m.nvmlShutdown = lambda: setattr(m.state, "shutdowns", m.state.shutdowns + 1)
    m.nvmlDeviceGetHandleByIndex = handle_by_index
    m.nvmlDeviceGetHandleByUUID = handle_by_uuid
    m.nvmlDeviceGetName = lambda h: b"NVIDIA Fake H200"  # bytes, as older pynvml returns
    m.nvmlDeviceGetUUID = lambda h: "GPU-0000-fake"
    m.nvmlDeviceGetPowerUsage = power_usage
    m.nvmlDeviceGetTotalEnergyConsumption = energy
    return m


def power_output(watts: str) -> str:
    """``npu-smi info -t power -i N`` as the driver prints it for a card (``\\t%-30s : %.1f``)."""
    return f"\t{'Power Dissipation(W)':<30s} : {watts}\n"


def stand_in_npu_smi(bin_dir: pathlib.Path, npu_id: int = 0, table: str = NPU_SMI_INFO) -> pathlib.Path:
    """A stand-in ``npu-smi``: ``info`` prints ``table``; ``info -t power -i <npu_id>`` prints the watts written in
    ``<bin_dir>/watts`` (the test changes them between readings); anything else fails as npu-smi does."""
    (bin_dir / "watts").parent.mkdir(parents=True, exist_ok=True)
    (bin_dir / "watts").write_text("23.4")
    script = f"""import pathlib, sys
args = sys.argv[1:]
if args == ['info']:
    sys.stdout.write({table!r})
elif args == ['info', '-t', 'power', '-i', '{npu_id}']:
    watts = pathlib.Path({str(bin_dir / 'watts')!r}).read_text().strip()
    sys.stdout.write('\\tNPU ID                         : {npu_id}\\n')
    sys.stdout.write('\\t' + 'Power Dissipation(W)'.ljust(30) + ' : ' + watts + '\\n')
else:
    sys.stderr.write('Usage: npu-smi info <watch|proc-mem|-h|-m|-l|-t type> [Options...]\\n')
    sys.exit(255)
"""
    return write_tool(bin_dir / "npu-smi", script)


# -- choosing a method --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode, device, method", [
    (None, "cuda:0", "nvml"), ("auto", "tensorrt:1", "nvml"), ("auto", "npu:0", "npu-smi"), ("auto", "npu", "npu-smi"),
    ("auto", "cann:0", "npu-smi"), ("auto", "cpu", "off"), (None, "none", "off"), ("nvml", "cpu", "nvml"),
    ("off", "cuda:0", "off"), ("npu-smi", "cpu", "npu-smi"),
])
def test_auto_is_nvml_on_nvidia_npu_smi_on_ascend_and_off_elsewhere(mode, device, method):
    assert power.resolve(mode, device) == method


def test_off_and_the_cpu_get_no_sampler():
    assert power.sampler_for(None, "cpu", None) is None
    assert power.sampler_for("off", "cuda:0", None) is None


@pytest.mark.parametrize("device, visible, expected", [
    ("cuda:1", None, (1, None, "device 'cuda:1': NVML index 1")),
    ("cuda", None, (0, None, "device 'cuda': NVML index 0")),
    ("cuda:1", "4,6", (6, None, "CUDA_VISIBLE_DEVICES=4,6, entry 1")),
    ("tensorrt:0", "GPU-abc,GPU-def", (None, "GPU-abc", "CUDA_VISIBLE_DEVICES=GPU-abc,GPU-def, entry 0")),
])
def test_the_gpu_cuda_runs_on_is_nvmls_index_or_uuid(device, visible, expected):
    environ = {} if visible is None else {"CUDA_VISIBLE_DEVICES": visible}
    assert power.nvml_target(device, environ) == expected


# -- integrating readings ----------------------------------------------------------------------------------------

def test_integrate_holds_the_ends_and_draws_lines_between_readings():
    assert power.integrate([(0.0, 100.0)], 0.0, 2.0) == pytest.approx(200.0)
    assert power.integrate([(0.0, 100.0), (2.0, 200.0)], 0.0, 2.0) == pytest.approx(300.0)
    # clipped to the window: readings stamped just outside it count only by interpolation
    assert power.integrate([(-1.0, 100.0), (1.0, 300.0), (3.0, 300.0)], 0.0, 2.0) == pytest.approx(250 + 300)
    assert power.integrate([], 0.0, 1.0) == 0.0 and power.integrate([(0.0, 5.0)], 1.0, 1.0) == 0.0


# -- NVML --------------------------------------------------------------------------------------------------------

def test_nvml_prefers_the_energy_counter():
    nvml, clock = fake_pynvml(watts=[99.0, 150.0, 250.0, 180.0]), FakeClock()  # 99 W: the test reading
    s = power.NvmlSampler(0, nvml=nvml, clock=clock, background=False, interval_ms=50)
    assert s.has_energy_counter and "NVIDIA Fake H200 (GPU-0000-fake)" in s.source
    nvml.state.energy, nvml.state.energy_step = 5000.0, 0.0
    s.start()                        # reading 150 W at t=100, counter 5000 mJ
    nvml.state.energy_step = 400_000.0
    clock.t = 101.0
    s.sample()                       # 250 W
    clock.t = 102.0
    record = s.stop()                # 180 W, counter 405000 mJ
    assert (record.method, record.energy, record.scope) == ("nvml", "counter", "board")
    assert record.joules == pytest.approx(400.0) and record.seconds == pytest.approx(2.0)
    assert record.mean_watts == pytest.approx(200.0) and record.max_watts == pytest.approx(250.0)
    assert (record.samples, record.failed_samples, record.interval_ms) == (3, 0, 50.0)
    record = record.for_images(800)
    assert record.joules_per_image == pytest.approx(0.5) and record.images_per_joule == pytest.approx(2.0)
    s.close()
    assert nvml.state.shutdowns == 1


def test_nvml_without_the_counter_integrates_the_power_readings():
    nvml, clock = fake_pynvml(watts=[100.0, 100.0, 200.0, 200.0], energy_step_mj=None), FakeClock(0.0)
    s = power.NvmlSampler(0, nvml=nvml, clock=clock, background=False)  # the test reading takes the first
    assert not s.has_energy_counter
    s.start()                                   # 100 W at t=0
    clock.t = 1.0
    s.sample()                                  # 200 W at t=1
    clock.t = 3.0
    record = s.stop()                           # 200 W at t=3
    assert record.energy == "integrated"
    assert record.joules == pytest.approx(150.0 + 400.0) and record.mean_watts == pytest.approx(550.0 / 3)


def test_a_failed_reading_is_counted_and_the_run_goes_on():
    nvml, clock = fake_pynvml(watts=120.0), FakeClock(0.0)
    s = power.NvmlSampler(0, nvml=nvml, clock=clock, background=False)
    s.start()
    nvml.state.fail_power = "GPU is lost"
    clock.t = 1.0
    s.sample()
    nvml.state.fail_power = None
    clock.t = 2.0
    record = s.stop()
    assert (record.samples, record.failed_samples, record.first_error) == (2, 1, "GPU is lost")
    assert record.measured and record.to_dict()["first_error"] == "GPU is lost"


def test_a_sampler_that_read_nothing_says_so():
    nvml, clock = fake_pynvml(), FakeClock(0.0)
    s = power.NvmlSampler(0, nvml=nvml, clock=clock, background=False)
    nvml.state.fail_power = "Unknown Error"
    s.start()
    clock.t = 1.0
    record = s.stop()
    assert not record.measured and "Unknown Error" in record.reason and record.joules_per_image is None


def test_nvml_that_cannot_start_is_power_unavailable():
    nvml = fake_pynvml(fail_init="Driver Not Loaded")
    with pytest.raises(power.PowerUnavailable, match="NVML cannot read the power of GPU 0: Driver Not Loaded"):
        power.NvmlSampler(0, nvml=nvml, background=False)
    with pytest.raises(power.PowerUnavailable, match="GPU 3: Invalid Argument"):
        power.NvmlSampler(3, nvml=fake_pynvml(), background=False)


def test_the_background_thread_samples_until_stopped():
    nvml = fake_pynvml(watts=90.0)
    enough = threading.Event()
    nvml.state.on_read = lambda n: enough.set() if n >= 6 else None  # the test reading, start, then 4 by the thread
    s = power.NvmlSampler(0, nvml=nvml, interval_ms=1)
    s.start()
    assert enough.wait(30), "the sampling thread took no readings"
    record = s.stop()
    s.close()
    assert record.samples >= 6 and record.max_watts == pytest.approx(90.0) and record.energy == "counter"
    assert nvml.state.power_reads == record.samples + 1  # every reading but the test one is in the record


def test_sampler_for_picks_the_gpu_through_cuda_visible_devices():
    nvml = fake_pynvml(gpus=4)
    s = power.sampler_for("auto", "cuda:1", 20, environ={"CUDA_VISIBLE_DEVICES": "2,3"}, nvml=nvml)
    assert isinstance(s, power.NvmlSampler) and s.interval_ms == 20
    assert nvml.state.handles[-1] == ("index", 3) and "CUDA_VISIBLE_DEVICES=2,3, entry 1" in s.source
    s.close()


def test_without_nvidia_ml_py_auto_records_why_and_nvml_by_name_exits_3(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    s = power.sampler_for("auto", "cuda:0", None, environ={})
    assert isinstance(s, power.UnavailableSampler)
    s.start()
    record = s.stop()
    assert record.to_dict() == {"method": "nvml", "measured": False, "reason": power.NVML_MISSING, "source": ""}
    with pytest.raises(power.PowerUnavailable) as e:
        power.sampler_for("nvml", "cuda:0", None, environ={})
    assert e.value.exit_code == errors.EXIT_MISSING_DEPENDENCY
    assert str(e.value) == f"--power nvml: {power.NVML_MISSING}"


# -- npu-smi -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, watts", [
    (power_output("23.4"), 23.4),
    ("\tNPU ID                         : 4\n\tChip Count                     : 1\n\n" + power_output("68.0"), 68.0),
    ("\t" + "NPU Real-time Power(W)".ljust(30) + " : 75.5\n", 75.5),        # a chip's own reading (-c)
    ("\t" + "Rated Power Dissipation(W)".ljust(30) + " : 8.0\n", None),    # a 310 chip's rating is no reading
    (power_output("NA"), None),
    ("dcmi module initialize failed. ret is -8005\n", None),
])
def test_parse_power(text, watts):
    assert power.parse_power(text) == watts


def test_npu_smi_sampler_reads_the_cards_power(tmp_path):
    bin_dir = tmp_path / "bin"
    exe = stand_in_npu_smi(bin_dir, npu_id=4)
    clock = FakeClock(0.0)
    s = power.NpuSmiSampler(4, "test", exe=str(exe), clock=clock, background=False, interval_ms=50)
    assert s.source == "npu-smi info -t power -i 4 (test)"
    s.start()                                  # 23.4 W at t=0
    (bin_dir / "watts").write_text("43.4")
    clock.t = 2.0
    s.sample()                                 # 43.4 W at t=2
    clock.t = 4.0
    record = s.stop()                          # 43.4 W at t=4
    assert (record.method, record.scope, record.energy, record.samples) == ("npu-smi", "card", "integrated", 3)
    assert record.joules == pytest.approx((23.4 + 43.4) + 2 * 43.4)
    assert record.max_watts == pytest.approx(43.4)


def test_npu_smi_missing_or_failing_is_power_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(power.PowerUnavailable, match="npu-smi is not on PATH"):
        power.NpuSmiSampler(0, background=False)
    exe = stand_in_npu_smi(tmp_path / "bin", npu_id=0)
    with pytest.raises(power.PowerUnavailable, match=r"info -t power -i 7 failed \(exit 255\): Usage"):
        power.NpuSmiSampler(7, exe=str(exe), background=False)


def test_the_npu_id_comes_from_the_acl_backends_row_or_from_npu_smi_info(tmp_path):
    info = {"acl_device_id": 0, "physical_device_id": 1,
            "device_info": {"npu_id": 6, "chip_found_by": "device id 1 (ASCEND_VISIBLE_DEVICES)"}}
    assert power.npu_target("npu", info, {}) == (6, "npu-smi info row, device id 1 (ASCEND_VISIBLE_DEVICES)")
    exe = str(stand_in_npu_smi(tmp_path / "bin"))
    # cann:0 (ONNX Runtime): the chip looked up in npu-smi info; NPU_SMI_INFO lists one 310P3, NPU 0 device 0
    assert power.npu_target("cann:0", {}, {"ASCEND_VISIBLE_DEVICES": "0"}, exe) == (
        0, "npu-smi info row, device id 0 (ASCEND_VISIBLE_DEVICES)")


def test_auto_on_an_npu_without_npu_smi_records_why(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    s = power.sampler_for("auto", "cann:0", None, environ={})
    assert isinstance(s, power.UnavailableSampler) and s.method == "npu-smi"
    with pytest.raises(power.PowerUnavailable, match="^--power npu-smi: npu-smi is not on PATH"):
        power.sampler_for("npu-smi", "cann:0", None, environ={})


# -- records --------------------------------------------------------------------------------------------------

def test_power_record_reads_back():
    measured = records.PowerRecord(method="nvml", source="NVML GPU 0", scope="board", energy="counter",
                                   interval_ms=50.0, samples=41, seconds=2.0, mean_watts=200.0, max_watts=250.0,
                                   joules=400.0, images=800)
    for record in (measured, records.PowerRecord.unavailable("npu-smi", "npu-smi is not on PATH")):
        d = json.loads(json.dumps(record.to_dict()))
        assert records.PowerRecord.from_dict(d) == record and records.PowerRecord.from_dict(d).to_dict() == d
    assert measured.to_dict()["joules_per_image"] == 0.5 and measured.to_dict()["images_per_joule"] == 2.0


# -- the infer and eval stages ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("power")
    images = root / "images"
    names = fake_imagenet.make_image_set(images, count=N_IMAGES, seed=5)
    fake_imagenet.write_labels(images, names, [i % 3 for i in range(len(names))])
    assert preprocess.main(["--images", str(images), "--labels", str(images / "val_label.txt"),
                            "--out", str(root / "data"), "--quiet"]) == 0
    return root


def run_null(data: pathlib.Path, name: str, *extra: str) -> tuple[int, pathlib.Path]:
    out = data / name
    code = infer.main(["--backend", "null", "--data", str(data / "data"), "--batch-size", "4", "--min-batches", "5",
                       "--min-seconds", "0", "--repetitions", "1", "--target-name", name, "--out", str(out), "--quiet",
                       *extra])
    return code, out


def evaluate(data: pathlib.Path, name: str, *runs: pathlib.Path) -> pathlib.Path:
    out = data / name
    args = [a for r in runs for a in ("--run", str(r))]
    assert eval_stage.main([*args, "--data", str(data / "data"), "--out", str(out), "--quiet",
                            "--reference-top1", "0", "--reference-top5", "0"]) == 0
    return out


def test_infer_with_power_fills_the_summary_and_the_report(data, monkeypatch):
    nvml = fake_pynvml(watts=100.0, energy_step_mj=1000.0)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    code, out = run_null(data, "null-power", "--power", "nvml", "--power-interval-ms", "5")
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    p = summary["power"]
    assert (p["method"], p["measured"], p["energy"], p["scope"], p["interval_ms"]) == (
        "nvml", True, "counter", "board", 5.0)
    # counter reads: the test reading, start, stop -> 1000 mJ over the window
    assert p["joules"] == pytest.approx(1.0) and p["samples"] >= 2 and p["max_watts"] == pytest.approx(100.0)
    assert p["images"] == N_IMAGES * summary["passes"] and summary["passes"] == 3  # 2 batches a pass, 5 needed
    assert p["joules_per_image"] == pytest.approx(1.0 / p["images"])
    assert p["images_per_joule"] == pytest.approx(p["images"] / 1.0)
    assert "NVIDIA Fake H200" in p["source"] and nvml.state.shutdowns == 1
    assert records.InferSummary.from_dict(summary).to_dict() == summary

    plain_code, plain = run_null(data, "null-plain")  # auto on the null backend: off
    assert plain_code == 0 and "power" not in json.loads((plain / "summary.json").read_text())

    report = evaluate(data, "eval-power", out, plain)
    rows = {r["target"]: r for r in json.loads((report / "report.json").read_text())["runs"]}
    assert rows["null-power"]["joules_per_image"] == pytest.approx(p["joules_per_image"])
    assert rows["null-power"]["power_method"] == "nvml (counter)"
    assert rows["null-plain"]["joules_per_image"] is None
    md = (report / "report.md").read_text()
    assert "## Energy per image" in md and "| J/image | Images/J | Mean W |" in md
    energy_rows = md.split("## Energy per image", 1)[1].split("\n## ", 1)[0]
    assert "| null-power | 4 |" in energy_rows and "null-plain" not in energy_rows  # only where measured
    csv_header = (report / "report.csv").read_text().splitlines()[0]
    assert csv_header.endswith(",joules_per_image,images_per_joule,mean_watts,power_method")


def test_without_power_the_report_has_no_energy_column(data):
    code, out = run_null(data, "null-off", "--power", "off")
    assert code == 0 and "power" not in json.loads((out / "summary.json").read_text())
    report = evaluate(data, "eval-no-power", out)
    md = (report / "report.md").read_text()
    assert "Energy per image" not in md and "J/image" not in md
    assert "joules_per_image" not in (report / "report.csv").read_text()


def test_power_asked_for_that_cannot_run_exits_3_before_timing(data, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    code, out = run_null(data, "null-no-nvml", "--power", "nvml")
    assert code == errors.EXIT_MISSING_DEPENDENCY and not (out / "_manifest.json").exists()
    assert "nvidia-ml-py is not installed" in capsys.readouterr().err


def test_power_flags_are_checked(data, capsys):
    code, _ = run_null(data, "null-bad-interval", "--power-interval-ms", "0")
    assert code == errors.EXIT_BAD_INPUT and "--power-interval-ms" in capsys.readouterr().err


# -- auto on an Ascend NPU, end to end: the acl backend (fake aclruntime) and a stand-in npu-smi --------------

def test_acl_run_samples_the_card_through_npu_smi(acl_work, acl_fake, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    stand_in_npu_smi(bin_dir, npu_id=0)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    code, out = acl_run(acl_work, "infer-fake-power", acl_engine(acl_work, "fake", "f32-bs4", 4), "float32", 4)
    assert code == 0
    p = json.loads((out / "summary.json").read_text())["power"]
    assert (p["method"], p["measured"], p["scope"], p["energy"]) == ("npu-smi", True, "card", "integrated")
    assert p["source"].startswith("npu-smi info -t power -i 0 (npu-smi info row")
    assert p["mean_watts"] == pytest.approx(23.4) and p["joules_per_image"] > 0

