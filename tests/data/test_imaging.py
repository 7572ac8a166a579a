"""The seed's preprocessing recipe, checked against golden outputs of the seed's own code."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image, ImageFile

from jobs.data import imaging, recipe
from tests.support import images as image_files
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


SEED_MODES = ["1", "L", "P", "P+transparency", "P+alpha bytes", "PA", "LA", "RGBA", "RGB", "CMYK", "YCbCr"]


@pytest.mark.parametrize("mode", SEED_MODES)
def test_eight_bit_modes_decode_to_the_seeds_pixels_without_a_warning(mode):
    """The seed's convert('RGB') for every 8-bit mode: alpha and palette transparency dropped as it drops them, and
    Pillow's warning about palette transparency (raw, on stderr) not printed."""
    data = image_files.mode_image(mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = imaging.decode(data, f"x.{mode}")
    with warnings.catch_warnings(), Image.open(io.BytesIO(data)) as img:
        warnings.simplefilter("ignore")
        assert img.mode == mode.split("+")[0]
        seed = img.convert("RGB")
    assert got.mode == "RGB" and got.size == (image_files.W, image_files.H)
    assert np.array_equal(np.asarray(got), np.asarray(seed))


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I (PGM)"])
def test_sixteen_bit_images_keep_their_top_eight_bits(mode):
    """convert('RGB') clips 16-bit values to 255 (an all-white image); OpenCV and libpng keep the top 8 bits."""
    data = image_files.mode_image(mode)
    with Image.open(io.BytesIO(data)) as img:
        assert img.mode == mode.split(" ")[0]
        values = np.asarray(img).astype(np.int64)
    got = np.asarray(imaging.decode(data, "x"))
    assert np.array_equal(got, np.repeat((values >> 8)[:, :, None], 3, axis=2).astype(np.uint8))
    assert (got == 255).mean() < 0.01  # convert('RGB') made nearly every pixel 255


@pytest.mark.parametrize("mode, what", [("I", "32-bit integer"), ("F", "32-bit floating-point")])
def test_wide_pixels_with_no_8_bit_scale_are_refused_with_their_reason(mode, what):
    with pytest.raises(imaging.UndecodableImage) as info:
        imaging.decode(image_files.mode_image(mode), "wide.tif")
    assert info.value.kind == "undecodable"
    assert info.value.reason == (f"{what} pixels (Pillow mode {mode}, TIFF) have no 8-bit scale; save the image "
                                 "with 8 or 16 bits per channel")


def test_the_pixel_limit_is_pillows_and_refuses_from_the_header(monkeypatch):
    assert recipe.MAX_PIXELS == Image.MAX_IMAGE_PIXELS  # typed once in recipe: a Pillow upgrade moving it shows here
    data = image_files.mode_image("RGB")  # 40x30

    def no_load(self):
        raise AssertionError("decoded the pixels of an image over the limit")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_load)
    with pytest.raises(imaging.UndecodableImage) as info:
        imaging.decode(data, "big.png", max_pixels=1199)
    assert info.value.kind == "too_large"
    assert info.value.reason == "40x30 is 1,200 pixels, over the limit of 1,199 (--max-pixels)"
    monkeypatch.undo()
    assert imaging.decode(data, "fits.png", max_pixels=1200).size == (40, 30)


@pytest.mark.parametrize("size", [(12_000, 12_000), (20_000, 10_000)])  # Pillow warns / Pillow refuses
def test_a_decompression_bomb_is_too_large_in_one_line_without_pillows_warning(size):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(imaging.UndecodableImage) as info:
            imaging.decode(image_files.png_header(*size), "bomb.png")
    assert info.value.kind == "too_large" and "over the limit of 89,478,485" in info.value.reason


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
