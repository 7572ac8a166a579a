"""Importing an ONNX classifier: the graph checks, the batch axis, the uint8 fold, and the stages on the result
(export --onnx, convert refusing a batch size a kept fixed axis cannot run)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from jobs import errors
from jobs.models import card as card_mod
from jobs.models import onnx_import
from jobs.stages import convert, export
from tests.support import classifiers

FIELDS = {"crop": "--card crop", "num_classes": "--card num_classes"}
CARD = {"num_classes": 10, "label_offset": 0, "resize": 40, "crop": 32, "mean": [0.5, 0.4, 0.3],
        "std": [0.2, 0.25, 0.3]}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx")
    return {"dynamic": (d / "dyn.onnx", classifiers.write_onnx(classifiers.tiny_convnet(), d / "dyn.onnx", 32)),
            "fixed": (d / "fix.onnx", classifiers.write_onnx(classifiers.tiny_resnet(), d / "fix.onnx", 32, batch=1)),
            "stuck": (d / "stuck.onnx", classifiers.write_onnx(classifiers.tiny_resnet(fixed_batch=2),
                                                               d / "stuck.onnx", 32, batch=2))}


def logits(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_a_fixed_batch_axis_is_made_dynamic_when_the_graph_runs_so(files):
    model = onnx_import.load(files["fixed"][0], "f")
    facts = onnx_import.inspect(model, 32, 10, "f", FIELDS)
    assert facts.fixed_batch == 1 and facts.opset == 11 and facts.input["shape"] == [1, 3, 32, 32]
    settled, fixed, changes = onnx_import.settle_batch(model, facts, 32, 10)
    assert fixed is None and "batch axis made dynamic" in changes[0]
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    one_by_one = np.concatenate([logits(model, x[i:i + 1]) for i in range(3)])
    np.testing.assert_allclose(logits(settled, x), one_by_one, rtol=1e-5, atol=1e-5)


def test_a_batch_axis_the_graph_needs_stays_fixed(files):
    model = onnx_import.load(files["stuck"][0], "f")
    facts = onnx_import.inspect(model, 32, 10, "f", FIELDS)
    _, fixed, changes = onnx_import.settle_batch(model, facts, 32, 10)
    assert fixed == 2 and changes[-1].startswith("batch axis kept at 2: the graph does not run at batch 3")


def test_the_uint8_fold_matches_normalizing_first(files):
    model = onnx_import.load(files["dynamic"][0], "f")
    folded = onnx_import.fold_uint8(model, CARD["mean"], CARD["std"])
    pixels = np.random.default_rng(1).integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
    normalized = ((pixels / 255.0 - np.reshape(CARD["mean"], (1, 3, 1, 1))) /
                  np.reshape(CARD["std"], (1, 3, 1, 1))).astype(np.float32)
    np.testing.assert_allclose(logits(folded, pixels), logits(model, normalized), rtol=1e-4, atol=1e-4)


def test_a_card_is_checked_key_by_key():
    with pytest.raises(errors.BadInput, match=r"--card std: expected three numbers > 0"):
        card_mod.ModelCard.from_dict("m", {**CARD, "std": [0.2, 0.0, 0.3]})
    with pytest.raises(errors.BadInput, match=r"--card crop: required"):
        card_mod.ModelCard.from_dict("m", {k: v for k, v in CARD.items() if k != "crop"})


def card_args() -> list[str]:
    return [a for k, v in CARD.items() for a in ("--card", f"{k}={json.dumps(v)}")]


@pytest.mark.parametrize("mode", ["float32", "uint8"])
def test_export_imports_the_file_and_records_what_it_found_and_changed(tmp_path, files, mode):
    path, checksum = files["fixed"]
    out = tmp_path / "export"
    assert export.main(["--model", "mine", "--onnx", str(path), "--checksum", checksum, "--input-dtype", mode,
                        *card_args(), "--out", str(out), "--quiet"]) == 0
    record = json.loads((out / "export_record.json").read_text())
    assert record["import"]["found"]["input"]["shape"] == [1, 3, 32, 32]
    assert record["input"] == {"name": "input", "dtype": "uint8" if mode == "uint8" else "float32",
                               "shape": ["batch", 3, 32, 32]}
    assert record["parity"]["relative"] <= export.PARITY_TOLERANCE and record["card"]["crop"] == 32
    assert record["normalization_folded"] is (mode == "uint8")


def test_export_refuses_a_checksum_mismatch_and_commits_nothing(tmp_path, files):
    path, _ = files["dynamic"]
    out = tmp_path / "export"
    assert export.main(["--model", "mine", "--onnx", str(path), "--checksum", "sha256:" + "1" * 64, *card_args(),
                        "--out", str(out), "--quiet"]) == 2
    assert not (out / "_manifest.json").exists()


def test_convert_refuses_a_batch_size_a_kept_fixed_axis_cannot_run(tmp_path, files, capsys):
    path, checksum = files["stuck"]
    out = tmp_path / "export"
    assert export.main(["--model", "mine", "--onnx", str(path), "--checksum", checksum, *card_args(),
                        "--out", str(out), "--quiet"]) == 0
    assert convert.main(["--model", str(out), "--batch-size", "4", "--out", str(tmp_path / "e4"), "--quiet"]) == 2
    assert "--batch-size 4: model 'mine' runs only at batch size 2" in capsys.readouterr().err
    assert convert.main(["--model", str(out), "--batch-size", "2", "--out", str(tmp_path / "e2"), "--quiet"]) == 0


@pytest.mark.parametrize("factory, message", [
    ("tests.support.classifiers:raising_factory", "--factory: tests.support.classifiers:raising_factory() raised "
                                                  "RuntimeError: no such variant: tiny_v9"),
    ("tests.support.classifiers:not_a_module", "--factory: tests.support.classifiers:not_a_module() returned a dict; "
                                               "expected a torch.nn.Module"),
])
def test_export_of_a_factory_that_raises_or_returns_no_module_is_one_line(tmp_path, capsys, factory, message):
    checksum = classifiers.save_weights(classifiers.tiny_convnet(), tmp_path / "w.pth")
    out = tmp_path / "export"
    assert export.main(["--model", "mine", "--factory", factory, "--weights", str(tmp_path / "w.pth"), "--checksum",
                        checksum, *card_args(), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"ghostbench export: error: {message}"] and not (out / "_manifest.json").exists()
