"""The seed's image recipe (``imagenet_torch_preprocess.py``) as pure functions.

decode -> resize_crop -> normalize (float32 CHW) or to_chw_uint8 (uint8 CHW), pixel for pixel the
same as the seed: PIL ``convert('RGB')``, shorter side to 256 with BILINEAR (long side truncated),
centre crop 224 with rounded offsets, then ``/255``, minus mean, over std in float32.
"""

from __future__ import annotations

import io
import re

import numpy as np
from PIL import Image, UnidentifiedImageError

from jobs.data import recipe as recipe_mod


def pixels(data: bytes, name: str = "<bytes>", recipe: recipe_mod.Recipe = recipe_mod.SEED) -> np.ndarray:
    """Image bytes -> the uint8 HWC RGB crop the seed's recipe feeds to ``normalize``/``to_chw_uint8``."""
    return resize_crop(decode(data, name), recipe.resize_short, recipe.crop)


class UndecodableImage(Exception):
    """An image file that PIL cannot decode; the message says which file and why."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def decode(data: bytes, name: str = "<bytes>") -> Image.Image:
    """Decode image bytes (any format PIL reads, whatever the file is named) to an RGB image."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.mode == "RGB":  # convert() would copy it: load the pixels (truncated data fails here)
                img.load()
                return img
            return img.convert("RGB")  # convert() loads the pixels: truncated data fails here
    except UnidentifiedImageError as e:
        raise UndecodableImage(name, "not an image file PIL can identify") from e
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise UndecodableImage(name, f"cannot decode ({e})") from e


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
