"""A/A and known slowdowns: how often ``ghostbench compare`` cries wolf, and how often it catches a real change.

Sweeps of unchanged code run back to back (each into its own store) and every pair is compared: the A/A
false-alarm rate is the share of rows that said ``faster`` or ``slower``, beside the share ``inconclusive``.
Then two known slowdowns: a stand-in device at 16,000 images/s against one at 20,000 (the null backend; a
20% slowdown), and two real slowdowns of the CPU engine: ONNX Runtime with its graph optimizations off
(``graph_optimization_level: disable``; about 40% slower at batch 1 on the 2-vCPU VM of docs/performance.md)
against on, and on one intra-op thread against two (a small one where the host has few cores: 2 threads were
about 8-15% faster than 1 there). The detection rate is the share of rows that said ``slower``. Every sweep times ``--repetitions`` runs of
``--seconds`` each, as a user's would; the numbers say what this host lets compare decide.
"""

from __future__ import annotations

import collections
import contextlib
import io
import itertools
import math
import os
import shutil
import statistics
import time
from typing import Any

import yaml

from benchmarks import assets, common

SECONDS = 0.5
"""timing.min_seconds of each repetition."""
REPETITIONS = 5
BATCH_SIZES = (1, 4, 8, 16, 32)


def _sweep(work, name: str, target: dict[str, Any], images, seconds: float, repetitions: int,
           batch_sizes: tuple[int, ...], like: str | None = None) -> str:
    """Run a one-target sweep into its own store; the store's path. ``like``: a store whose exports, engines and
    data are linked in first, so that only the timing runs again."""
    from controller import cli

    store = work / f"aa-store-{name}"
    if like is not None:
        for stage in ("export", "convert", "preprocess"):
            src = common.pathlib.Path(like) / "artifacts" / stage
            if src.exists():
                shutil.copytree(src, store / "artifacts" / stage, copy_function=os.link, dirs_exist_ok=True)
    w, checksum = assets.weights(work)
    doc = {"name": "aa", "store": str(store), "model": {"name": assets.MODEL, "weights": str(w), "checksum": checksum},
           "dataset": {"images": str(images), "labels": str(images / "val_label.txt")},
           "targets": [{**target, "batch_sizes": list(batch_sizes)}],
           "timing": {"warmup": 1, "min_batches": 2, "min_seconds": seconds, "repetitions": repetitions}}
    spec = work / f"aa-{name}.yaml"
    spec.write_text(yaml.safe_dump(doc))
    with contextlib.redirect_stderr(io.StringIO()):
        rc = cli.main(["run", str(spec)])
    if rc not in (0, 4):  # the placeholder labels may fail the gate
        raise RuntimeError(f"sweep {name} failed (exit {rc})")
    return str(store)


def _compared(a: str, b: str):
    from jobs.artifacts import records
    from jobs.results import compare

    ra = records.Report.from_json((common.pathlib.Path(a) / "sweeps" / "aa" / "report.json").read_text())
    rb = records.Report.from_json((common.pathlib.Path(b) / "sweeps" / "aa" / "report.json").read_text())
    return compare.compare(ra, rb)


def _verdicts(a: str, b: str) -> collections.Counter:
    return collections.Counter(p.verdict for p in _compared(a, b).pairs)


def _shift(comparison) -> float:
    """The shift every row of B shares against A: the median of the pairs' log ratios (log images/s; 0: none)."""
    logs = [math.log(p.evidence.ratio) for p in comparison.pairs if p.evidence.ratio > 0]
    return statistics.median(logs) if logs else 0.0


def run(work, repeats: int = 3, seconds: float = SECONDS, repetitions: int = REPETITIONS,
        batch_sizes: tuple[int, ...] = BATCH_SIZES, images: int = 48) -> dict[str, Any]:
    img = assets.images(work, images)
    ort = {"name": "ort", "backend": "onnxruntime", "device": "cpu"}
    tag = time.monotonic_ns()
    first = _sweep(work, f"same-{tag}-0", ort, img, seconds, repetitions, batch_sizes)
    aa_stores = [first] + [_sweep(work, f"same-{tag}-{i}", ort, img, seconds, repetitions, batch_sizes, like=first)
                           for i in range(1, max(2, repeats))]
    aa = collections.Counter()
    shifts = []
    for a, b in itertools.combinations(aa_stores, 2):
        c = _compared(a, b)
        aa += collections.Counter(p.verdict for p in c.pairs)
        shifts.append(_shift(c))
    null = {"name": "dev", "backend": "null", "device": "cpu"}
    fast = _sweep(work, f"null20k-{tag}", {**null, "backend_options": {"images_per_s": 20000}}, img, seconds,
                  repetitions, batch_sizes, like=first)
    slow = _sweep(work, f"null16k-{tag}", {**null, "backend_options": {"images_per_s": 16000}}, img, seconds,
                  repetitions, batch_sizes, like=first)
    two = aa_stores[-1]
    one = _sweep(work, f"one-thread-{tag}", {**ort, "backend_options": {"intra_op_threads": 1}}, img, seconds,
                 repetitions, batch_sizes, like=first)
    unoptimized = _sweep(work, f"no-graph-opt-{tag}", {**ort, "backend_options": {"graph_optimization_level": "disable"}},
                         img, seconds, repetitions, batch_sizes, like=first)
    null_v, thread_v, opt_v = _verdicts(fast, slow), _verdicts(two, one), _verdicts(two, unoptimized)
    rows = sum(aa.values())
    return {"sweeps": len(aa_stores), "min_seconds": seconds, "repetitions": repetitions,
            "batch_sizes": list(batch_sizes), "aa": dict(aa), "aa_rows": rows,
            "false_alarm_rate": (aa["faster"] + aa["slower"]) / rows if rows else 0.0,
            "inconclusive_rate": aa["inconclusive"] / rows if rows else 0.0,
            # what `ghostbench compare --run-drift` takes for this host: the root mean square of the A/A pairs' shifts
            # (pairs of three sweeps share sweeps: a rough figure, which more sweeps, --repeats, sharpen)
            "aa_shifts": [math.expm1(x) for x in shifts],
            "run_drift_share": math.expm1(math.sqrt(sum(x * x for x in shifts) / len(shifts))) if shifts else 0.0,
            "null_slowdown": dict(null_v), "null_detection": null_v["slower"] / max(1, sum(null_v.values())),
            "thread_slowdown": dict(thread_v),
            "thread_detection": thread_v["slower"] / max(1, sum(thread_v.values())),
            "graph_opt_slowdown": dict(opt_v), "graph_opt_detection": opt_v["slower"] / max(1, sum(opt_v.values()))}


def render(res: dict[str, Any]) -> str:
    def counts(c: dict[str, int]) -> str:
        return ", ".join(f"{c.get(v, 0)} {v}" for v in ("faster", "same", "slower", "inconclusive"))

    return "\n".join([
        f"{res['sweeps']} sweeps of unchanged code (ONNX Runtime CPU, batch {res['batch_sizes']}, "
        f"{res['repetitions']} repetitions of {res['min_seconds']:g}s), every pair compared at the default 5% threshold:",
        common.table(["comparison", "rows", "verdicts", "rate"], [
            ["A/A: false alarms (faster or slower)", str(res["aa_rows"]), counts(res["aa"]),
             f"{res['false_alarm_rate']:.2f}"],
            ["A/A: inconclusive", str(res["aa_rows"]), "", f"{res['inconclusive_rate']:.2f}"],
            ["null 16k vs 20k images/s: slower", str(sum(res["null_slowdown"].values())),
             counts(res["null_slowdown"]), f"{res['null_detection']:.2f}"],
            ["ORT 1 thread vs 2: slower", str(sum(res["thread_slowdown"].values())),
             counts(res["thread_slowdown"]), f"{res['thread_detection']:.2f}"],
            ["ORT graph optimizations off vs all: slower", str(sum(res["graph_opt_slowdown"].values())),
             counts(res["graph_opt_slowdown"]), f"{res['graph_opt_detection']:.2f}"]]),
        ("whole-sweep shifts between the A/A sweeps (the median row's B/A - 1): "
         + ", ".join(f"{x:+.1%}" for x in res["aa_shifts"])
         + f"; on this host, `ghostbench compare --run-drift {res['run_drift_share']:.1%}` (their root mean square)")])


def headlines(res: dict[str, Any]) -> list[tuple[str, dict]]:
    one = lambda v: common.summarize([v])  # noqa: E731 (one run: one value)
    return [("compare A/A false-alarm rate", one(res["false_alarm_rate"])),
            ("compare A/A inconclusive rate", one(res["inconclusive_rate"])),
            ("compare detects null 16k vs 20k (share slower)", one(res["null_detection"])),
            ("compare detects ORT 1 thread vs 2 (share slower)", one(res["thread_detection"])),
            ("compare detects ORT graph optimizations off (share slower)", one(res["graph_opt_detection"]))]
