"""The infer and eval stages on a tiny ONNX model and a few fake images: the ``harness_work`` fixture and the
helpers that build engines, run infer and read predictions in it (tests/stages/test_infer_eval.py,
tests/harness/test_device_timing.py). Registered as a plugin in tests/conftest.py."""

from __future__ import annotations

import csv
import pathlib

import pytest

from jobs import store
from jobs.artifacts import commit
from jobs.stages import convert, infer, preprocess
from jobs.tools import fake_imagenet
from tests.support import tiny_model

N_IMAGES = 10


@pytest.fixture(scope="module")
def harness_work(tmp_path_factory):
    """A folder with N_IMAGES fake images preprocessed in two shards (``data-float32``, ``data-uint8``) and the
    tiny model committed as an export for each input mode (``export-float32``, ``export-uint8``)."""
    root = tmp_path_factory.mktemp("harness")
    images = root / "images"
    names = fake_imagenet.make_image_set(images, count=N_IMAGES, seed=3)
    fake_imagenet.write_labels(images, names, [i % 7 for i in range(len(names))])
    for mode in ("float32", "uint8"):
        assert preprocess.main(["--images", str(images), "--labels", str(images / "val_label.txt"),
                                "--mode", mode, "--num-shards", "2", "--shard", "0",
                                "--out", str(root / f"data-{mode}"), "--quiet"]) == 0
        assert preprocess.main(["--images", str(images), "--labels", str(images / "val_label.txt"),
                                "--mode", mode, "--num-shards", "2", "--shard", "1",
                                "--out", str(root / f"data-{mode}"), "--quiet"]) == 0
        with commit.Output(store.open_store(root / f"export-{mode}"), "export", {}) as out:
            tiny_model.write(out.dir / "model.onnx", mode)
    return root


def make_engine(work: pathlib.Path, mode: str, bs: int) -> str:
    out = work / f"engine-{mode}-{bs}"
    assert convert.main(["--model", str(work / f"export-{mode}"), "--batch-size", str(bs),
                         "--out", str(out), "--quiet"]) == 0
    return str(out)


def make_poisoned_engine(work: pathlib.Path, bs: int) -> str:
    """An engine of the tiny model whose logits hold a NaN and an infinity for every image (``tiny_model.write``'s
    ``poisoned``), made once per folder and batch size."""
    export, out = work / "export-poisoned", work / f"engine-poisoned-{bs}"
    if commit.read_manifest(store.open_store(export)) is None:
        with commit.Output(store.open_store(export), "export", {}) as made:
            tiny_model.write(made.dir / "model.onnx", "float32", poisoned=True)
    assert convert.main(["--model", str(export), "--batch-size", str(bs), "--out", str(out), "--quiet"]) == 0
    return str(out)


def run_infer(work, out_name, *extra, overlap=None):
    """The infer stage in this process; one repetition unless ``extra`` asks for more (most tests time nothing)."""
    out = work / out_name
    reps = [] if "--repetitions" in extra else ["--repetitions", "1"]
    code = infer.main(["--out", str(out), "--quiet", *reps, *extra], overlap=overlap)
    return code, out


def read_predictions(out):
    with open(out / "predictions.csv") as f:
        return list(csv.DictReader(f))
