"""Orchestration: controller time per step, the rerun of a finished sweep, a sweep grown by one batch size.

A sweep of null-backend inference (no model export) runs with one step at a time, so that
  overhead per step = (sweep wall time - sum of the steps' process times) / steps
then runs again on the finished store (every step found committed). Then a real ONNX Runtime
sweep (export, convert, preprocess, infer, eval) with batch sizes 1 and 8 is built, and grown to
1, 8 and 32: the controller must run only the new convert and infer and the eval; its time is
compared with building the grown sweep from nothing (ratio of the two, same run).
"""

from __future__ import annotations

import json
import time
from typing import Any

import yaml

from benchmarks import common


def _write_spec(work, doc: dict) -> str:
    path = work / f"{doc['name']}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _null_spec(work, name: str) -> str:
    from jobs.tools import fake_imagenet

    img = work / "ctl-images"
    if not (img / fake_imagenet.LABELS_FILE).exists():
        names = fake_imagenet.make_image_set(img, count=16, seed=1)
        fake_imagenet.write_labels(img, names, [0] * len(names))
    doc = {"name": name, "store": str(work / f"ctl-store-{name}"),
           "dataset": {"images": str(img), "labels": str(img / "val_label.txt"), "shards": 2},
           "targets": [{"name": "null", "backend": "null", "batch_sizes": [1, 2, 4, 8, 16, 32]}],
           "timing": {"warmup": 0, "min_batches": 1, "min_seconds": 0, "repetitions": 1}}
    return _write_spec(work, doc)


def _ort_spec(work, name: str, store: str, batch_sizes: list[int]) -> str:
    from benchmarks import assets

    img = assets.images(work, 32)
    w, checksum = assets.weights(work)
    doc = {"name": name, "store": store,
           "model": {"name": assets.MODEL, "weights": str(w), "checksum": checksum},
           "dataset": {"images": str(img), "labels": str(img / "val_label.txt"), "shards": 1},
           "targets": [{"name": "ort", "backend": "onnxruntime", "batch_sizes": batch_sizes}],
           "timing": {"warmup": 1, "min_batches": 1, "min_seconds": 0, "repetitions": 1}}
    return _write_spec(work, doc)


def _sweep(spec: str, store: str) -> tuple[float, int]:
    """(seconds, steps run) of ``ghostbench run spec``."""
    from controller import cli
    from jobs import errors

    t0 = time.perf_counter()
    assert cli.main(["run", spec]) in (errors.EXIT_OK, errors.EXIT_GATE_FAILED)  # placeholder labels: the gate may fail
    seconds = time.perf_counter() - t0
    name = yaml.safe_load(common.pathlib.Path(spec).read_text())["name"]
    status = json.loads((common.pathlib.Path(store) / "sweeps" / name / "status.json").read_text())
    return seconds, sum(1 for s in status["steps"].values() if s["started"])


def grow(work, repeats: int) -> dict[str, Any]:
    grown, scratch, steps_grown, steps_scratch = [], [], 0, 0
    for i in range(repeats):
        tag = time.monotonic_ns()
        store = str(work / f"grow-store-{tag}")
        _sweep(_ort_spec(work, f"grow{i}-{tag}", store, [1, 8]), store)
        seconds, steps_grown = _sweep(_ort_spec(work, f"grow{i}-{tag}", store, [1, 8, 32]), store)
        grown.append(seconds)
        fresh = str(work / f"scratch-store-{tag}")
        seconds, steps_scratch = _sweep(_ort_spec(work, f"scratch{i}-{tag}", fresh, [1, 8, 32]), fresh)
        scratch.append(seconds)
    return {"steps_run": steps_grown, "steps_from_scratch": steps_scratch, "grown_s": common.summarize(grown),
            "scratch_s": common.summarize(scratch),
            "grown_vs_scratch": common.summarize([g / s for g, s in zip(grown, scratch)])}


def run(work, repeats: int = 3) -> dict[str, Any]:
    from controller import cli
    from jobs import errors

    overheads, reruns, steps = [], [], 0
    for i in range(repeats):
        spec = _null_spec(work, f"ctl{i}-{time.monotonic_ns()}")
        t0 = time.perf_counter()
        assert cli.main(["run", spec, "--jobs", "1"]) == 0
        wall = time.perf_counter() - t0
        name = yaml.safe_load(common.pathlib.Path(spec).read_text())["name"]
        status = json.loads((work / f"ctl-store-{name}" / "sweeps" / name / "status.json").read_text())
        step_time = sum(s["seconds"] for s in status["steps"].values())
        steps = len(status["steps"])
        overheads.append((wall - step_time) / steps)
        t0 = time.perf_counter()
        assert cli.main(["run", spec]) in (errors.EXIT_OK, errors.EXIT_GATE_FAILED)  # placeholder labels: the gate may fail
        reruns.append(time.perf_counter() - t0)
    return {"steps": steps, "overhead_per_step_s": common.summarize(overheads),
            "rerun_s": common.summarize(reruns), "grow": grow(work, max(1, repeats // 2))}


def render(res: dict[str, Any]) -> str:
    o, r, g = res["overhead_per_step_s"], res["rerun_s"], res["grow"]
    return common.table(["measure", "median", "min", "max"], [
        [f"controller overhead per step (s), {res['steps']} steps", f"{o['median']:.4f}", f"{o['min']:.4f}",
         f"{o['max']:.4f}"],
        ["rerun of the finished sweep (s)", f"{r['median']:.3f}", f"{r['min']:.3f}", f"{r['max']:.3f}"],
        [f"sweep grown by one batch size (s), {g['steps_run']} steps run", *_cells(g["grown_s"], 1)],
        [f"same sweep from nothing (s), {g['steps_from_scratch']} steps", *_cells(g["scratch_s"], 1)],
        ["grown / from nothing", *_cells(g["grown_vs_scratch"], 2)],
    ])


def _cells(s: dict, digits: int) -> list[str]:
    return [f"{s[k]:.{digits}f}" for k in ("median", "min", "max")]


def headlines(res: dict[str, Any]) -> list[tuple[str, dict]]:
    return [("controller overhead per step (s)", res["overhead_per_step_s"]),
            (f"sweep grown by one batch size / from nothing ({res['grow']['steps_run']} steps run)",
             res["grow"]["grown_vs_scratch"])]
