"""The opt-in fast path (``--pipeline opencv``): the seed's recipe with OpenCV's JPEG decoder and resize.

Same sizes, crop offsets, channel order and normalization as ``jobs.data.imaging``; what differs is the
resize: OpenCV's INTER_LINEAR interpolates between the two nearest pixels, where PIL's BILINEAR
averages over the whole footprint of an output pixel when shrinking. Outputs are therefore close
to the seed's, not equal (docs/performance.md gives the measured differences and the top-1
agreement); the default pipeline stays PIL, bit for bit the seed's.

Decoding keeps the seed's behaviour where it matters: EXIF orientation is ignored as PIL ignores
it; OpenCV decodes JPEG and PNG only, whose values it maps to 8 bits as PIL does (other formats differ: a PGM
whose maxval is not 255 or 65535 is rescaled by PIL and not by OpenCV), and anything else, anything OpenCV
cannot decode and anything that looks truncated goes to PIL, which decodes it or raises ``UndecodableImage``
naming the file. Before OpenCV decodes anything, PIL reads the header and makes
``imaging.decode``'s checks (``imaging.check``): an image over the pixel limit or with pixels that have no 8-bit
scale is refused as the default pipeline refuses it, before its pixels take memory. 16-bit images come out of
OpenCV's ``IMREAD_COLOR`` as their top 8 bits, as ``imaging.decode`` gives them.
"""

from __future__ import annotations

import functools
from types import ModuleType

import numpy as np

from jobs import errors
from jobs.data import imaging
from jobs.data import recipe as recipe_mod

_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"
_PNG_START = b"\x89PNG\r\n\x1a\n"


@functools.cache
def require() -> ModuleType:
    """OpenCV, set up for this path; ``MissingDependency`` (one line) where it is not installed."""
    try:
        import cv2
    except ImportError as e:
        raise errors.MissingDependency("--pipeline opencv needs OpenCV; install ghostbench[opencv] "
                                       "(opencv-python-headless)") from e
    cv2.setNumThreads(1)  # one image per core: processes (shards) are the unit of parallelism
    return cv2


def decode_bgr(data: bytes, name: str = "<bytes>", max_pixels: int = recipe_mod.MAX_PIXELS) -> np.ndarray:
    """Image bytes -> uint8 HWC BGR; PIL decides for what OpenCV should not decode alone."""
    cv2 = require()
    known = imaging.check(data, name, max_pixels) is not None  # the size and pixel checks, from the header
    # OpenCV accepts a truncated JPEG with a warning; PIL refuses it, and so must this path.
    complete = not data.startswith(_JPEG_START) or data.rstrip(b"\x00").endswith(_JPEG_END)
    bgr = None
    if complete and data.startswith((_JPEG_START, _PNG_START)):
        flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
        bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    if bgr is None:
        return np.ascontiguousarray(np.asarray(imaging.decode(data, name, max_pixels))[:, :, ::-1])
    if not known:  # a format PIL does not read: its size checked once decoded
        imaging.check_size(name, bgr.shape[1], bgr.shape[0], max_pixels)
    return bgr


def resize_crop(bgr: np.ndarray, resize_short: int = recipe_mod.SEED.resize_short,
               crop: int = recipe_mod.SEED.crop) -> np.ndarray:
    """uint8 HWC BGR -> the recipe's resize and centre crop as uint8 HWC RGB (INTER_LINEAR)."""
    cv2 = require()
    h, w = bgr.shape[:2]
    size = imaging.resized_size(w, h, resize_short)
    if size != (w, h):
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR)
    top, left = imaging.crop_offsets(*size, crop)
    return np.ascontiguousarray(bgr[top:top + crop, left:left + crop, ::-1])


def pixels(data: bytes, name: str = "<bytes>", recipe: recipe_mod.Recipe = recipe_mod.SEED,
           max_pixels: int = recipe_mod.MAX_PIXELS) -> np.ndarray:
    """Image bytes -> the recipe's uint8 HWC RGB crop, the fast way."""
    return resize_crop(decode_bgr(data, name, max_pixels), recipe.resize_short, recipe.crop)
