"""An ImageNet-like validation set to benchmark on, deterministic from a seed.

``python -m benchmarks.imagenet_like DIR [--count 500] [--seed 0] [--distinct K]``

Sizes, orientations and JPEG settings follow ImageNet val's mix: most images are about 500x375 or
500x333 landscape, a fifth are portrait, a few are small (upscaled by the recipe) or large (up to
2048 px), about 2% are greyscale. JPEG quality is drawn from 75-95 with 4:2:0 chroma subsampling.
The content is smooth 1/f-like texture plus shapes and sensor-like noise, so files come out at
roughly ImageNet's size (about 100-150 KB at 500x375) and decode at a realistic cost.

With ``--distinct K`` only the first K images are generated; the rest are hard links to them
(copies where links are impossible), for sets of 10,000 images whose content does not matter
(memory benchmarks). Labels in ``val_label.txt`` are ``i % 1000``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from jobs.tools.fake_imagenet import LABELS_FILE, image_name, write_labels

__all__ = ["LABELS_FILE", "image_name", "make_image_set", "write_image"]

# (width, height, weight): ImageNet val's common sizes, with small and large ones among them.
SIZES = [
    (500, 375, 40), (500, 333, 14), (375, 500, 10), (333, 500, 5), (500, 500, 4), (500, 400, 4),
    (400, 500, 2), (500, 281, 3), (500, 347, 3), (450, 500, 1), (640, 480, 2),  # common
    (200, 150, 1), (160, 120, 1), (250, 188, 1), (300, 225, 1),  # small: the recipe upscales them
    (1024, 768, 2), (1600, 1200, 2), (2048, 1536, 1), (800, 600, 2), (1200, 1600, 1),  # large
]
GREYSCALE = 0.02
QUALITIES = [(75, 2), (85, 3), (90, 3), (95, 2)]  # (JPEG quality, weight)


def _pick(rng: np.random.Generator, table: Sequence[tuple]) -> tuple:
    weights = np.array([row[-1] for row in table], dtype=np.float64)
    return table[int(rng.choice(len(table), p=weights / weights.sum()))]


def _texture(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """1/f-like texture: noise upsampled level by level, each level twice as fine and a bit weaker.

    An HxWx3 float32 around 128; built coarse to fine so that it costs about one full-size resize.
    """
    gw, gh = 3, 3
    amplitude = 60.0
    channels = [rng.standard_normal(size=(gh, gw), dtype=np.float32) * amplitude for _ in range(3)]
    while gw < w // 4 or gh < h // 4:
        gw, gh = min(gw * 2, w), min(gh * 2, h)
        amplitude *= 0.85
        channels = [np.asarray(Image.fromarray(c, mode="F").resize((gw, gh), Image.BICUBIC))
                    + rng.standard_normal(size=(gh, gw), dtype=np.float32) * amplitude for c in channels]
    img = np.stack([np.asarray(Image.fromarray(c, mode="F").resize((w, h), Image.BICUBIC)) for c in channels], -1)
    return img + 128 + rng.uniform(-40, 40, size=3).astype(np.float32)


def make_image(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    img = _texture(rng, w, h)
    img += rng.standard_normal(size=img.shape, dtype=np.float32) * 10  # sensor noise: JPEG sizes as ImageNet's
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(pil)
    for _ in range(int(rng.integers(1, 5))):  # edges: a few objects
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(w // 10, w // 2 + 2)), y0 + int(rng.integers(h // 10, h // 2 + 2))
        color = tuple(int(v) for v in rng.integers(0, 256, size=3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=color)
    return pil


def write_image(path: pathlib.Path, seed: int, i: int) -> None:
    """Image ``i`` of the set with this seed: the same bytes every time."""
    rng = np.random.default_rng([seed, i])
    w, h, _ = _pick(rng, SIZES)
    quality = _pick(rng, QUALITIES)[0]
    pil = make_image(rng, w, h)
    if rng.random() < GREYSCALE:
        pil = pil.convert("L")
    pil.save(path, format="JPEG", quality=quality, subsampling="4:2:0")


def make_image_set(directory: str | pathlib.Path, count: int = 500, seed: int = 0,
                   distinct: int | None = None) -> list[str]:
    """Write ``count`` images and ``val_label.txt`` into ``directory``; returns the names in order.

    Images already there (same name) are kept, so a set can be grown. Beyond ``distinct`` images,
    image ``i`` is a hard link to image ``i % distinct``.
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    distinct = count if distinct is None else max(1, min(distinct, count))
    names = [image_name(i) for i in range(count)]
    for i, name in enumerate(names):
        path = directory / name
        if path.exists():
            continue
        if i < distinct:
            tmp = path.with_name(f".{name}.tmp")
            write_image(tmp, seed, i)
            tmp.replace(path)  # a set interrupted mid-write never holds half an image
        else:
            source = directory / names[i % distinct]
            try:
                os.link(source, path)
            except OSError:
                path.write_bytes(source.read_bytes())
    write_labels(directory, names, [i % 1000 for i in range(count)])
    return names


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.imagenet_like", description=__doc__.splitlines()[0])
    p.add_argument("directory", help=f"where to write the images and {LABELS_FILE}")
    p.add_argument("--count", type=int, default=500, help="number of images (default 500)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--distinct", type=int, default=None, metavar="K",
                   help="generate only K images; the rest are hard links to them")
    args = p.parse_args(argv)
    if args.count < 1:
        p.error(f"--count {args.count}: must be at least 1")
    if args.distinct is not None and args.distinct < 1:
        p.error(f"--distinct {args.distinct}: must be at least 1")
    make_image_set(args.directory, args.count, args.seed, args.distinct)
    print(args.directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
