"""Stage: decode, resize, crop and normalize images into one shard of .npy parts (seed step 4).

``python -m jobs.stages.preprocess --images URI --labels URI --out ROOT [--shard I --num-shards N] ...``

Lists the images below ``--images`` in natural-sort order, takes the contiguous slice I of N, and
commits it at ``ROOT/shard-0000I-of-0000N`` (see ``jobs.artifacts.shards``); ``jobs.artifacts.shards.open_dataset(ROOT)``
reads all N shards back in order. With ``--write-bin`` it also writes the seed's per-image ``.bin``
files and ``ghostnet_prep_bin.info``.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from jobs import errors, models, params, progress
from jobs import store as store_mod
from jobs.artifacts import commit, shards
from jobs.data import imaging
from jobs.data import labels as labels_mod
from jobs.data import recipe as recipe_mod
from jobs.stages import cli

log = logging.getLogger("ghostbench.preprocess")

STAGE = "preprocess"
INFO_FILE = "ghostnet_prep_bin.info"
# Objects below --images that are surely not images (labels, listings, manifests, notes).
NON_IMAGE_SUFFIXES = (".txt", ".json", ".info", ".md", ".csv", ".yaml", ".yml", ".npy", ".npz", ".bin",
                      ".tar", ".gz", ".zip", ".py", ".sh")
MAX_NAMED = 3  # bad files named in the one-line error


def _is_image_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith((".", "_")) and not base.lower().endswith(NON_IMAGE_SUFFIXES)


def list_images(images: store_mod.Store) -> list[str]:
    """All image names below the store (paths below it), in natural order."""
    names = sorted((n for n in images.list() if _is_image_name(n)), key=imaging.natural_key)
    if not names:
        raise errors.BadInput(f"--images {images.uri}: no image files there")
    return names


def shard_slice(names: list[str], shard: int, num_shards: int) -> list[str]:
    """The contiguous slice ``shard`` of ``num_shards``: concatenated in order they give ``names``."""
    n = len(names)
    return names[shard * n // num_shards:(shard + 1) * n // num_shards]


def _bin_name(name: str) -> str:
    """The seed's file name: ``bin/<base name before its first '.'>.bin``."""
    return f"bin/{name.rsplit('/', 1)[-1].split('.', 1)[0]}.bin"


def _bad_images_error(rejected: list[dict[str, str]], seen: int) -> errors.BadInput:
    named = "; ".join(f"{r['name']}: {r['reason']}" for r in rejected[:MAX_NAMED])
    more = f" (and {len(rejected) - MAX_NAMED} more)" if len(rejected) > MAX_NAMED else ""
    return errors.BadInput(f"{len(rejected)} of {seen} images cannot be used: {named}{more}; "
                           f"rerun with --skip-bad to leave them out")


def shard_location(args: params.PreprocessParams, root: store_mod.Store) -> store_mod.Store:
    """Every shard's job gets the same --out (the root); each commits below it."""
    return root.child(shards.shard_dir_name(args.shard, args.num_shards))


def pixel_source(recipe: recipe_mod.Recipe, max_pixels: int | None = None) -> Callable[[bytes, str], np.ndarray]:
    """Image bytes -> the recipe's uint8 HWC RGB crop, by the recipe's pipeline (a missing OpenCV: one line);
    images over ``max_pixels`` (default ``recipe.MAX_PIXELS``) are refused from their header."""
    limit = recipe_mod.MAX_PIXELS if max_pixels is None else max_pixels
    if recipe.pipeline == "opencv":
        from jobs.data import imaging_opencv

        imaging_opencv.require()
        return functools.partial(imaging_opencv.pixels, recipe=recipe, max_pixels=limit)
    return functools.partial(imaging.pixels, recipe=recipe, max_pixels=limit)


def _missing_line(missing: list[str], labels: labels_mod.LabelsFile, images: store_mod.Store) -> str:
    named = ", ".join(missing[:MAX_NAMED]) + (", ..." if len(missing) > MAX_NAMED else "")
    return (f"{len(missing)} of the {len(labels.labels)} images {labels.uri} labels are not in --images {images.uri}: "
            f"{named}; accuracy will be over the images present, and the accuracy gate fails unless that is intended "
            "(the sweep's dataset.allow_missing, eval's --allow-missing)")


def run(args: params.PreprocessParams, root: store_mod.Store) -> None:
    out_store = shard_location(args, root)
    card = models.resolve_card(args.model, args.card)
    recipe = card.recipe(args.pipeline)
    pixels = pixel_source(recipe, args.max_pixels)  # before any work
    images = store_mod.open_store(args.images)
    labels_file = labels_mod.read_labels(args.labels, card.num_classes - card.label_offset,
                                         labels_mod.classes_of(card))  # before images
    listed = list_images(images)
    labels, missing = labels_file.match(listed, images.uri)  # the whole listing: the same in every shard
    names = shard_slice(listed[:args.limit], args.shard, args.num_shards)
    recipe_dict = {"model": args.model, **recipe.to_dict()}
    shape = (3, recipe.crop, recipe.crop)
    log.info("%s: shard %d of %d: %d images from %s, mode %s -> %s", STAGE, args.shard, args.num_shards,
             len(names), images.uri, args.mode, out_store.uri)

    with commit.Output(out_store, STAGE, args.to_dict(), args.upstream()) as out:
        writer = shards.ShardWriter(out.dir, args.shard, args.num_shards, args.mode, shape, recipe_dict,
                                    args.images_per_part)
        writer.missing = {"count": len(missing), "names": missing[:shards.MISSING_NAMED]}
        try:
            summary = _process(args, images, labels, names, recipe, pixels, writer, out)
        finally:
            writer.abort()
        out.record.update(summary)
    if summary["counts"]["accepted"] < summary["counts"]["seen"]:
        log.warning("%s: left out %d of %d images (--skip-bad); see index.json 'rejected'", STAGE,
                    summary["counts"]["seen"] - summary["counts"]["accepted"], summary["counts"]["seen"])
    if missing:
        log.warning("%s: %s", STAGE, _missing_line(missing, labels_file, images))


def _process(args, images, labels, names, recipe, pixels, writer, out) -> dict[str, Any]:
    bins: dict[str, str] = {}
    if args.write_bin:
        (out.dir / "bin").mkdir()
        for name in names:
            b = _bin_name(name)
            if b in bins:
                raise errors.BadInput(f"--write-bin: {bins[b]} and {name} would both be written as {b}")
            bins[b] = name
    bins_by_name = {v: k for k, v in bins.items()}
    failing = False  # a bad image found without --skip-bad: only check the rest, write nothing more
    t0 = time.perf_counter()
    prog = progress.Progress(f"{STAGE} shard {args.shard}/{args.num_shards}", len(names), log)
    info_lines = []
    for name in names:
        label = labels.get(name)
        if label is None:
            writer.reject(name, f"no label in {args.labels}", "unlabelled")
            failing = failing or not args.skip_bad
            prog.advance()
            continue
        try:
            hwc = pixels(images.read_bytes(name), name)
        except imaging.UndecodableImage as e:
            writer.reject(name, e.reason, e.kind)
            failing = failing or not args.skip_bad
            prog.advance()
            continue
        if failing:
            prog.advance()
            continue
        if args.mode == "float32":
            arr = imaging.normalize(hwc, recipe.mean, recipe.std)
        else:
            arr = imaging.to_chw_uint8(hwc)
        writer.add(name, label, arr)
        if args.write_bin:
            b = bins_by_name[name]
            arr.tofile(out.dir / b)
            info_lines.append(f"{len(info_lines)} {b} {recipe.crop} {recipe.crop}\n")
        prog.advance()
    prog.finish()
    seconds = time.perf_counter() - t0
    if failing:
        raise _bad_images_error(writer.rejected, len(names))
    index = writer.close()
    if args.write_bin:
        (out.dir / INFO_FILE).write_text("".join(info_lines))
    return {
        "shard": args.shard,
        "num_shards": args.num_shards,
        "mode": args.mode,
        "num_images": index["num_images"],
        "num_parts": index["num_parts"],
        "counts": index["counts"],
        "rejected": index["rejected"][:20],
        "missing": index["missing"],
        "bytes": writer.bytes_written,
        "seconds": round(seconds, 3),
        "images_per_s": round(len(names) / seconds, 1) if seconds > 0 else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(params.PreprocessParams, run, argv, locate=shard_location)


if __name__ == "__main__":
    sys.exit(main())
