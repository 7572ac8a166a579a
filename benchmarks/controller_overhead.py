"""Controller overhead: time outside the stage processes per step, and a rerun of a finished sweep.

A sweep of null-backend inference (no model export) runs with one step at a time, so that
  overhead per step = (sweep wall time - sum of the steps' process times) / steps
then runs again on the finished store (every step found committed).
"""

from __future__ import annotations

import json
import time
from typing import Any

import yaml

from benchmarks import common


def _spec(work, name: str) -> str:
    from jobs.tools import fake_imagenet

    img = work / "ctl-images"
    if not (img / fake_imagenet.LABELS_FILE).exists():
        names = fake_imagenet.make_image_set(img, count=16, seed=1)
        fake_imagenet.write_labels(img, names, [0] * len(names))
    doc = {"name": name, "store": str(work / f"ctl-store-{name}"),
           "dataset": {"images": str(img), "labels": str(img / "val_label.txt"), "shards": 2},
           "targets": [{"name": "null", "backend": "null", "batch_sizes": [1, 2, 4, 8, 16, 32]}],
           "timing": {"warmup": 0, "min_batches": 1, "min_seconds": 0}}
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def run(work, repeats: int = 3) -> dict[str, Any]:
    from controller import cli

    overheads, reruns, steps = [], [], 0
    for i in range(repeats):
        spec = _spec(work, f"ctl{i}-{time.monotonic_ns()}")
        t0 = time.perf_counter()
        assert cli.main(["run", spec, "--jobs", "1"]) == 0
        wall = time.perf_counter() - t0
        name = json.loads(json.dumps(yaml.safe_load(open(spec))))["name"]
        status = json.loads((work / f"ctl-store-{name}" / "sweeps" / name / "status.json").read_text())
        step_time = sum(s["seconds"] for s in status["steps"].values())
        steps = len(status["steps"])
        overheads.append((wall - step_time) / steps)
        t0 = time.perf_counter()
        assert cli.main(["run", spec]) == 0
        reruns.append(time.perf_counter() - t0)
    return {"steps": steps, "overhead_per_step_s": common.summarize(overheads),
            "rerun_s": common.summarize(reruns)}


def render(res: dict[str, Any]) -> str:
    o, r = res["overhead_per_step_s"], res["rerun_s"]
    return common.table(["measure", "median", "min", "max"], [
        [f"controller overhead per step (s), {res['steps']} steps", f"{o['median']:.4f}", f"{o['min']:.4f}",
         f"{o['max']:.4f}"],
        ["rerun of the finished sweep (s)", f"{r['median']:.3f}", f"{r['min']:.3f}", f"{r['max']:.3f}"],
    ])
