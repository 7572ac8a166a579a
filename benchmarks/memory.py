"""Memory: peak resident memory of the preprocess and infer stages at 1,000 and 10,000 images.

Each stage runs as its own process, as in a pod; its peak RSS is the process's ``VmHWM`` (see
``benchmarks.peak_rss``). Both stages stream (images one at a time into parts; batches out of
parts), so the peak should not grow with the dataset: the figure is the ratio 10,000 / 1,000.
The 10,000-image set repeats 1,000 distinct images (hard links): content does not change memory.
Preprocess writes float32 (the default); infer runs ONNX Runtime at batch 32, one pass.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
from typing import Any

from benchmarks import assets, common

SIZES = (1_000, 10_000)
DISTINCT = 1_000


def peak_rss_mib(work: pathlib.Path, argv: list[str]) -> float:
    """Run ``python -m <argv>`` in a new process and return its peak resident memory in MiB."""
    out = work / "peak-rss.txt"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.peak_rss", str(out), *argv], stdout=subprocess.DEVNULL,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark process failed (exit {proc.returncode}): python -m {' '.join(argv)}")
    return int(out.read_text()) / 1024


def run(work: pathlib.Path, repeats: int = 1, sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    engine = assets.engine(work, 32, "float32")
    res: dict[str, Any] = {"sizes": list(sizes), "preprocess_mib": {}, "infer_mib": {}}
    for n in sizes:
        img = assets.images(work, n, distinct=DISTINCT if n > DISTINCT else None)
        data, infer_out = work / f"mem-data-{n}", work / f"mem-infer-{n}"
        for old in (data, infer_out):  # a committed output would make the stage a no-op
            shutil.rmtree(old, ignore_errors=True)
        res["preprocess_mib"][str(n)] = peak_rss_mib(work,
            ["jobs.stages.preprocess", "--images", str(img), "--labels", str(img / "val_label.txt"),
             "--out", str(data), "--quiet"])
        res["infer_mib"][str(n)] = peak_rss_mib(work,
            ["jobs.stages.infer", "--engine", str(engine), "--data", str(data), "--batch-size", "32", "--warmup", "1",
             "--min-batches", "1", "--min-seconds", "0", "--max-passes", "1", "--repetitions", "1", "--out", str(infer_out),
             "--quiet"])
        shutil.rmtree(data, ignore_errors=True)  # 10,000 float32 images are 6 GB
    lo, hi = str(min(sizes)), str(max(sizes))
    res["preprocess_growth"] = res["preprocess_mib"][hi] / res["preprocess_mib"][lo]
    res["infer_growth"] = res["infer_mib"][hi] / res["infer_mib"][lo]
    return res


def render(res: dict[str, Any]) -> str:
    sizes = [str(n) for n in res["sizes"]]
    rows = [[stage, *(f"{res[f'{stage}_mib'][n]:.0f}" for n in sizes), f"{res[f'{stage}_growth']:.3f}"]
            for stage in ("preprocess", "infer")]
    return common.table(["peak RSS (MiB)", *(f"{int(n):,} images" for n in sizes),
                         f"{int(sizes[-1]):,} / {int(sizes[0]):,}"], rows)


def headlines(res: dict[str, Any]) -> list[tuple[str, dict]]:
    n = f"{res['sizes'][-1]:,} / {res['sizes'][0]:,} images"
    return [(f"preprocess peak RSS, {n}", common.summarize([res["preprocess_growth"]])),
            (f"infer peak RSS, {n}", common.summarize([res["infer_growth"]]))]
