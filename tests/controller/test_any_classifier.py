"""Any ImageNet classifier, end to end through the local executor: an imported ONNX file (a fixed batch axis made
dynamic, 48-pixel input, its own normalization) on ONNX Runtime in both input modes and on the ATC and aclruntime
stand-ins with AIPP, and a PyTorch factory model; labels are each model's own top-1 on its own preprocessing, so
every run must agree 100% with the model."""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np
import pytest
import yaml

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from controller import cli
from controller import plan as plan_mod
from controller import spec as spec_mod
from jobs import params
from jobs.data import imaging
from jobs.data import recipe as recipe_mod
from jobs.tools import fake_imagenet
from tests.support import classifiers, fake_atc
from tests.support.paths import REPO_ROOT

MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
FAST = {"warmup": 0, "min_batches": 1, "min_seconds": 0, "repetitions": 1}


def own_labels(images: pathlib.Path, onnx_path: pathlib.Path, recipe: recipe_mod.Recipe) -> list[int]:
    """Each image's top-1 by the model itself, on the recipe's preprocessing (ONNX Runtime, float32)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    labels = []
    for p in sorted(images.iterdir(), key=lambda p: imaging.natural_key(p.name)):
        if p.name == "val_label.txt":
            continue
        x = imaging.normalize(imaging.pixels(p.read_bytes(), p.name, recipe), recipe.mean, recipe.std)
        batch = np.repeat(x[None], session.get_inputs()[0].shape[0] if isinstance(
            session.get_inputs()[0].shape[0], int) else 1, axis=0)
        labels.append(int(np.argmax(session.run(None, {session.get_inputs()[0].name: batch})[0][0])))
    return labels


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("any") / "images"
    fake_imagenet.make_image_set(folder, count=12, seed=23)
    return folder


def label(images: pathlib.Path, labels: list[int]) -> None:
    names = sorted((p.name for p in images.iterdir() if p.name != "val_label.txt"), key=imaging.natural_key)
    fake_imagenet.write_labels(images, names, labels)


@pytest.fixture
def stand_ins(tmp_path, monkeypatch):
    """The ATC stand-in on PATH, and an ``aclruntime`` the step processes import: the fake one."""
    fake_atc.install(tmp_path / "fake-bin", "ok")
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "aclruntime.py").write_text("import sys\nfrom tests.support import fake_aclruntime\n"
                                        "sys.modules[__name__] = fake_aclruntime\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'fake-bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(shim), str(REPO_ROOT)]))
    monkeypatch.delenv("ASCEND_VISIBLE_DEVICES", raising=False)


def sweep(tmp_path: pathlib.Path, images: pathlib.Path, model: dict, targets: list[dict], name: str) -> pathlib.Path:
    doc = {"name": name, "store": str(tmp_path / "store"), "model": model,
           "dataset": {"images": str(images), "labels": str(images / "val_label.txt")},
           "targets": targets, "reference": {"gate": 0.0}, "timing": FAST}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def report(tmp_path: pathlib.Path, name: str) -> dict:
    return json.loads((tmp_path / "store" / "sweeps" / name / "report.json").read_text())


def test_an_imported_onnx_model_runs_end_to_end_on_every_path(tmp_path, images, stand_ins):
    onnx_path = tmp_path / "resnet-tiny.onnx"
    checksum = classifiers.write_onnx(classifiers.tiny_resnet(), onnx_path, 48, batch=1)  # a fixed batch axis
    recipe = recipe_mod.Recipe(resize_short=56, crop=48, mean=tuple(MEAN), std=tuple(STD))
    label(images, own_labels(images, onnx_path, recipe))
    model = {"name": "resnet-tiny", "onnx": onnx_path.name, "checksum": checksum,
             "preprocessing": {"resize": 56, "crop": 48, "mean": MEAN, "std": STD}, "num_classes": 10,
             "published": {"top1": 100.0, "top5": 100.0}}
    targets = [{"name": "ort-f32", "batch_sizes": [1, 4]},
               {"name": "ort-u8", "input_mode": "uint8", "batch_sizes": [4]},
               {"name": "npu-u8", "backend": "acl", "device": "npu:0", "engine": "atc", "accelerator": "Ascend310P3",
                "input_mode": "uint8", "batch_sizes": [2]}]
    path = sweep(tmp_path, images, model, targets, "imported")

    assert cli.main(["run", str(path)]) == 0
    rep = report(tmp_path, "imported")
    assert rep["model"] == "resnet-tiny" and rep["model_source"].startswith("imported ONNX file ")
    assert {(r["target"], r["batch_size"]): r["accuracy"]["1"] for r in rep["runs"]} == {
        ("ort-f32", 1): 100.0, ("ort-f32", 4): 100.0, ("ort-u8", 4): 100.0, ("npu-u8", 2): 100.0}
    md = (tmp_path / "store" / "sweeps" / "imported" / "report.md").read_text()
    assert "Model: resnet-tiny, imported ONNX file" in md and "seed guide, section 7.1" not in md

    plan = plan_mod.make_plan(spec_mod.load(path))
    store = tmp_path / "store"
    (export,) = [s for s in plan.steps if s.stage == "export" and s.input_mode == "float32"]
    record = json.loads((store / export.out / "export_record.json").read_text())
    assert record["source"] == {"kind": "onnx", "uri": str(onnx_path)}
    assert record["import"]["found"]["fixed_batch"] == 1 and record["fixed_batch"] is None
    assert any("batch axis made dynamic" in c for c in record["import"]["changed"])
    assert record["input"]["shape"] == ["batch", 3, 48, 48]
    (atc_step,) = [s for s in plan.steps if s.stage == "convert" and s.target == "npu-u8"]
    engine = json.loads((store / atc_step.out / "engine.json").read_text())
    assert engine["aipp"]["min_chn"] == [127.5] * 3 and engine["aipp"]["var_reci_chn"] == [round(1 / 63.75, 10)] * 3
    assert "--input_shape=input:2,3,48,48" in engine["atc"]["args"]
    assert engine["file"] == "resnet-tiny_bs2.om" and (store / atc_step.out / "resnet-tiny_bs2.om").is_file()
    assert "src_image_size_w : 48" in (store / atc_step.out / "aipp.cfg").read_text()

    # the step's command is the one contract: the card and the file travel as flags and parse back
    argv = export.params.argv()
    assert "--onnx" in argv and "--card" in argv and "--weights" not in argv
    assert params.ExportParams.parse(argv) == export.params


def test_a_factory_model_is_exported_and_runs(tmp_path, images, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    net = classifiers.tiny_convnet()
    checksum = classifiers.save_weights(net, tmp_path / "tiny.pth")
    onnx_path = tmp_path / "reference.onnx"
    classifiers.write_onnx(net, onnx_path, 224)
    label(images, own_labels(images, onnx_path, recipe_mod.PRESETS["resnet"]))
    model = {"name": "convnet-tiny", "factory": classifiers.FACTORY, "weights": "tiny.pth", "checksum": checksum,
             "preprocessing": "resnet", "num_classes": 10, "published": {"top1": 100.0, "top5": 100.0}}
    path = sweep(tmp_path, images, model, [{"name": "ort", "batch_sizes": [4]}], "factory")

    assert cli.main(["run", str(path)]) == 0
    rep = report(tmp_path, "factory")
    assert rep["model_source"].startswith(f"PyTorch factory {classifiers.FACTORY}")
    assert [r["accuracy"]["1"] for r in rep["runs"]] == [100.0]


def test_a_batch_axis_that_cannot_be_made_dynamic_refuses_other_batch_sizes_at_plan_time(tmp_path, images, capsys):
    onnx_path = tmp_path / "fixed.onnx"
    checksum = classifiers.write_onnx(classifiers.tiny_resnet(fixed_batch=2), onnx_path, 48, batch=2)
    label(images, [0] * 12)
    model = {"name": "fixed", "onnx": onnx_path.name, "checksum": checksum, "num_classes": 10,
             "preprocessing": {"resize": 56, "crop": 48, "mean": MEAN, "std": STD},
             "published": {"top1": 0.0, "top5": 0.0}}
    path = sweep(tmp_path, images, model, [{"name": "ort", "batch_sizes": [2, 4]}], "fixed")
    assert cli.main(["plan", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "targets[0].batch_sizes: expected [2]: model.onnx fixes its batch axis at 2" in err[0]
    assert not (tmp_path / "store").exists()

    ok = sweep(tmp_path, images, model, [{"name": "ort", "batch_sizes": [2]}], "fixed-ok")
    assert cli.main(["run", str(ok)]) == 0
