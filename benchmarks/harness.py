"""Harness efficiency: the infer stage's end-to-end images/s against the bare backend call.

Both run the same engine on the same images in the same process, alternating, repeated:
  bare   : OnnxRuntimeBackend.infer on batches already in memory (nothing but the model)
  stage  : jobs.infer end to end (reading shards from the store, feeding, top-5, writing predictions);
           its figure is summary.json's end_to_end.images_per_second (the first pass)
  null   : jobs.infer with the null backend: the harness alone, its ceiling
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from benchmarks import assets, common

BATCH_SIZES = (1, 4, 8, 16, 32)


def prepare(work, images: int) -> dict[str, str]:
    data = assets.dataset(work, images, "float32")
    return {"data": str(data), **{f"engine{bs}": str(assets.engine(work, bs, "float32")) for bs in BATCH_SIZES}}


def bare_images_per_s(engine_uri: str, data_uri: str, bs: int) -> float:
    from jobs import infer, shards
    from jobs.backends.onnxruntime.backend import OnnxRuntimeBackend

    ds = shards.open_dataset(data_uri)
    batches = [(b.copy(), n) for b, n in ds.iter_batches(bs)]
    backend = OnnxRuntimeBackend.open(infer.load_engine(engine_uri), "cpu", {})
    for b, _ in batches[:2]:
        backend.infer(b)
    t0 = time.perf_counter()
    for b, _ in batches:
        backend.infer(b)
    elapsed = time.perf_counter() - t0
    backend.close()
    return ds.num_images / elapsed


def stage_images_per_s(work, tag: str, args: list[str]) -> dict[str, Any]:
    from jobs import infer

    out = work / f"infer-{tag}-{time.monotonic_ns()}"
    assert infer.main([*args, "--min-batches", "1", "--min-seconds", "0", "--out", str(out), "--quiet"]) == 0
    return json.loads((out / "summary.json").read_text())


def run(work, images: int = 256, repeats: int = 5) -> dict[str, Any]:
    logging.getLogger("ghostbench").setLevel(logging.WARNING)
    paths = prepare(work, images)
    results = {}
    for bs in BATCH_SIZES:
        bare, stage, null = [], [], []
        for _ in range(repeats):
            bare.append(bare_images_per_s(paths[f"engine{bs}"], paths["data"], bs))
            s = stage_images_per_s(work, f"ort{bs}", ["--engine", paths[f"engine{bs}"], "--data", paths["data"],
                                                       "--batch-size", str(bs)])
            stage.append(s["end_to_end"]["images_per_second"])
            n = stage_images_per_s(work, f"null{bs}", ["--backend", "null", "--data", paths["data"],
                                                         "--batch-size", str(bs)])
            null.append(n["end_to_end"]["images_per_second"])
        ratios = [s / b for s, b in zip(stage, bare)]
        results[bs] = {"bare": common.summarize(bare), "stage": common.summarize(stage),
                       "null": common.summarize(null), "ratio": common.summarize(ratios)}
    return {"images": images, "repeats": repeats, "batch_sizes": results}


def render(res: dict[str, Any]) -> str:
    rows = []
    for bs, r in res["batch_sizes"].items():
        rows.append([str(bs), f"{r['bare']['median']:.1f}", f"{r['stage']['median']:.1f}",
                     f"{r['ratio']['median']:.3f}", f"{r['ratio']['min']:.3f}-{r['ratio']['max']:.3f}",
                     f"{r['null']['median']:.0f}"])
    return common.table(["batch", "bare img/s", "stage img/s", "stage/bare", "range", "null img/s"], rows)


def headlines(res: dict[str, Any]) -> list[tuple[str, dict]]:
    return [(f"infer stage/bare engine, batch {bs}", res["batch_sizes"][bs]["ratio"]) for bs in (1, 8, 32)
            if bs in res["batch_sizes"]]
