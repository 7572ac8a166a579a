"""Bytes: what a preprocessed image costs in the store and on the way to the engine, float32 against uint8.

Stored per image: every file the preprocess stage committed (parts, index, manifest) divided by
the images. Read per image: the infer stage's own count of bytes read from the store in its first
pass (``summary.json`` ``end_to_end.bytes_read_per_image``; .npy headers included), with the null
backend at batch 8. The seed's .bin files (602,112 bytes per image, written and read whole) and the
source JPEGs are given for scale. These are counts, not timings: one run is exact.
"""

from __future__ import annotations

import json
import pathlib
import time
from typing import Any

from benchmarks import assets, common

SEED_BIN_BYTES = 3 * 224 * 224 * 4


def stored_bytes(data: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in data.rglob("*") if p.is_file())


def read_bytes(work: pathlib.Path, data: pathlib.Path) -> float:
    from jobs.stages import infer

    out = work / f"bytes-infer-{time.monotonic_ns()}"
    assert infer.main(["--backend", "null", "--data", str(data), "--batch-size", "8", "--warmup", "0",
                       "--min-batches", "1", "--min-seconds", "0", "--repetitions", "1", "--out", str(out), "--quiet"]) == 0
    return json.loads((out / "summary.json").read_text())["end_to_end"]["bytes_read_per_image"]


def run(work: pathlib.Path, repeats: int = 1, images: int = 300) -> dict[str, Any]:
    img = assets.images(work, images)
    jpeg = sum(p.stat().st_size for p in img.glob("*.JPEG")) / images
    res: dict[str, Any] = {"images": images, "jpeg_bytes_per_image": jpeg, "seed_bin_bytes_per_image": SEED_BIN_BYTES}
    for mode in ("float32", "uint8"):
        data = assets.dataset(work, images, mode)
        res[mode] = {"stored_per_image": stored_bytes(data) / images, "read_per_image": read_bytes(work, data)}
    res["uint8_vs_float32_stored"] = res["uint8"]["stored_per_image"] / res["float32"]["stored_per_image"]
    res["uint8_vs_float32_read"] = res["uint8"]["read_per_image"] / res["float32"]["read_per_image"]
    return res


def render(res: dict[str, Any]) -> str:
    f, u = res["float32"], res["uint8"]
    rows = [["stored per image", f"{f['stored_per_image']:,.0f}", f"{u['stored_per_image']:,.0f}",
             f"{res['uint8_vs_float32_stored']:.3f}"],
            ["read per image by infer", f"{f['read_per_image']:,.0f}", f"{u['read_per_image']:,.0f}",
             f"{res['uint8_vs_float32_read']:.3f}"]]
    scale = (f"seed .bin: {res['seed_bin_bytes_per_image']:,} bytes per image; source JPEG: "
             f"{res['jpeg_bytes_per_image']:,.0f} bytes per image (mean of {res['images']})")
    return common.table(["bytes", "float32", "uint8", "uint8/float32"], rows) + "\n" + scale


def headlines(res: dict[str, Any]) -> list[tuple[str, dict]]:
    return [("bytes stored per image, uint8/float32", common.summarize([res["uint8_vs_float32_stored"]])),
            ("bytes read per image, uint8/float32", common.summarize([res["uint8_vs_float32_read"]]))]
