"""The acl backend's test bed: the ``acl_work`` and ``acl_fake`` fixtures and the helpers that build an .om engine
and run the infer stage on it (tests/backends/test_acl.py, tests/devices/test_acl_device_info.py,
tests/devices/test_power.py). Registered as a plugin in tests/conftest.py."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from jobs import store
from jobs.artifacts import commit
from jobs.devices import npu_smi
from jobs.stages import convert, infer, preprocess
from jobs.tools import fake_imagenet
from tests.support import fake_aclruntime, fake_atc, tiny_model

N_IMAGES = 10


@pytest.fixture(scope="module")
def acl_work(tmp_path_factory):
    """A folder with N_IMAGES fake images preprocessed (``data-float32``, ``data-uint8``), the tiny model committed
    as an export for each input mode (``export-float32``, ``export-uint8``) and the stand-in atc in ``fake-bin``."""
    root = tmp_path_factory.mktemp("acl")
    images = root / "images"
    names = fake_imagenet.make_image_set(images, count=N_IMAGES, seed=11)
    fake_imagenet.write_labels(images, names, [i % 5 for i in range(len(names))])
    for mode in ("float32", "uint8"):
        assert preprocess.main(["--images", str(images), "--labels", str(images / "val_label.txt"), "--mode", mode,
                                "--out", str(root / f"data-{mode}"), "--quiet"]) == 0
        with commit.Output(store.open_store(root / f"export-{mode}"), "export", {}) as out:
            tiny_model.write(out.dir / "model.onnx", mode)
    fake_atc.install(root / "fake-bin", "ok")
    return root


@pytest.fixture
def acl_fake(acl_work, monkeypatch):
    """The fake runtime alone, for what only a test double can show (timings, device counts, calls)."""
    fake_aclruntime.reset()
    monkeypatch.setitem(sys.modules, "aclruntime", fake_aclruntime)
    monkeypatch.setenv("PATH", f"{acl_work / 'fake-bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv(npu_smi.VISIBLE_DEVICES_ENV, raising=False)
    return fake_aclruntime


def engine(work, runtime: str, name: str, bs: int, *options: str) -> str:
    """The committed .om engine ``name`` (built once per runtime), from the float32 export."""
    out = work / f"engine-{runtime}-{name}"
    soc = "soc_version=auto" if runtime == "real" else "soc_version=Ascend310P3"
    assert convert.main(["--model", str(work / "export-float32"), "--target", "atc", "--batch-size", str(bs),
                         "--option", soc, *[a for o in options for a in ("--option", o)],
                         "--out", str(out), "--quiet"]) == 0
    return str(out)


def run(work, out_name, engine_uri, data_mode, bs, *extra, device="npu:0"):
    """The infer stage with the acl backend on ``engine_uri`` and ``work``'s data: (exit code, output folder)."""
    out = work / out_name
    if out.exists():
        shutil.rmtree(out)
    code = infer.main(["--engine", engine_uri, "--data", str(work / f"data-{data_mode}"), "--backend", "acl",
                       "--device", device, "--batch-size", str(bs), "--min-batches", "1", "--min-seconds", "0",
                       "--out", str(out), "--quiet", *(() if "--repetitions" in extra else ("--repetitions", "1")),
                       *extra])
    return code, out


def importable_fake(folder, device_count: int):
    """A folder with an ``aclruntime`` module that is the fake with ``device_count`` devices, for the processes a run
    on several chips spawns (they import it afresh; put the folder on ``sys.path`` before the run)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "aclruntime.py").write_text(
        "import sys\nfrom tests.support import fake_aclruntime as _fake\n"
        f"_fake.DEVICE_COUNT = {int(device_count)}\nsys.modules[__name__] = _fake\n")
    return folder
