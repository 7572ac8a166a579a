"""Stage infer: engine + preprocessed shards + backend + batch size -> predictions and summary.json.

Like ais_infer: warm-up runs first; one pass over the data in dataset (natural-sort) order gives
the predictions; when that pass is too short for a stable timing, further timed passes run (like
``--loop``) until a minimum batch count and duration are reached. A short last batch is padded;
its padding is neither counted as images nor written out. Shards are streamed, so memory stays
flat however many images there are.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import csv
import json
import logging
import platform
import sys
import time
from typing import Any

import numpy as np

from jobs import backends, commit, errors, metrics, overlap, progress, shards, stage
from jobs import store as store_mod
from jobs.backends import base

log = logging.getLogger("ghostbench.infer")

TOPK = 5
# Reading ahead and ranking behind the backend call (jobs.overlap): None = when the backend
# computes off the host (a device), True/False = always/never (the harness benchmark's A/B).
OVERLAP: bool | None = None
PREFETCH = 2
ENGINE_RECORD = "engine.json"
_PROCESS_RESOURCES = contextlib.ExitStack()
atexit.register(_PROCESS_RESOURCES.close)


def build_parser() -> argparse.ArgumentParser:
    p = stage.parser("infer", __doc__.splitlines()[0])
    p.add_argument("--engine", metavar="URI",
                   help="committed output of the convert stage (not needed by the null backend)")
    p.add_argument("--data", required=True, metavar="URI", help="committed output root of the preprocess stage")
    p.add_argument("--backend", default="onnxruntime", help=f"one of: {', '.join(backends.names())}")
    p.add_argument("--device", default="cpu", help="device for the backend, e.g. cpu, cuda:0 (default: cpu)")
    p.add_argument("--batch-size", type=int, required=True, help="images per batch")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="backend option (repeatable), e.g. intra_op_threads=2; values parse as JSON")
    p.add_argument("--target-name", default="", help="label of this target in reports (default: backend-device)")
    p.add_argument("--warmup", type=int, default=2, help="untimed batches before timing (default: 2)")
    p.add_argument("--min-batches", type=int, default=20,
                   help="timed batches at least; extra passes over the data run until reached (default: 20)")
    p.add_argument("--min-seconds", type=float, default=2.0,
                   help="timed compute seconds at least; extra passes run until reached (default: 2.0)")
    p.add_argument("--max-passes", type=int, default=100, help="upper bound on passes over the data (default: 100)")
    return p


def load_engine(uri: str | None, resources: contextlib.ExitStack | None = None) -> base.EngineInfo:
    """The committed engine at ``uri``, its file checked against the manifest's sha256.

    On a local store the file stays where it is; from a remote store it is a verified local copy
    that lives as long as ``resources`` (default: until the process exits).
    """
    if uri is None:
        return base.EngineInfo(path=None, record={})
    engine_store, manifest = commit.require_committed(uri, "--engine")
    record = json.loads(commit.read_verified(engine_store, manifest, ENGINE_RECORD))
    stack = resources if resources is not None else _PROCESS_RESOURCES
    path = stack.enter_context(commit.local_copy(engine_store, manifest, record["file"]))
    return base.EngineInfo(path=path, record=record)


def check_compatible(spec: base.TensorSpec, dataset: shards.Dataset, batch_size: int) -> None:
    if spec.dtype != dataset.dtype:
        raise errors.BadInput(
            f"engine input {spec.name!r} takes {spec.dtype} but the data (--data {dataset.uri}) is "
            f"{dataset.dtype} ({dataset.mode} mode); pair uint8 data with a uint8-input model")
    if tuple(spec.shape[1:]) != tuple(dataset.image_shape) and None not in spec.shape[1:]:
        raise errors.BadInput(f"engine input shape {spec.shape} does not fit images of shape {dataset.image_shape}")
    if spec.batch is not None and spec.batch != batch_size:
        raise errors.BadInput(f"--batch-size {batch_size}: the engine was built for batch size {spec.batch}")


def run(args: argparse.Namespace, out: store_mod.Store) -> None:
    if args.batch_size < 1:
        raise errors.BadInput(f"--batch-size: expected an integer >= 1, got {args.batch_size}")
    backend_cls = backends.get(args.backend)
    options = stage.parse_options(args.option)
    dataset = shards.open_dataset(args.data)
    if dataset.num_images == 0:
        raise errors.BadInput(f"--data {dataset.uri}: the dataset has no images")
    resources = contextlib.ExitStack()  # the engine's local copy, kept while the backend runs
    engine = load_engine(args.engine, resources)
    if args.backend == "null":
        options.setdefault("dtype", str(dataset.dtype))
    params = {k: getattr(args, k) for k in ("engine", "data", "backend", "device", "batch_size", "option",
                                            "warmup", "min_batches", "min_seconds", "max_passes")}
    log.info("infer: %s on %s, batch %d, %d images from %s",
             args.backend, args.device, args.batch_size, dataset.num_images, dataset.uri)
    backend = backend_cls.open(engine, args.device, options)
    try:
        check_compatible(backend.input, dataset, args.batch_size)
        with commit.Output(out, "infer", params) as output:
            summary = _run_passes(args, backend, dataset, output.dir / "predictions.csv")
            summary["target"] = args.target_name or f"{args.backend}-{args.device}"
            summary["engine"] = args.engine
            summary["engine_record"] = engine.record
            summary["data"] = dataset.uri
            summary["input_mode"] = dataset.mode
            summary["backend_info"] = backend.describe()
            summary["host"] = {"machine": platform.machine(), "processor": platform.processor(),
                               "python": platform.python_version(), "numpy": np.__version__}
            (output.dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
            output.record.update({k: summary[k] for k in ("throughput", "batch_size", "num_images", "passes")})
        log.info("infer: throughput %.1f images/s (compute), end to end %.1f images/s",
                 summary["throughput"], summary["end_to_end"]["images_per_second"])
    finally:
        backend.close()
        resources.close()


def _run_passes(args: argparse.Namespace, backend: base.Backend, dataset: shards.Dataset,
                predictions_path) -> dict[str, Any]:
    bs = args.batch_size
    # Warm-up: the first batches pay for lazy allocation and kernel selection.
    warm = 0
    for batch, _ in dataset.iter_batches(bs):
        if warm >= args.warmup:
            break
        backend.infer(batch)
        warm += 1
    compute: list[float] = []
    h2d: list[float] = []
    d2h: list[float] = []

    def timed(batch: np.ndarray) -> np.ndarray:
        logits, t = backend.infer(batch)
        compute.append(t.compute_ms)
        if t.h2d_ms is not None:
            h2d.append(t.h2d_ms)
        if t.d2h_ms is not None:
            d2h.append(t.d2h_ms)
        return logits

    # Pass 1: every image once, in order; top-k written as we go. The backend is called from this
    # thread only; reading ahead and ranking behind run beside it (jobs.overlap).
    prog = progress.Progress("infer", dataset.num_images, log)
    names = dataset.names
    written = 0
    bytes_before = dataset.bytes_read
    t0 = time.perf_counter()
    with open(predictions_path, "w", newline="") as f, overlap.InOrderWorker() as post:
        writer = csv.writer(f)
        writer.writerow(["index", "name"] + [f"top{i}" for i in range(1, TOPK + 1)]
                        + [f"score{i}" for i in range(1, TOPK + 1)])

        def rank_and_write(logits: np.ndarray, first: int) -> None:
            idx, scores = metrics.topk(logits, TOPK)
            for row in range(len(logits)):
                writer.writerow([first + row, names[first + row], *idx[row].tolist(),
                                 *(f"{s:.6g}" for s in scores[row].tolist())])
            prog.advance(len(logits))

        overlapped = not backend.computes_on_host if OVERLAP is None else OVERLAP
        if overlapped:  # buffers: one in use, PREFETCH queued, one being read
            batches = overlap.prefetch(dataset.iter_batches(bs, buffers=PREFETCH + 2), PREFETCH)
        else:
            batches = dataset.iter_batches(bs)
        for batch, count in batches:
            logits = timed(batch)[:count]
            if overlapped:  # ranked later: copied, since a backend may reuse its output buffer
                post.submit(rank_and_write, np.array(logits), written)
            else:
                rank_and_write(logits, written)
            written += count
        post.finish()
    e2e_seconds = time.perf_counter() - t0
    pass_bytes = dataset.bytes_read - bytes_before
    pass_compute_s = sum(compute) / 1e3  # the backend's own time within that same pass
    prog.finish()
    if written != dataset.num_images:
        raise errors.GhostbenchError(f"read {written} images but the dataset index lists {dataset.num_images}")

    # More passes, timing only, when one pass is too short for a stable figure.
    passes = 1
    while (len(compute) < args.min_batches or sum(compute) < args.min_seconds * 1e3) and passes < args.max_passes:
        for batch, _ in dataset.iter_batches(bs):
            timed(batch)
        passes += 1
    if passes > 1:
        log.info("infer: %d passes over the data for %d timed batches", passes, len(compute))

    stats = metrics.latency_stats(compute)
    num_batches = -(-dataset.num_images // bs)
    return {
        "NPU_compute_time": stats,
        "H2D_latency": metrics.latency_stats(h2d),
        "D2H_latency": metrics.latency_stats(d2h),
        "throughput": metrics.throughput(bs, stats["mean"]),
        "batch_size": bs,
        "backend": args.backend,
        "device": args.device,
        "num_images": dataset.num_images,
        "num_batches": num_batches,
        "padded_images": num_batches * bs - dataset.num_images,
        "passes": passes,
        "warmup_batches": warm,
        "transfer_timing": "measured by the backend" if h2d else "none: the backend reports no separate transfers",
        "end_to_end": {
            "images": dataset.num_images,
            "seconds": e2e_seconds,
            "images_per_second": dataset.num_images / e2e_seconds if e2e_seconds > 0 else 0.0,
            "what": "first pass: reading shards, feeding the backend, top-k, writing predictions",
            "overlapped": overlapped,
            "bytes_read": pass_bytes,
            "bytes_read_per_image": pass_bytes / dataset.num_images,
            "compute_seconds": pass_compute_s,
            # the share of the pass spent in the backend: 1.0 means the harness costs nothing
            "efficiency": pass_compute_s / e2e_seconds if e2e_seconds > 0 else 0.0,
        },
        "units": {"latency": "ms", "throughput": "images/s"},
    }


def main(argv=None) -> int:
    return stage.main("infer", build_parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())
