"""A small, deterministic fake ImageNet validation set for tests and demos.

``python -m jobs.tools.fake_imagenet DIR [--count 48] [--seed 0]`` writes ``ILSVRC2012_val_00000001.JPEG``
... and a ``val_label.txt`` with placeholder labels (``i % 1000``), then prints DIR.

The images cover what the preprocess recipe must handle: landscape and portrait photos-sized images,
small ones that are upscaled, a shorter side of exactly 256, odd sizes, greyscale, CMYK, a
progressive JPEG and a PNG named ``.JPEG``. Their content is smooth gradients, shapes and a little
noise, so that a CNN gives varied predictions.
"""

from __future__ import annotations

import argparse
import io
import pathlib
import sys
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

LABELS_FILE = "val_label.txt"

# (width, height) cycled through; mode and format special cases are placed by index below.
_SIZES = [(500, 375), (375, 500), (500, 333), (160, 120), (256, 300), (333, 257), (640, 480),
          (300, 256), (400, 400), (281, 499), (500, 281), (199, 263)]


def image_name(i: int) -> str:
    """The ImageNet validation file name of the 0-based image ``i``."""
    return f"ILSVRC2012_val_{i + 1:08d}.JPEG"


def _content(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), dtype=np.float32)
    for c in range(3):
        a, b, ph = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0, 6.3)
        freq = rng.uniform(0.005, 0.05)
        img[..., c] = 128 + 90 * np.sin(freq * (a * x + b * y) + ph) + rng.uniform(-30, 30)
    img += rng.normal(0, 8, size=img.shape).astype(np.float32)
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(pil)
    for _ in range(int(rng.integers(2, 7))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(10, max(11, w // 2))), y0 + int(rng.integers(10, max(11, h // 2)))
        color = tuple(int(v) for v in rng.integers(0, 256, size=3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=color)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=color)
    return pil


def _encode(i: int, pil: Image.Image) -> bytes:
    out = io.BytesIO()
    if i % 16 == 5:  # a PNG, named .JPEG as in the real validation set's odd files
        pil.save(out, format="PNG")
    elif i % 16 == 7:
        pil.convert("CMYK").save(out, format="JPEG", quality=90)
    elif i % 16 == 11:
        pil.save(out, format="JPEG", quality=85, progressive=True)
    elif i % 8 == 2:
        pil.convert("L").save(out, format="JPEG", quality=90)
    else:
        pil.save(out, format="JPEG", quality=88)
    return out.getvalue()


def make_image(directory: str | pathlib.Path, i: int, seed: int = 0, attempt: int = 0) -> str:
    """Write the 0-based image ``i`` into ``directory``; returns its name. ``attempt`` > 0 draws other content for
    the same name, size and format (the demo redraws an image its reference model ranks too close to call)."""
    rng = np.random.default_rng([seed, i] if attempt == 0 else [seed, i, attempt])
    w, h = _SIZES[i % len(_SIZES)]
    name = image_name(i)
    (pathlib.Path(directory) / name).write_bytes(_encode(i, _content(rng, w, h)))
    return name


def make_image_set(directory: str | pathlib.Path, count: int = 48, seed: int = 0) -> list[str]:
    """Write ``count`` images into ``directory``; returns their names in order. Same seed, same bytes."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return [make_image(directory, i, seed) for i in range(count)]


def write_labels(directory: str | pathlib.Path, names: Sequence[str], labels: Sequence[int]) -> pathlib.Path:
    """Write ``val_label.txt`` (``name label`` per line, 0-based labels) into ``directory``."""
    if len(names) != len(labels):
        raise ValueError(f"{len(names)} names but {len(labels)} labels")
    path = pathlib.Path(directory) / LABELS_FILE
    path.write_text("".join(f"{n} {int(lab)}\n" for n, lab in zip(names, labels)))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.tools.fake_imagenet", description=__doc__.splitlines()[0])
    p.add_argument("directory", help="where to write the images and val_label.txt")
    p.add_argument("--count", type=int, default=48, help="number of images (default 48)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = p.parse_args(argv)
    if args.count < 1:
        p.error(f"--count {args.count}: must be at least 1")
    names = make_image_set(args.directory, args.count, args.seed)
    write_labels(args.directory, names, [i % 1000 for i in range(len(names))])
    print(args.directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
