"""Several devices at once: ais_bench's summed throughput beside the wall-clock images/s, for 1, 2 and 4 devices.

The infer stage with ``--devices none:0 .. none:N-1`` (one process per device, started together; ``jobs.harness.
fanout``), the null backend standing in for an Ascend 310 chip (waiting batch / R seconds with the host idle, R =
the seed's published Atlas 300I figure at batch 8 / 4 chips), every device on every image. Per device count:

  summed     : the sum of the devices' compute throughputs (summary.json ``devices.summed_throughput``), the figure
               ais_bench prints for ``--device 0,1,2,3`` and the one held against per-card tables
  wall clock : every device's images over the wall time from the first start to the last end, reading, feeding,
               ranking and writing included (``devices.wall_images_per_second``)
  wall/summed: the same run's ratio; where it falls, the host (here: 2 shared cores feeding N processes) is what
               the summed figure does not see
  scaling    : summed at N / (N x summed at 1), the same repeat

On several GPUs the same protocol applies (``--devices cuda:0 --devices cuda:1``); this benchmark has no GPU part.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from benchmarks import assets, common

COUNTS = (1, 2, 4)
BATCH_SIZE = 8
DEVICE = "Ascend310"


def stand_in_rate() -> float:
    """images/s of one stand-in chip: the published Atlas 300I figure at ``BATCH_SIZE`` over its chips."""
    from jobs import devices
    from jobs.results import published

    return published.SEED[DEVICE].throughput[BATCH_SIZE] / devices.get(DEVICE).chips_per_card


def one_run(work, data, count: int, rate: float) -> dict[str, float]:
    """The stage on ``count`` stand-in devices: (summed, wall-clock) images/s."""
    from jobs.stages import infer

    out = work / f"devices-{count}-{time.monotonic_ns()}"
    devs = [a for i in range(count) for a in ("--devices", f"none:{i}")] if count > 1 else ["--device", "none:0"]
    assert infer.main(["--backend", "null", "--option", f"images_per_s={rate}", "--data", str(data), "--batch-size",
                       str(BATCH_SIZE), "--min-batches", "1", "--min-seconds", "0", "--repetitions", "1",
                       *devs, "--out", str(out), "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    if count == 1:
        return {"summed": s["throughput"], "wall": s["end_to_end"]["images_per_second"]}
    return {"summed": s["devices"]["summed_throughput"], "wall": s["devices"]["wall_images_per_second"]}


def run(work, images: int = 512, repeats: int = 3, counts: tuple[int, ...] = COUNTS) -> dict[str, Any]:
    logging.getLogger("ghostbench").setLevel(logging.WARNING)
    data = assets.dataset(work, images, "float32", distinct=min(images, 128))
    rate = stand_in_rate()
    m: dict[int, dict[str, list[float]]] = {n: {"summed": [], "wall": [], "ratio": [], "scaling": []} for n in counts}
    for r in range(repeats):
        ones = None
        for n in (counts if r % 2 == 0 else tuple(reversed(counts))):  # no count always first
            got = one_run(work, data, n, rate)
            m[n]["summed"].append(got["summed"])
            m[n]["wall"].append(got["wall"])
            m[n]["ratio"].append(got["wall"] / got["summed"])
            if n == 1:
                ones = got["summed"]
            m[n].setdefault("_summed_this_repeat", []).append(got["summed"])
        if ones:
            for n in counts:
                m[n]["scaling"].append(m[n]["_summed_this_repeat"][-1] / (n * ones))
    return {"images": images, "repeats": repeats, "batch_size": BATCH_SIZE, "stand_in_images_per_s": rate,
            "counts": {str(n): {k: common.summarize(v) for k, v in fig.items() if not k.startswith("_") and v}
                       for n, fig in m.items()}}


def render(res: dict[str, Any]) -> str:
    rows = [[n, f"{c['summed']['median']:.0f}", f"{c['wall']['median']:.0f}", f"{c['ratio']['median']:.3f}",
             f"{c['ratio']['min']:.3f}-{c['ratio']['max']:.3f}",
             f"{c['scaling']['median']:.3f}" if "scaling" in c else "-"] for n, c in res["counts"].items()]
    return "\n".join([
        (f"null backend as an {DEVICE} chip ({res['stand_in_images_per_s']:.0f} images/s each), batch "
         f"{res['batch_size']}, {res['images']} images on every device, {res['repeats']} repeats"),
        common.table(["devices", "summed img/s", "wall-clock img/s", "wall/summed", "range", "scaling"], rows)])


def headlines(res: dict[str, Any]) -> list[tuple[str, dict]]:
    return [(f"devices: wall clock / summed, {n} device(s)", c["ratio"]) for n, c in res["counts"].items()]
