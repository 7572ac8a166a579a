"""The seed's image recipe (``imagenet_torch_preprocess.py``) as pure functions.

decode -> resize_crop -> normalize (float32 CHW) or to_chw_uint8 (uint8 CHW), pixel for pixel the
same as the seed: PIL ``convert('RGB')``, shorter side to 256 with BILINEAR (long side truncated),
centre crop 224 with rounded offsets, then ``/255``, minus mean, over std in float32.

Pixel formats. ``decode`` gives what the seed's ``convert('RGB')`` gives wherever that is the image's own
8-bit pixels, and scales or refuses where ``convert('RGB')`` would clip, by the Pillow mode the file opens as:

- ``RGB``: as is. ``L``, ``1`` (0 and 255), ``P`` (with or without transparency), ``PA``, ``LA``, ``RGBA``,
  ``RGBX``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``: ``convert('RGB')``, the seed's pixels exactly; alpha and
  palette transparency are dropped as the seed drops them (a transparent pixel keeps its stored colour), and
  Pillow's warning about palette transparency is not printed. 16-bit colour PNGs open as ``RGB``/``RGBA``
  already reduced to their top 8 bits by Pillow, as OpenCV reduces them.
- ``I;16`` (``I;16L``, ``I;16B``, ``I;16N``: 16-bit greyscale PNG or TIFF) and ``I`` from a 16-bit PGM:
  the top 8 bits of each value (``v >> 8``), as OpenCV's ``imread(IMREAD_COLOR)`` and libpng's
  ``png_set_strip_16`` give them. Here ghostbench differs from the seed on purpose: ``convert('RGB')`` clips
  every value above 255, so a 16-bit image became almost all white.
- ``I`` from any other format (32-bit integers) and ``F`` (32-bit floats): refused (``UndecodableImage``, kind
  ``undecodable``), since no 8-bit scale is defined for them and the seed's would clip.

Size. An image of more than ``max_pixels`` (width x height; default ``recipe.MAX_PIXELS``, Pillow's own
decompression-bomb threshold) is refused from its header, before its pixels are decoded (``UndecodableImage``,
kind ``too_large``): Pillow's ``DecompressionBombWarning`` is not printed, the one-line reason says it, and the
memory an image may take stays bounded (about 3 bytes a pixel, twice that for CMYK and 16-bit greyscale).
Reducing a JPEG while decoding (``Image.draft``) is not used: its pixels are not the recipe's.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Callable, Iterator
from typing import TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from jobs.data import recipe as recipe_mod

T = TypeVar("T")


def pixels(data: bytes, name: str = "<bytes>", recipe: recipe_mod.Recipe = recipe_mod.SEED,
           max_pixels: int = recipe_mod.MAX_PIXELS) -> np.ndarray:
    """Image bytes -> the uint8 HWC RGB crop the seed's recipe feeds to ``normalize``/``to_chw_uint8``."""
    return resize_crop(decode(data, name, max_pixels), recipe.resize_short, recipe.crop)


UNDECODABLE, TOO_LARGE = "undecodable", "too_large"
"""The kinds of ``UndecodableImage``: the reason kinds preprocessing counts (``index.json`` ``counts``)."""


class UndecodableImage(Exception):
    """An image file preprocessing cannot use; the message says which file and why. ``kind``: ``undecodable``
    (not an image PIL reads, truncated, or pixels with no 8-bit scale) or ``too_large`` (over the pixel limit)."""

    def __init__(self, name: str, reason: str, kind: str = UNDECODABLE):
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason
        self.kind = kind


_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_NO_SCALE = {"I": "32-bit integer", "F": "32-bit floating-point"}


@contextlib.contextmanager
def _pillow_quiet() -> Iterator[None]:
    """Pillow's warnings that ``decode`` answers itself: the pixel limit (its own one-line reason) and palette
    transparency (dropped, as the seed drops it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", "Palette images with Transparency", UserWarning)
        yield


def check_size(name: str, width: int, height: int, max_pixels: int) -> None:
    """``UndecodableImage`` (kind ``too_large``) for an image of more than ``max_pixels``."""
    if width * height > max_pixels:
        raise UndecodableImage(name, f"{width}x{height} is {width * height:,} pixels, over the limit of "
                                     f"{max_pixels:,} (--max-pixels)", TOO_LARGE)


def _check(img: Image.Image, name: str, max_pixels: int) -> None:
    """Refuse, from the header alone, an image over ``max_pixels`` or with pixels that have no 8-bit scale."""
    check_size(name, *img.size, max_pixels)
    if img.mode in _NO_SCALE and not (img.mode == "I" and img.format == "PPM"):
        raise UndecodableImage(name, f"{_NO_SCALE[img.mode]} pixels (Pillow mode {img.mode}, {img.format}) have no "
                                     "8-bit scale; save the image with 8 or 16 bits per channel")


def _open(data: bytes, name: str, max_pixels: int, use: Callable[[Image.Image], T]) -> T:
    """``use`` of the opened, checked image; PIL's failures as ``UndecodableImage`` naming the file."""
    try:
        with _pillow_quiet(), Image.open(io.BytesIO(data)) as img:
            _check(img, name, max_pixels)
            return use(img)
    except UnidentifiedImageError as e:
        raise UndecodableImage(name, "not an image file PIL can identify") from e
    except Image.DecompressionBombError as e:  # over twice Pillow's own limit: refused while opening
        raise UndecodableImage(name, f"over the limit of {max_pixels:,} pixels (--max-pixels; {e})", TOO_LARGE) from e
    except (OSError, SyntaxError, ValueError) as e:
        raise UndecodableImage(name, f"cannot decode ({e})") from e


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":  # convert() would copy it: load the pixels (truncated data fails here)
        img.load()
        return img
    if img.mode in _SIXTEEN_BIT or img.mode == "I":  # I here: a 16-bit PGM (values 0..65535); others are refused
        top = (np.asarray(img) >> 8).astype(np.uint8)  # asarray loads the pixels: truncated data fails here
        return Image.fromarray(top).convert("RGB")
    return img.convert("RGB")  # convert() loads the pixels: truncated data fails here


def decode(data: bytes, name: str = "<bytes>", max_pixels: int = recipe_mod.MAX_PIXELS) -> Image.Image:
    """Decode image bytes (any format PIL reads, whatever the file is named) to an RGB image, by the rules of the
    module's docstring; ``UndecodableImage`` (naming the file, the reason and its kind) when it cannot be used."""
    return _open(data, name, max_pixels, _to_rgb)


def check(data: bytes, name: str = "<bytes>", max_pixels: int = recipe_mod.MAX_PIXELS) -> str | None:
    """``decode``'s size and pixel-format checks from the header alone, for another decoder (OpenCV): the image's
    Pillow mode, ``UndecodableImage`` when they refuse it, None when PIL cannot read the header."""
    try:
        return _open(data, name, max_pixels, lambda img: img.mode)
    except UndecodableImage as e:
        if e.kind == TOO_LARGE or e.__cause__ is None:  # refused by the checks, not a header PIL cannot read
            raise
        return None


def resized_size(w: int, h: int, resize_short: int = recipe_mod.SEED.resize_short) -> tuple[int, int]:
    """(width, height) after the recipe's resize: shorter side ``resize_short``, long side truncated.

    An image whose shorter side already is ``resize_short`` keeps its size (the seed skips it).
    """
    if (w <= h and w == resize_short) or (h <= w and h == resize_short):
        return w, h
    if w < h:
        return resize_short, int(resize_short * h / w)
    return int(resize_short * w / h), resize_short


def crop_offsets(w: int, h: int, crop: int = recipe_mod.SEED.crop) -> tuple[int, int]:
    """(top, left) of the centre crop, rounded as the seed's ``int(round(...))``."""
    return round((h - crop) / 2.0), round((w - crop) / 2.0)


def resize_crop(img: Image.Image, resize_short: int = recipe_mod.SEED.resize_short, crop: int = recipe_mod.SEED.crop) -> np.ndarray:
    """Shorter side to ``resize_short`` (BILINEAR), centre crop ``crop``: a uint8 HWC RGB array."""
    size = resized_size(*img.size, resize_short)
    if size != img.size:
        img = img.resize(size, Image.BILINEAR)
    top, left = crop_offsets(*size, crop)
    img = img.crop((left, top, left + crop, top + crop))
    return np.asarray(img, dtype=np.uint8)


_LUTS: dict[tuple, np.ndarray] = {}


def _lut(mean, std) -> np.ndarray:
    """[3, 256] float32: the seed's arithmetic applied to every uint8 value, per channel."""
    key = (tuple(float(m) for m in mean), tuple(float(s) for s in std))
    lut = _LUTS.get(key)
    if lut is None:
        v = np.arange(256, dtype=np.float32)[None, :].repeat(3, axis=0)
        v = v / 255.0
        v -= np.array(key[0], dtype=np.float32)[:, None]
        v /= np.array(key[1], dtype=np.float32)[:, None]
        lut = _LUTS[key] = np.ascontiguousarray(v, dtype=np.float32)
    return lut


def normalize(hwc: np.ndarray, mean=recipe_mod.SEED.mean, std=recipe_mod.SEED.std) -> np.ndarray:
    """uint8 HWC -> contiguous float32 CHW: ``/255``, minus mean, over std, all in float32.

    Each output value depends only on its channel and input byte, so the seed's float32 arithmetic
    is done once per (channel, byte) into a table and looked up: bit-identical, and faster.
    """
    if hwc.dtype != np.uint8 or hwc.ndim != 3 or hwc.shape[2] != 3:
        raise ValueError(f"expected a uint8 HWC RGB array, got {hwc.dtype} {hwc.shape}")
    lut = _lut(mean, std)
    chw = to_chw_uint8(hwc)
    out = np.empty(chw.shape, dtype=np.float32)
    for c in range(3):
        np.take(lut[c], chw[c], out=out[c])
    return out


def normalize_reference(hwc: np.ndarray, mean=recipe_mod.SEED.mean, std=recipe_mod.SEED.std) -> np.ndarray:
    """The seed's own arithmetic, step by step (kept for tests of ``normalize``)."""
    img = np.array(hwc, dtype=np.float32).transpose(2, 0, 1)
    img = img / 255.0
    img -= np.array(mean, dtype=np.float32)[:, None, None]
    img /= np.array(std, dtype=np.float32)[:, None, None]
    return np.ascontiguousarray(img)


def to_chw_uint8(hwc: np.ndarray) -> np.ndarray:
    """uint8 HWC -> contiguous uint8 CHW."""
    return np.ascontiguousarray(hwc.transpose(2, 0, 1), dtype=np.uint8)


_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key that orders digit runs by value: 'img2' < 'img10'."""
    parts = _DIGITS.split(name)  # text, digits, text, ...: the same kind at the same position
    return (tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), name)
