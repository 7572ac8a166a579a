"""The acl backend end to end through ``jobs.stages.infer``: convert (atc target) -> infer (acl) -> predictions.

Each test runs against ``tests/support/fake_aclruntime.py`` (aclruntime's documented interface, computing
with ONNX Runtime, engines from the stand-in ``tests/support/fake_atc.py``), and the tests marked for both
runtimes run again against the real ``aclruntime`` with the real ``atc`` (``soc_version: auto``) where
those exist: an Ascend machine with CANN and ais_bench. Here they are skipped, with the reason.
"""

from __future__ import annotations

import csv
import importlib
import json
import os
import shutil
import sys

import numpy as np
import pytest

from jobs import store
from jobs.artifacts import commit, shards
from jobs.backends.acl import backend as acl_backend
from jobs.devices import npu_smi
from jobs.stages import convert
from tests.support import fake_aclruntime, tiny_model
from tests.support.acl import N_IMAGES, engine, run
from tests.support.paths import REPO_ROOT


def _real_aclruntime_reason() -> str | None:
    try:
        importlib.import_module("aclruntime")
    except ImportError as e:
        return f"aclruntime does not import here ({e}); it ships with ais_bench on Ascend machines"
    if shutil.which("atc") is None:
        return "aclruntime imports but atc (CANN toolkit) is not on PATH to build the .om engines"
    return None


RUNTIMES = ["fake", pytest.param("real", marks=pytest.mark.ascend)]


@pytest.fixture(params=RUNTIMES)
def runtime(request, acl_work, monkeypatch):
    """'fake' (the test double injected as ``aclruntime``, the stand-in atc on PATH) or 'real'."""
    if request.param == "real":
        reason = _real_aclruntime_reason()
        if reason:
            pytest.skip(reason)
        return "real"
    fake_aclruntime.reset()
    monkeypatch.setitem(sys.modules, "aclruntime", fake_aclruntime)
    monkeypatch.setenv("PATH", f"{acl_work / 'fake-bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv(npu_smi.VISIBLE_DEVICES_ENV, raising=False)
    return "fake"


def predictions(out):
    with open(out / "predictions.csv") as f:
        return list(csv.DictReader(f))


def reference_top1(work, mode="float32"):
    ds = shards.open_dataset(str(work / f"data-{mode}"))
    batch = next(iter(ds.iter_batches(N_IMAGES)))[0].copy()
    if mode == "uint8":  # what AIPP computes on the chip: the seed's normalization of the pixels
        mean = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(1, 3, 1, 1)
        std = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(1, 3, 1, 1)
        batch = (batch.astype(np.float32) / 255.0 - mean) / std
    return tiny_model.reference_logits(batch).argmax(axis=1).tolist()


def assert_top1(rows, expected, runtime):
    got = [int(r["top1"]) for r in rows]
    if runtime == "fake":
        assert got == expected
    else:  # the chip computes in fp16 by default (ATC's force_fp16): near ties may flip
        assert sum(g == e for g, e in zip(got, expected)) >= 0.9 * len(expected)


# -- both runtimes ----------------------------------------------------------------------------------

def test_fixed_batch_with_padding(acl_work, runtime):
    code, out = run(acl_work, f"infer-{runtime}-f32-bs4", engine(acl_work, runtime, "f32-bs4", 4),
                    "float32", 4)
    assert code == 0
    rows = predictions(out)
    ds = shards.open_dataset(str(acl_work / "data-float32"))
    assert [r["name"] for r in rows] == ds.names  # 3 batches of 4; the 2 padded rows are not written
    assert_top1(rows, reference_top1(acl_work), runtime)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_batches"] == 3 and summary["padded_images"] == 2
    for key in ("NPU_compute_time", "H2D_latency", "D2H_latency"):
        assert summary[key]["count"] == 3
    assert summary["transfer_timing"] == "measured by the backend"
    assert summary["throughput"] == pytest.approx(4000.0 / summary["NPU_compute_time"]["mean"])
    info = summary["backend_info"]
    assert info["backend"] == "acl" and info["acl_device_id"] == 0 and info["host_layout_conversion"] is None
    assert info["om_input"]["dtype"] == "float32" and info["om_input"]["shape"] == [4, 3, 224, 224]
    assert summary["engine_record"]["target"] == "atc"


def test_dynamic_batch_engine_serves_each_listed_batch_size(acl_work, runtime):
    uri = engine(acl_work, runtime, "f32-dyn", 8, "dynamic_batch_sizes=[1,4,8]")
    for bs in (8, 4, 1):
        code, out = run(acl_work, f"infer-{runtime}-dyn-{bs}", uri, "float32", bs)
        assert code == 0
        assert_top1(predictions(out), reference_top1(acl_work), runtime)
        assert json.loads((out / "summary.json").read_text())["backend_info"]["dynamic_batch_sizes"] == [1, 4, 8]


def test_dynamic_batch_size_not_built_is_one_line_exit_2(acl_work, runtime, capsys):
    uri = engine(acl_work, runtime, "f32-dyn", 8, "dynamic_batch_sizes=[1,4,8]")
    code, out = run(acl_work, f"infer-{runtime}-dyn-2", uri, "float32", 2)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "batch size 2: this dynamic-batch engine takes [1, 4, 8]" in err
    assert commit.read_manifest(store.open_store(out)) is None


def test_uint8_pixels_through_aipp_match_the_float32_model(acl_work, runtime):
    code, out = run(acl_work, f"infer-{runtime}-u8-bs4", engine(acl_work, runtime, "u8-bs4", 4, "aipp=true"),
                    "uint8", 4)
    assert code == 0
    assert_top1(predictions(out), reference_top1(acl_work, "uint8"), runtime)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input_mode"] == "uint8"
    info = summary["backend_info"]
    assert info["om_input"]["dtype"] == "uint8" and info["om_input"]["format"] == "NHWC"
    assert info["om_input"]["shape"] == [4, 224, 224, 3]
    assert info["host_layout_conversion"].startswith("NCHW -> NHWC")


@pytest.mark.parametrize("engine_name, options, data_mode, message", [
    ("f32-bs4", (), "uint8", "engine input 'image' takes float32 but the data"),
    ("u8-bs4", ("aipp=true",), "float32", "engine input 'image' takes uint8 but the data"),
])
def test_uint8_float32_mismatch_is_one_line_exit_2(acl_work, runtime, capsys, engine_name, options,
                                                   data_mode, message):
    uri = engine(acl_work, runtime, engine_name, 4, *options)
    code, out = run(acl_work, f"infer-{runtime}-mismatch", uri, data_mode, 4)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err
    assert commit.read_manifest(store.open_store(out)) is None


def test_batch_size_other_than_the_engines_is_one_line_exit_2(acl_work, runtime, capsys):
    code, _ = run(acl_work, f"infer-{runtime}-wrong-bs", engine(acl_work, runtime, "f32-bs4", 4), "float32", 8)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "the engine was built for batch size 4" in err


# -- the fake alone: what a test double can pin down ------------------------------------------------

@pytest.mark.parametrize("pairs", [False, True], ids=["ms", "start-end-pairs"])
def test_compute_time_comes_from_aclruntimes_summary(acl_work, acl_fake, pairs):
    acl_fake.FIXED_EXEC_MS = 2.5
    acl_fake.EXEC_TIME_AS_PAIRS = pairs
    code, out = run(acl_work, "infer-fake-timing", engine(acl_work, "fake", "f32-bs4", 4), "float32", 4,
                    "--warmup", "1")
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    compute = summary["NPU_compute_time"]
    assert compute["count"] == 3 and compute["min"] == compute["max"] == compute["mean"] == 2.5
    assert summary["throughput"] == pytest.approx(1600.0)  # ais_infer: 1000 * batch / mean compute ms


def test_dynamic_batch_is_set_when_the_batch_size_changes(acl_work, acl_fake):
    uri = engine(acl_work, "fake", "f32-dyn", 8, "dynamic_batch_sizes=[1,4,8]")
    code, _ = run(acl_work, "infer-fake-dyn-calls", uri, "float32", 4)
    assert code == 0
    sets = [arg for name, arg in acl_fake.calls if name == "set_dynamic_batchsize"]
    runs = [arg for name, arg in acl_fake.calls if name == "run"]
    assert sets == [4] and runs and set(runs) == {4}  # set once, before the first run
    assert acl_fake.calls[-1] == ("finalize", None)


def test_npu_alone_takes_the_device_ascend_docker_runtime_handed_over(acl_work, acl_fake, monkeypatch):
    monkeypatch.setenv(npu_smi.VISIBLE_DEVICES_ENV, "3")
    code, out = run(acl_work, "infer-fake-visible", engine(acl_work, "fake", "f32-bs4", 4), "float32", 4,
                    device="npu")
    assert code == 0
    info = json.loads((out / "summary.json").read_text())["backend_info"]
    assert info["acl_device_id"] == 0 and info["physical_device_id"] == 3
    assert info[npu_smi.VISIBLE_DEVICES_ENV] == "3"
    assert ("open", (str(acl_work / "engine-fake-f32-bs4" / "ghostnet_bs4.om"), 0)) in acl_fake.calls


@pytest.mark.parametrize("device, env, message", [
    ("npu", None, "device 'npu': ASCEND_VISIBLE_DEVICES is not set"),
    ("npu:1", "3", "device 'npu:1': this container sees 1 NPU(s) (ASCEND_VISIBLE_DEVICES=3), ACL ids 0..0"),
    ("npu:1", None, "ghostnet_bs4.om: aclruntime cannot load it on NPU 1: aclrtSetDevice failed"),
    ("gpu:0", None, "device: expected npu or npu:N for backend acl, got 'gpu:0'"),
])
def test_bad_devices_are_one_line_exit_2(acl_work, acl_fake, monkeypatch, capsys, device, env, message):
    if env is not None:
        monkeypatch.setenv(npu_smi.VISIBLE_DEVICES_ENV, env)
    code, _ = run(acl_work, "infer-fake-bad-device", engine(acl_work, "fake", "f32-bs4", 4), "float32", 4,
                  device=device)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err


def test_missing_aclruntime_is_one_line_exit_3(acl_work, acl_fake, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "aclruntime", None)  # import aclruntime -> ImportError
    code, _ = run(acl_work, "infer-fake-missing", engine(acl_work, "fake", "f32-bs4", 4), "float32", 4)
    err = capsys.readouterr().err.strip()
    assert code == 3
    assert err == ("ghostbench infer: error: aclruntime is not installed; it ships with ais_bench in the Ascend "
                   "inference image")


def test_an_onnxruntime_engine_is_refused(acl_work, acl_fake, capsys):
    ort_engine = acl_work / "engine-ort"
    assert convert.main(["--model", str(acl_work / "export-float32"), "--batch-size", "4", "--out",
                         str(ort_engine), "--quiet"]) == 0
    code, _ = run(acl_work, "infer-fake-ort-engine", str(ort_engine), "float32", 4)
    assert code == 2
    assert "backend acl runs .om engines from the atc target; this engine is 'onnxruntime'" in capsys.readouterr().err


def test_unknown_option_is_one_line_exit_2(acl_work, acl_fake, capsys):
    code, _ = run(acl_work, "infer-fake-option", engine(acl_work, "fake", "f32-bs4", 4), "float32", 4,
                  "--option", "precision_mode=force_fp32")
    assert code == 2 and "option precision_mode: unknown option; allowed: log_level, acl_json_path" in capsys.readouterr().err


# -- pure parts --------------------------------------------------------------------------------------

def test_aclruntime_is_imported_only_inside_the_acl_backend():
    for path in [*(REPO_ROOT / "jobs").rglob("*.py"), *(REPO_ROOT / "controller").rglob("*.py")]:
        text = path.read_text()
        if "import aclruntime" in text or 'import_module("aclruntime")' in text:
            assert path.relative_to(REPO_ROOT).as_posix().startswith("jobs/backends/acl/"), path


@pytest.mark.parametrize("value, ids", [("3", [3]), ("0,1", [0, 1]), ("0-3", [0, 1, 2, 3]),
                                        ("Ascend310P-2,Ascend310P-5", [2, 5]), (" 4 , 6 ", [4, 6])])
def test_visible_devices_forms(value, ids):
    assert npu_smi.parse_visible_devices(value) == ids


def test_exec_time_entries_in_either_form():
    assert acl_backend.exec_ms([1.5]) == 1.5
    assert acl_backend.exec_ms([(10.0, 12.5)]) == 2.5
    assert acl_backend.exec_ms([[1.0, 2.0], 0.5]) == 1.5


def test_descriptor_names():
    assert acl_backend.dtype_name(fake_aclruntime.dtype.float32) == "float32"
    assert acl_backend.format_name(1, [4, 224, 224, 3]) == "NHWC"
    assert acl_backend.format_name(2, [4, 224, 224, 3]) == "NHWC"   # ND: from the shape
    assert acl_backend.format_name(2, [4, 3, 224, 224]) == "NCHW"
