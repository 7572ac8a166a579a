"""Engine: ONNX Runtime CPU images/s of ghostbench's engines against the seed's ONNX file.

Three variants of the same GhostNet 1.0x weights, on the same images, per batch size:
  seed    : the export exactly as the seed guide makes it (opset 11, no-op Slices kept, dynamic batch)
            in a plain ``onnxruntime.InferenceSession`` with default SessionOptions: what a user of
            the seed's ONNX file gets
  gb f32  : the convert stage's float32 engine (no-ops removed, fixed batch, offline optimizations)
            opened by ``OnnxRuntimeBackend`` exactly as the infer stage opens it
  gb u8   : the same for the uint8-input engine (normalization folded into the graph), fed uint8 pixels
Batches come from ``Dataset.iter_batches`` and are copied into memory before timing; the short last
batch is zero-padded to the batch size as the infer stage does, and images/s counts real images only.
Each session runs 2 warm-up batches and one untimed parity pass; then, per repeat, the three variants
are timed one after another in an order that rotates from repeat to repeat, so drift on a noisy
machine favours none. The ratios gb/seed are taken per repeat, then summarized.
Parity (per batch size, over all images): max |logit difference| against the seed, that relative to
max |seed logit|, and top-1 agreement; the seed is fed the float32 data, gb u8 the uint8 pixels.
"""

from __future__ import annotations

import logging
import pathlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks import assets, common

BATCH_SIZES = (1, 4, 8, 16, 32)
VARIANTS = ("seed", "f32", "u8")
WARMUP = 2

Batches = list[tuple[np.ndarray, int]]
Runner = Callable[[np.ndarray], np.ndarray]


def load_batches(data: str | pathlib.Path, bs: int) -> Batches:
    from jobs.artifacts import shards

    return [(b.copy(), n) for b, n in shards.open_dataset(str(data)).iter_batches(bs)]


def seed_runner(model: pathlib.Path) -> Runner:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])  # default options, on purpose
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: batch})[0]


def engine_runner(engine: str | pathlib.Path) -> Runner:
    from jobs.backends.onnxruntime.backend import OnnxRuntimeBackend
    from jobs.stages import infer

    backend = OnnxRuntimeBackend.open(infer.load_engine(str(engine)), "cpu", {})
    return lambda batch: backend.infer(batch)[0]


def images_per_s(infer: Runner, batches: Batches) -> float:
    t0 = time.perf_counter()
    for b, _ in batches:
        infer(b)
    return sum(n for _, n in batches) / (time.perf_counter() - t0)


def logits(infer: Runner, batches: Batches) -> np.ndarray:
    return np.concatenate([np.asarray(infer(b))[:n] for b, n in batches])


def parity(ref: np.ndarray, other: np.ndarray) -> dict[str, float]:
    diff = float(np.abs(ref - other).max())
    return {"max_abs_diff": diff, "rel_diff": diff / float(np.abs(ref).max()),
            "top1_agreement": float((ref.argmax(1) == other.argmax(1)).mean())}


def run(work: pathlib.Path, repeats: int = 5, images: int = 128) -> dict[str, Any]:
    logging.getLogger("ghostbench").setLevel(logging.WARNING)
    seed_model = assets.export(work, "float32", seed_style=True) / "model.onnx"
    data = {"f32": assets.dataset(work, images, "float32"), "u8": assets.dataset(work, images, "uint8")}
    results: dict[str, Any] = {}
    for bs in BATCH_SIZES:
        runners = {"seed": seed_runner(seed_model),
                   "f32": engine_runner(assets.engine(work, bs, "float32")),
                   "u8": engine_runner(assets.engine(work, bs, "uint8"))}
        f32_batches, u8_batches = load_batches(data["f32"], bs), load_batches(data["u8"], bs)
        batches = {"seed": f32_batches, "f32": f32_batches, "u8": u8_batches}
        for v in VARIANTS:
            for b, _ in batches[v][:WARMUP]:
                runners[v](b)
        out = {v: logits(runners[v], batches[v]) for v in VARIANTS}  # untimed parity pass
        speed: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for r in range(repeats):
            k = r % len(VARIANTS)
            for v in VARIANTS[k:] + VARIANTS[:k]:
                speed[v].append(images_per_s(runners[v], batches[v]))
        results[str(bs)] = {
            **{v: common.summarize(speed[v]) for v in VARIANTS},
            **{f"{v}/seed": common.summarize([a / s for a, s in zip(speed[v], speed["seed"])]) for v in ("f32", "u8")},
            "parity": {v: parity(out["seed"], out[v]) for v in ("f32", "u8")},
        }
        del runners  # free the three sessions before the next batch size
    return {"images": images, "repeats": repeats, "batch_sizes": results}


def render(res: dict[str, Any]) -> str:
    def rng(s: dict[str, Any]) -> str:
        return f"{s['min']:.2f}-{s['max']:.2f}"

    speed, par = [], []
    for bs, r in res["batch_sizes"].items():
        speed.append([bs, f"{r['seed']['median']:.1f}",
                      f"{r['f32']['median']:.1f}", f"{r['f32/seed']['median']:.2f}", rng(r["f32/seed"]),
                      f"{r['u8']['median']:.1f}", f"{r['u8/seed']['median']:.2f}", rng(r["u8/seed"])])
        row = [bs]
        for v in ("f32", "u8"):
            p = r["parity"][v]
            row += [f"{p['max_abs_diff']:.2e}", f"{p['rel_diff']:.1e}", f"{p['top1_agreement']:.1%}"]
        par.append(row)
    return "\n\n".join([
        common.table(["batch", "seed img/s", "gb f32 img/s", "f32/seed", "range",
                      "gb u8 img/s", "u8/seed", "range"], speed),
        f"logit parity against seed ({res['images']} images):",
        common.table(["batch", "f32 max|d|", "f32 rel", "f32 top-1", "u8 max|d|", "u8 rel", "u8 top-1"], par),
    ])


def headlines(res: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    by_bs = res["batch_sizes"]
    return [(f"engine {v}/seed, batch {bs}", by_bs[bs][f"{v}/seed"])
            for v, bs in (("f32", "8"), ("u8", "8"), ("f32", "1")) if bs in by_bs]
