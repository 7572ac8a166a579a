"""The seed's preprocessing recipe, checked against golden outputs of the seed's own code."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from jobs.data import imaging
from tests.support.paths import FACTS

GOLDEN = FACTS / "preprocess_golden.npz"


def _golden_cases() -> list[str]:
    with np.load(GOLDEN) as z:
        return sorted(k[len("img/"):] for k in z.files if k.startswith("img/"))


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("name", _golden_cases())
def test_golden_case_matches_seed_recipe(golden, name):
    img = imaging.decode(golden[f"img/{name}"].tobytes(), name)
    out = imaging.normalize(imaging.resize_crop(img))
    expected = golden[f"expected/{name}"]
    assert out.dtype == np.float32 and out.shape == (3, 224, 224) and out.flags.c_contiguous
    assert float(np.max(np.abs(out - expected))) <= 1e-6


def test_golden_cases_cover_the_awkward_inputs():
    names = " ".join(_golden_cases())
    for kind in ("landscape", "portrait", "exact_256", "upscale", "odd", "gray", "cmyk", "png", "progressive"):
        assert kind in names


@pytest.mark.parametrize("name", _golden_cases())
def test_table_normalize_is_bit_identical_to_seed_arithmetic(golden, name):
    hwc = imaging.resize_crop(imaging.decode(golden[f"img/{name}"].tobytes(), name))
    assert np.array_equal(imaging.normalize(hwc), imaging.normalize_reference(hwc))


def test_every_byte_value_normalizes_as_the_seed():
    hwc = np.arange(256 * 3, dtype=np.int64).reshape(16, 16, 3) % 256
    hwc = np.concatenate([hwc, hwc[::-1]], axis=0).astype(np.uint8)
    assert np.array_equal(imaging.normalize(hwc), imaging.normalize_reference(hwc))


def test_to_chw_uint8_is_contiguous_transpose():
    hwc = np.random.default_rng(0).integers(0, 256, size=(224, 224, 3), dtype=np.uint8)
    chw = imaging.to_chw_uint8(hwc)
    assert chw.dtype == np.uint8 and chw.shape == (3, 224, 224) and chw.flags.c_contiguous
    assert np.array_equal(chw, hwc.transpose(2, 0, 1))


@pytest.mark.parametrize("size, resized", [
    ((500, 375), (341, 256)), ((375, 500), (256, 341)), ((160, 120), (341, 256)),
    ((333, 257), (331, 256)), ((256, 300), (256, 300)), ((300, 256), (300, 256)), ((256, 256), (256, 256)),
])
def test_resize_shorter_side_and_centre_crop(size, resized, monkeypatch):
    seen = []
    real_crop = Image.Image.crop

    def spy(self, box=None):
        seen.append((self.size, box))
        return real_crop(self, box)

    monkeypatch.setattr(Image.Image, "crop", spy)
    out = imaging.resize_crop(Image.new("RGB", size, (10, 20, 30)))
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    (got_size, box), = seen
    assert got_size == resized
    left, top = round((resized[0] - 224) / 2.0), round((resized[1] - 224) / 2.0)
    assert box == (left, top, left + 224, top + 224)


def test_decode_converts_modes_to_rgb():
    for mode in ("L", "CMYK", "RGBA", "P"):
        buf = io.BytesIO()
        Image.new(mode, (30, 20)).save(buf, format="PNG" if mode in ("RGBA", "P") else "JPEG")
        assert imaging.decode(buf.getvalue(), f"x.{mode}").mode == "RGB"


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\xff\xd8\xff\xe0" + b"\x00" * 40])
def test_undecodable_bytes_raise_with_name_and_reason(data):
    with pytest.raises(imaging.UndecodableImage) as info:
        imaging.decode(data, "broken.JPEG")
    assert info.value.name == "broken.JPEG" and info.value.reason
    assert "broken.JPEG" in str(info.value)


def test_truncated_jpeg_is_undecodable(golden):
    data = golden["img/landscape_500x375.JPEG"].tobytes()
    with pytest.raises(imaging.UndecodableImage):
        imaging.decode(data[: len(data) // 2], "cut.JPEG")


def test_natural_sort():
    names = ["img10", "img2", "img1", "a", "img02", "b1c10", "b1c9", "ILSVRC2012_val_00000010.JPEG",
             "ILSVRC2012_val_00000009.JPEG"]
    assert sorted(names, key=imaging.natural_key) == [
        "ILSVRC2012_val_00000009.JPEG", "ILSVRC2012_val_00000010.JPEG", "a", "b1c9", "b1c10",
        "img1", "img02", "img2", "img10"]
    assert imaging.natural_key("img2") < imaging.natural_key("img10")
