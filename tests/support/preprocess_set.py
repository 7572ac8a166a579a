"""The preprocess stage's tests' inputs: a fake ImageNet set of 12 images made once per module, a private copy a
test may spoil, and the stage run on them. Fixtures registered in tests/conftest.py."""

from __future__ import annotations

import pathlib
import shutil

import pytest

from jobs.stages import preprocess
from jobs.tools import fake_imagenet


@pytest.fixture(scope="module")
def fake_set(tmp_path_factory) -> pathlib.Path:
    """12 fake images (seed 3) and their labels, ``(7 * i) % 1000``; shared by a module's tests: do not spoil."""
    d = tmp_path_factory.mktemp("fake_imagenet")
    names = fake_imagenet.make_image_set(d, count=12, seed=3)
    fake_imagenet.write_labels(d, names, [(7 * i) % 1000 for i in range(len(names))])
    return d


@pytest.fixture
def images(tmp_path, fake_set) -> pathlib.Path:
    """A private copy of the fake set that a test may spoil."""
    d = tmp_path / "images"
    shutil.copytree(fake_set, d)
    return d


def run(images: pathlib.Path, out: pathlib.Path, *extra: str, labels: pathlib.Path | None = None) -> int:
    """The preprocess stage on ``images`` (labels: its labels file unless given) into ``out``; its exit code."""
    labels = labels or images / fake_imagenet.LABELS_FILE
    return preprocess.main(["--images", str(images), "--labels", str(labels), "--out", str(out), "--quiet",
                            *extra])
