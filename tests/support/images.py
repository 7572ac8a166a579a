"""Image files the fake ImageNet does not make: every pixel format (Pillow mode) an image can open as, and a PNG
that only claims a huge size (its header, no pixels: a decompression bomb costs nothing to make)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

W, H = 40, 30
"""The size of ``mode_image``'s images."""


def _ramp(dtype, top: float) -> np.ndarray:
    """A [H, W] ramp from 0 to ``top`` with a little structure, so that a clipped image shows."""
    y, x = np.mgrid[0:H, 0:W]
    return ((x * W + y * 7) % (W * H) / (W * H) * top).astype(dtype)


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **options)
    return out.getvalue()


def mode_image(mode: str) -> bytes:
    """An image file that Pillow opens in ``mode``; ``"I (PGM)"`` is a 16-bit PGM (Pillow: mode I, 0..65535),
    ``"I;16B"`` a big-endian 16-bit TIFF, ``"P+transparency"`` a PNG palette image with one transparent index and
    ``"P+alpha bytes"`` one with an alpha per index (Pillow warns when it converts that to RGB)."""
    rgb = np.stack([_ramp(np.uint8, 255), _ramp(np.uint8, 255)[::-1], np.full((H, W), 90, np.uint8)], axis=2)
    base = Image.fromarray(rgb)
    if mode == "I;16":
        return encode(Image.fromarray(_ramp(np.uint16, 65535)), "PNG")
    if mode == "I;16B":
        return encode(Image.fromarray(_ramp(np.uint16, 65535).astype(">u2")), "TIFF")
    if mode == "I (PGM)":
        return encode(Image.fromarray(_ramp(np.uint16, 65535)), "PPM")
    if mode == "I":
        return encode(Image.fromarray(_ramp(np.int32, 1_000_000)), "TIFF")
    if mode == "F":
        return encode(Image.fromarray(_ramp(np.float32, 3.0)), "TIFF")
    if mode == "P+transparency":
        return encode(base.convert("P"), "PNG", transparency=3)
    if mode == "P+alpha bytes":
        p = base.convert("P")
        return encode(p, "PNG", transparency=bytes(range(256)))
    if mode == "CMYK":
        return encode(base.convert(mode), "JPEG", quality=95)
    if mode == "YCbCr":
        return encode(base.convert(mode), "TIFF")
    if mode in ("RGBA", "LA", "PA"):
        img = base.convert("RGBA")
        img.putalpha(Image.fromarray(_ramp(np.uint8, 255)))
        return encode(img.convert(mode) if mode != "RGBA" else img, "TIFF" if mode == "PA" else "PNG")
    return encode(base.convert(mode), "PNG")


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` 8-bit RGB pixels and holds one row of them: Pillow reads its size
    from the header, and fails only when it decodes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * (1 + 3 * 16)))
            + chunk(b"IEND", b""))
