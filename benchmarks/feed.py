"""Feeding a fast device: the infer stage's end-to-end images/s against a device that computes 20,000 images/s.

Without a GPU: the null backend stands in for the device (``images_per_s=20000``: each call waits
batch / 20,000 s with the host idle) and for its memory (``device_buffers=true``: every batch is copied
into a preallocated buffer before the call and the logits out of one after, timed apart as H2D and D2H).
What remains is the host's feed path: reading shards from the store, the copy, ranking and writing.

  memcpy   : this machine's memory copy bandwidth (one core, np.copyto of 256 MiB): the physical limit
             of a path that copies every byte at least once
  ceiling  : the stage with the stand-in device at infinite speed (no wait): how fast the host feeds
  20k      : the stage against the 20,000 images/s device: end-to-end / compute, the share of the
             device's speed the pipeline delivers (the goal: 0.95 or more at batch 8 and above); by
             default the copy to the device runs on its own thread (staged), and "unstaged" is the same
             pass with the copy on the calling thread, as before, alternating within each repeat

Printed per input mode (float32: 602,112 bytes per image; uint8: 150,528) and batch size, with GB/s.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from benchmarks import assets, common, harness

DEVICE_IMAGES_PER_S = 20_000.0
BATCH_SIZES = (8, 32, 128, 256)
MODES = ("float32", "uint8")


def memcpy_gb_per_s(repeats: int, nbytes: int = 256 << 20) -> dict[str, float]:
    src = np.ones(nbytes, dtype=np.uint8)
    dst = np.empty_like(src)
    rates = []
    for _ in range(max(3, repeats)):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        rates.append(nbytes / (time.perf_counter() - t0) / 1e9)
    return common.summarize(rates)


def run(work, images: int = 8192, repeats: int = 3, batch_sizes: tuple[int, ...] = BATCH_SIZES) -> dict[str, Any]:
    logging.getLogger("ghostbench").setLevel(logging.WARNING)
    out: dict[str, Any] = {"images": images, "repeats": repeats, "device_images_per_s": DEVICE_IMAGES_PER_S,
                           "memcpy_gb_per_s": memcpy_gb_per_s(repeats), "modes": {}}
    for mode in MODES:
        data = assets.dataset(work, images, mode, distinct=min(images, 256))
        bpi = 602_112 if mode == "float32" else 150_528
        per_bs = {}
        for bs in batch_sizes:
            base = ["--backend", "null", "--option", "device_buffers=true", "--data", str(data), "--batch-size", str(bs)]
            m: dict[str, list[float]] = {"ceiling": [], "e2e": [], "compute": [], "efficiency": [], "unstaged": []}
            device = [*base, "--option", f"images_per_s={DEVICE_IMAGES_PER_S}"]
            for r in range(repeats):
                m["ceiling"].append(harness.stage_pass(work, f"feed-{mode}-{bs}", base)["images_per_second"])
                for staging in ((None, False) if r % 2 == 0 else (False, None)):  # neither goes first always
                    p = harness.stage_pass(work, f"feed20k-{mode}-{bs}", device, staging=staging)
                    if staging is False:
                        m["unstaged"].append(p["efficiency"])
                        continue
                    m["e2e"].append(p["images_per_second"])
                    m["compute"].append(p["images"] / p["compute_seconds"] if p["compute_seconds"] else 0.0)
                    m["efficiency"].append(p["efficiency"])
            per_bs[str(bs)] = {k: common.summarize(v) for k, v in m.items()}
            per_bs[str(bs)]["ceiling_gb_per_s"] = common.summarize([x * bpi / 1e9 for x in m["ceiling"]])
        out["modes"][mode] = {"bytes_per_image": bpi, "batch_sizes": per_bs}
    return out


def render(res: dict[str, Any]) -> str:
    mc = res["memcpy_gb_per_s"]
    out = [f"memory copy bandwidth (one core): {mc['median']:.1f} GB/s ({mc['min']:.1f}-{mc['max']:.1f}); "
           f"device stand-in at {res['device_images_per_s']:,.0f} images/s, {res['images']} images, "
           f"{res['repeats']} repeats"]
    for mode, r in res["modes"].items():
        rows = [[bs, f"{b['ceiling']['median']:,.0f}", f"{b['ceiling_gb_per_s']['median']:.2f}",
                 f"{b['ceiling_gb_per_s']['median'] / mc['median']:.2f}", f"{b['e2e']['median']:,.0f}",
                 f"{b['efficiency']['median']:.3f}", f"{b['efficiency']['min']:.3f}-{b['efficiency']['max']:.3f}",
                 f"{b['unstaged']['median']:.3f}", f"{b['unstaged']['min']:.3f}-{b['unstaged']['max']:.3f}"]
                for bs, b in r["batch_sizes"].items()]
        out += [f"{mode} ({r['bytes_per_image']:,} bytes/image)",
                common.table(["batch", "feed ceiling img/s", "GB/s", "of memcpy", "e2e at 20k img/s",
                              "e2e/compute", "range", "unstaged", "range"], rows)]
    return "\n".join(out)


def headlines(res: dict[str, Any]) -> list[tuple[str, dict]]:
    return [(f"feed e2e/compute at 20k img/s, {mode}, batch {bs}", r["batch_sizes"][bs]["efficiency"])
            for mode, r in res["modes"].items() for bs in ("8", "256") if bs in r["batch_sizes"]]
