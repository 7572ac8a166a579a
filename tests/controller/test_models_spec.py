"""The sweep file's model section: registered, imported ONNX and factory models, presets, and the bad input that
is refused at plan time in one line naming the field (exit 2, nothing written)."""

from __future__ import annotations

import pathlib
import sys

import pytest
import yaml

from controller import cli, models_spec
from controller import plan as plan_mod
from controller import spec as spec_mod
from jobs.data import recipe
from tests.support import classifiers

BASE = {"name": "s", "dataset": {"images": "/img", "labels": "/lab.txt"}, "targets": [{"name": "a"}]}
IMPORTED = {"name": "mine", "onnx": "/m.onnx", "checksum": "sha256:" + "a" * 64, "num_classes": 10,
            "preprocessing": "resnet", "published": {"top1": 70.0, "top5": 90.0}}


def make(model: dict, **top) -> spec_mod.SweepSpec:
    return spec_mod.parse({**BASE, "model": model, **top}, "s.yaml")


def test_presets_carry_the_modelzoo_values_and_the_seed_recipe_unchanged():
    assert recipe.PRESETS["ghostnet"] is recipe.SEED
    assert (recipe.SEED.resize_short, recipe.SEED.crop) == (256, 224)
    assert (recipe.PRESETS["inceptionv3"].resize_short, recipe.PRESETS["inceptionv3"].crop) == (342, 299)
    assert recipe.PRESETS["inceptionv4"].mean == (0.5, 0.5, 0.5)


def test_a_preset_or_explicit_values_make_the_card():
    card = models_spec.card(make(IMPORTED).model)
    assert (card.resize_short, card.crop, card.mean, card.num_classes, card.label_offset) == (
        256, 224, (0.485, 0.456, 0.406), 10, 0)
    spec = make({**IMPORTED, "label_offset": 1, "preprocessing": {"preset": "inceptionv3", "crop": 288}})
    card = models_spec.card(spec.model)
    assert (card.resize_short, card.crop, card.label_offset) == (342, 288, 1)
    again = spec_mod.parse(yaml.safe_load(yaml.safe_dump(spec.to_dict())), "s.yaml")
    assert again == spec  # the resolved spec.yaml plans the same sweep


def test_a_registered_model_plans_as_before():
    spec = make({"name": "ghostnet_1.0x"})
    assert spec.to_dict()["model"] == {"name": "ghostnet_1.0x", "weights": None, "checksum": None, "opset": 11}
    plan = plan_mod.make_plan(spec, "file:///store")
    for step in plan.steps:
        assert "--card" not in step.command() and "--onnx" not in step.command()


def test_an_imported_model_gives_its_card_to_the_stages_and_its_figures_to_eval():
    plan = plan_mod.make_plan(make({**IMPORTED, "label_offset": 1}), "file:///store")
    by_stage = {s.stage: s for s in plan.steps}
    assert by_stage["export"].params.onnx == "/m.onnx" and by_stage["export"].params.weights is None
    assert by_stage["preprocess"].params.card["crop"] == 224
    ev = by_stage["eval"].params
    assert (ev.reference_top1, ev.reference_top5, ev.num_classes, ev.label_offset) == (70.0, 90.0, 10, 1)
    assert ev.model_source == "imported ONNX file /m.onnx (sha256:" + "a" * 64 + ")"


@pytest.mark.parametrize("model, message", [
    ({**IMPORTED, "preprocessing": "vgg"}, "model.preprocessing.preset: expected one of ghostnet, resnet"),
    ({**IMPORTED, "preprocessing": {"resize": 256, "crop": 224}}, "model.preprocessing.mean: required without a preset"),
    ({**IMPORTED, "preprocessing": {"preset": "resnet", "crop": 300}}, "model.preprocessing.crop: expected at most resize"),
    ({**IMPORTED, "preprocessing": {"preset": "resnet", "std": [0.2, 0, 0.2]}}, "model.preprocessing.std: expected three"),
    ({**IMPORTED, "preprocessing": {"preset": "resnet", "interpolation": "bicubic"}},
     "model.preprocessing.interpolation: expected one of bilinear, got 'bicubic'"),
    ({k: v for k, v in IMPORTED.items() if k != "num_classes"}, "model.num_classes: required with model.onnx"),
    ({k: v for k, v in IMPORTED.items() if k != "checksum"}, "model.checksum: required with model.onnx"),
    ({k: v for k, v in IMPORTED.items() if k != "name"}, "model.name: required with model.onnx"),
    ({k: v for k, v in IMPORTED.items() if k != "published"}, "model.published: required for an imported model"),
    ({**IMPORTED, "name": "ghostnet_1.0x"}, "model.name: 'ghostnet_1.0x' is a registered model"),
    ({**IMPORTED, "weights": "/w.pth"}, "model.weights: not used with model.onnx"),
    ({**IMPORTED, "factory": "a.b:c"}, "model.factory: give model.onnx or model.factory, not both"),
    ({**IMPORTED, "onnx": None, "factory": "a.b c"}, "model.factory: expected package.module:function"),
    ({**IMPORTED, "onnx": None, "factory": "a.b:c"}, "model.weights: required with model.factory"),
    ({"name": "ghostnet_1.0x", "num_classes": 1000}, "model.num_classes: only for a model ghostbench does not know"),
    ({**IMPORTED, "preprocessing": "resnett"}, "got 'resnett' (did you mean 'resnet'?)"),
    ({**IMPORTED, "preprocessing": {"preset": "inceptionv33"}}, "got 'inceptionv33' (did you mean 'inceptionv3'?)"),
    ({**IMPORTED, "preprocessing": {"preset": "resnet", "mean": [123.68, 116.78, 103.94]}},
     "model.preprocessing.mean: expected three numbers from 0 to 1 (R, G, B; 0..1 scale) (on the 0..255 scale? "
     "divide by 255), got [123.68, 116.78, 103.94]"),
    ({**IMPORTED, "preprocessing": {"preset": "resnet", "std": [58.4, 57.1, 57.4]}},
     "model.preprocessing.std: expected three numbers in (0, 1] (R, G, B; 0..1 scale) (on the 0..255 scale?"),
    ({**IMPORTED, "preprocessing": {"preset": "resnet", "mean": [0.5, 0.5]}},
     "model.preprocessing.mean: expected three numbers (R, G, B; 0..1 scale), got [0.5, 0.5]"),
    ({**IMPORTED, "published": {"top1": 95.0, "top5": 90.0}},
     "model.published.top5: expected at least top1 (95): an image right at top-1 is right at top-5, got 90.0"),
    ({**IMPORTED, "opset": 13}, "model.opset: not used with model.onnx (the file keeps its own opset"),
])
def test_model_section_errors_name_the_field(model, message):
    with pytest.raises(spec_mod.SpecError) as e:
        make(model)
    assert message in str(e.value) and "\n" not in str(e.value)


# -- refused at plan time, before any step: exit 2, one line, nothing written ---------------------------------------

def sweep_file(tmp_path: pathlib.Path, model: dict, targets=None) -> pathlib.Path:
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    (images / "val_label.txt").write_text("a.JPEG 1\n")
    doc = {"name": "bad", "store": str(tmp_path / "store"), "model": model,
           "dataset": {"images": str(images), "labels": str(images / "val_label.txt")},
           "targets": targets or [{"name": "ort", "batch_sizes": [1]}]}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def onnx_model(path: pathlib.Path, checksum: str, **over) -> dict:
    return {"name": "mine", "onnx": str(path), "checksum": checksum, "num_classes": 10,
            "preprocessing": {"resize": 40, "crop": 32, "mean": [0.5] * 3, "std": [0.5] * 3},
            "published": {"top1": 0.0, "top5": 0.0}, **over}


def refused(tmp_path, capsys, path) -> str:
    assert cli.main(["plan", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert not (tmp_path / "store").exists()
    return err[0]


def test_two_inputs_are_refused(tmp_path, capsys):
    f = tmp_path / "two.onnx"
    line = refused(tmp_path, capsys, sweep_file(tmp_path, onnx_model(f, classifiers.write_graph(f, "two-inputs"))))
    assert "model.onnx two.onnx: expected one image input, found 2 ('a', 'b')" in line


def test_an_nhwc_input_is_refused(tmp_path, capsys):
    f = tmp_path / "nhwc.onnx"
    line = refused(tmp_path, capsys, sweep_file(tmp_path, onnx_model(f, classifiers.write_graph(f, "nhwc"))))
    assert "input 'x_nhwc' is NHWC ['N', 32, 32, 3]; expected NCHW" in line


@pytest.fixture(scope="module")
def convnet_files(tmp_path_factory):
    pytest.importorskip("torch")
    d = tmp_path_factory.mktemp("convnet")
    net = classifiers.tiny_convnet()
    return {"net": net, "opset11": (d / "c11.onnx", classifiers.write_onnx(net, d / "c11.onnx", 32)),
            "opset17": (d / "c17.onnx", classifiers.write_onnx(net, d / "c17.onnx", 32, opset=17))}


def test_a_class_count_that_does_not_match_is_refused(tmp_path, capsys, convnet_files):
    f, checksum = convnet_files["opset11"]
    line = refused(tmp_path, capsys, sweep_file(tmp_path, onnx_model(f, checksum, num_classes=1000)))
    assert "model.num_classes: 1000, but the graph's output 'logits' has 10 classes" in line


def test_a_crop_that_does_not_match_is_refused(tmp_path, capsys, convnet_files):
    f, checksum = convnet_files["opset11"]
    model = onnx_model(f, checksum, preprocessing="resnet")
    line = refused(tmp_path, capsys, sweep_file(tmp_path, model))
    assert "model.preprocessing.crop: 224, but the graph's input 'input' is 32x32" in line


def test_an_opset_atc_cannot_take_is_refused(tmp_path, capsys, convnet_files):
    f, checksum = convnet_files["opset17"]
    target = {"name": "npu", "backend": "acl", "device": "npu:0", "engine": "atc", "accelerator": "Ascend310P3",
              "batch_sizes": [1]}
    line = refused(tmp_path, capsys, sweep_file(tmp_path, onnx_model(f, checksum), [target]))
    assert "targets[0].engine: engine target atc takes ONNX opset 9 to 13" in line and "got 17" in line
    target["convert_options"] = {"max_opset": 17}  # CANN 7 and later
    assert cli.main(["plan", str(sweep_file(tmp_path, onnx_model(f, checksum), [target]))]) == 0


def test_a_checksum_mismatch_is_refused(tmp_path, capsys, convnet_files):
    f, _ = convnet_files["opset11"]
    line = refused(tmp_path, capsys, sweep_file(tmp_path, onnx_model(f, "sha256:" + "0" * 64)))
    assert f"model.onnx {f}: sha256 is" in line and "expected " + "0" * 64 in line


def test_a_factory_that_does_not_import_is_refused(tmp_path, capsys, convnet_files):
    checksum = classifiers.save_weights(convnet_files["net"], tmp_path / "w.pth")
    model = {"name": "mine", "factory": "no_such_package.models:build", "weights": str(tmp_path / "w.pth"),
             "checksum": checksum, "num_classes": 10, "preprocessing": "resnet",
             "published": {"top1": 0.0, "top5": 0.0}}
    line = refused(tmp_path, capsys, sweep_file(tmp_path, model))
    assert "model.factory: module 'no_such_package.models' does not import (ModuleNotFoundError" in line
    model["factory"] = "tests.support.classifiers:no_such_function"
    line = refused(tmp_path, capsys, sweep_file(tmp_path, model))
    assert "model.factory: module 'tests.support.classifiers' has no attribute 'no_such_function'" in line


@pytest.mark.parametrize("factory, message", [
    ("tests.support.classifiers:raising_factory",
     "model.factory: tests.support.classifiers:raising_factory() raised RuntimeError: no such variant: tiny_v9"),
    ("tests.support.classifiers:not_a_module",
     "model.factory: tests.support.classifiers:not_a_module() returned a dict; expected a torch.nn.Module"),
    (classifiers.FACTORY, "model.num_classes: 1000, but tests.support.classifiers:tiny_convnet's network gives "
                          "logits of shape [1, 10] for one image (expected [1, 1000])"),
])
def test_a_factory_that_raises_returns_no_module_or_other_classes_is_refused(tmp_path, capsys, convnet_files, factory,
                                                                             message):
    checksum = classifiers.save_weights(convnet_files["net"], tmp_path / "w.pth")
    model = {"name": "mine", "factory": factory, "weights": str(tmp_path / "w.pth"), "checksum": checksum,
             "num_classes": 1000, "preprocessing": "resnet", "published": {"top1": 0.0, "top5": 0.0}}
    assert message in refused(tmp_path, capsys, sweep_file(tmp_path, model))


def test_without_onnx_installed_the_planner_leaves_the_graph_and_opset_to_the_export_stage(tmp_path, capsys,
                                                                                           convnet_files, monkeypatch):
    f, checksum = convnet_files["opset11"]
    target = {"name": "npu", "backend": "acl", "device": "npu:0", "engine": "atc", "accelerator": "Ascend310P3",
              "batch_sizes": [1]}
    path = sweep_file(tmp_path, onnx_model(f, checksum, num_classes=1000), [target])
    monkeypatch.setitem(sys.modules, "onnx", None)  # a controller installed without the convert extra
    assert cli.main(["plan", str(path)]) == 0
    assert "5 steps, 0 done" in capsys.readouterr().err
    monkeypatch.delitem(sys.modules, "onnx")
    assert "model.num_classes: 1000" in refused(tmp_path, capsys, path)  # with onnx: checked here


def test_the_resolved_spec_of_an_imported_model_plans_again():
    spec = make(IMPORTED)
    assert "opset" not in spec.to_dict()["model"]
    assert spec_mod.parse(yaml.safe_load(yaml.safe_dump(spec.to_dict())), "s.yaml") == spec


def test_a_checksum_reads_in_either_case_as_the_export_stage_reads_it():
    # the stage took 'SHA256:ABC...' (weights.parse_checksum lower-cases it); the sweep file refused it
    upper = make({**IMPORTED, "checksum": "SHA256:" + "A" * 64})
    assert upper.model.checksum == "sha256:" + "a" * 64 == make(IMPORTED).model.checksum  # one key for one file
