"""The opt-in OpenCV pipeline: close to the seed's output, same geometry, the seed's decoding rules."""

from __future__ import annotations

import dataclasses
import io
import json
import sys

import numpy as np
import pytest
from PIL import Image

from jobs import errors
from jobs.artifacts import shards
from jobs.data import imaging, recipe
from jobs.stages import preprocess
from jobs.tools import fake_imagenet
from tests.support import images as image_files
from tests.support.paths import FACTS

cv2 = pytest.importorskip("cv2", reason="OpenCV is in the test extra; the opencv pipeline is optional")
from jobs.data import imaging_opencv

GOLDEN = FACTS / "preprocess_golden.npz"
RECIPE = dataclasses.replace(recipe.SEED, pipeline="opencv")
# INTER_LINEAR does not average when shrinking: pixels differ from PIL's BILINEAR by a few levels,
# most by none or one (measured on the goldens: see docs/performance.md for the ImageNet-like set).
MAX_NORMALIZED_DIFF = 2.5


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN) as z:
        return {k: z[k] for k in z.files}


def _cases() -> list[str]:
    with np.load(GOLDEN) as z:
        return sorted(k[len("img/"):] for k in z.files if k.startswith("img/"))


@pytest.mark.parametrize("name", _cases())
def test_golden_cases_are_close_with_the_same_geometry(golden, name):
    out = imaging.normalize(imaging_opencv.pixels(golden[f"img/{name}"].tobytes(), name, recipe=RECIPE))
    expected = golden[f"expected/{name}"]
    assert out.shape == expected.shape == (3, 224, 224)
    diff = np.abs(out - expected)
    assert float(diff.max()) <= MAX_NORMALIZED_DIFF
    assert float(diff.mean()) < 0.1  # a shifted crop or swapped channels would be far above this


def test_an_image_needing_no_resize_decodes_to_the_seeds_pixels(golden):
    name = next(n for n in _cases() if n.startswith("exact_256"))
    out = imaging.normalize(imaging_opencv.pixels(golden[f"img/{name}"].tobytes(), name, recipe=RECIPE))
    assert float(np.abs(out - golden[f"expected/{name}"]).max()) <= 1e-6  # same libjpeg IDCT, RGB order


def _jpeg(arr: np.ndarray, **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95, **save)
    return buf.getvalue()


def test_exif_orientation_is_ignored_as_the_seed_ignores_it():
    arr = np.zeros((300, 400, 3), dtype=np.uint8)
    arr[:, :200] = 255  # left half white: a rotation would move it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW" in the EXIF orientation tag
    data = _jpeg(arr, exif=exif.tobytes())
    seed = imaging.pixels(data)
    fast = imaging_opencv.pixels(data, recipe=RECIPE)
    assert fast.shape == seed.shape == (224, 224, 3)
    assert float(np.abs(fast.astype(int) - seed).mean()) < 2


def test_truncated_jpeg_is_refused_like_the_seed():
    data = _jpeg(np.full((300, 400, 3), 90, dtype=np.uint8))[:-2000]
    with pytest.raises(imaging.UndecodableImage) as e:
        imaging_opencv.pixels(data, "cut.JPEG", recipe=RECIPE)
    assert e.value.name == "cut.JPEG"


def test_not_an_image_is_refused_naming_it():
    with pytest.raises(imaging.UndecodableImage, match="notes.JPEG"):
        imaging_opencv.pixels(b"just some text", "notes.JPEG", recipe=RECIPE)


def test_a_format_opencv_lacks_goes_to_pil():
    buf = io.BytesIO()
    Image.fromarray(np.full((260, 300, 3), 40, dtype=np.uint8)).save(buf, format="GIF")
    seed = imaging.pixels(buf.getvalue())
    assert np.array_equal(imaging_opencv.pixels(buf.getvalue(), recipe=RECIPE), seed)


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I (PGM)", "RGBA", "P+transparency", "LA", "1"])
def test_modes_decode_as_the_seed_path_decodes_them(mode):
    """OpenCV's IMREAD_COLOR keeps a 16-bit image's top 8 bits, and so does the seed path now; alpha and palette
    transparency are dropped by both."""
    data = image_files.mode_image(mode)
    assert np.array_equal(imaging_opencv.decode_bgr(data, "x")[:, :, ::-1], np.asarray(imaging.decode(data, "x")))


@pytest.mark.parametrize("mode", ["I", "F"])
def test_wide_pixels_are_refused_as_the_seed_path_refuses_them(mode):
    data = image_files.mode_image(mode)
    with pytest.raises(imaging.UndecodableImage) as fast:
        imaging_opencv.decode_bgr(data, "wide.tif")
    with pytest.raises(imaging.UndecodableImage) as seed:
        imaging.decode(data, "wide.tif")
    assert (fast.value.kind, fast.value.reason) == (seed.value.kind, seed.value.reason)


def test_an_image_over_the_limit_is_refused_before_opencv_decodes_it(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("OpenCV decoded an image over the limit")

    monkeypatch.setattr(cv2, "imdecode", boom)
    with pytest.raises(imaging.UndecodableImage) as info:
        imaging_opencv.pixels(image_files.png_header(12_000, 12_000), "big.png", recipe=RECIPE)
    assert info.value.kind == "too_large" and "12000x12000 is 144,000,000 pixels" in info.value.reason
    with pytest.raises(imaging.UndecodableImage, match="over the limit of 1,199"):
        imaging_opencv.pixels(image_files.mode_image("RGB"), "x.png", recipe=RECIPE, max_pixels=1199)


def test_stage_records_the_pipeline_and_keeps_default_records_unchanged(tmp_path):
    img = tmp_path / "img"
    names = fake_imagenet.make_image_set(img, count=6, seed=2)
    fake_imagenet.write_labels(img, names, list(range(6)))

    def stage(out, *extra):
        assert preprocess.main(["--images", str(img), "--labels", str(img / "val_label.txt"), "--out", str(out),
                                "--quiet", *extra]) == 0
        return shards.open_dataset(str(out))

    fast, seed = stage(tmp_path / "fast", "--pipeline", "opencv"), stage(tmp_path / "seed")
    assert fast.recipe["pipeline"] == "opencv" and "pipeline" not in seed.recipe
    manifest = json.loads((tmp_path / "fast" / shards.shard_dir_name(0, 1) / "_manifest.json").read_text())
    assert manifest["params"]["pipeline"] == "opencv"
    a, _ = next(fast.iter_batches(6, reuse=False))
    b, _ = next(seed.iter_batches(6, reuse=False))
    assert 0 < float(np.abs(a - b).max()) <= MAX_NORMALIZED_DIFF


def test_missing_opencv_is_one_line_with_its_exit_code(tmp_path, monkeypatch, capsys):
    img = tmp_path / "img"
    names = fake_imagenet.make_image_set(img, count=2, seed=2)
    fake_imagenet.write_labels(img, names, [0, 1])
    imaging_opencv.require.cache_clear()
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    try:
        rc = preprocess.main(["--images", str(img), "--labels", str(img / "val_label.txt"),
                              "--out", str(tmp_path / "out"), "--pipeline", "opencv", "--quiet"])
    finally:
        imaging_opencv.require.cache_clear()
    assert rc == errors.MissingDependency.exit_code
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("ghostbench preprocess:")]
    assert len(lines) == 1 and "ghostbench[opencv]" in lines[0]
    assert not (tmp_path / "out" / shards.shard_dir_name(0, 1) / "_manifest.json").exists()


@pytest.mark.parametrize("maxval, dtype, value", [(4095, ">u2", 2048), (100, "u1", 50), (255, "u1", 77)])
def test_a_pgm_of_any_maxval_gives_the_seed_paths_pixels(maxval, dtype, value):
    """PIL rescales a PNM's values by its maxval, OpenCV does not: the fast path leaves such formats to PIL."""
    data = f"P5\n300 300\n{maxval}\n".encode() + np.full((300, 300), value, dtype).tobytes()
    assert np.array_equal(imaging_opencv.pixels(data, "a.pgm"), imaging.pixels(data, "a.pgm"))
