"""Stage infer: engine + preprocessed shards + backend + batch size -> predictions and summary.json.

Like ais_infer: warm-up runs first; one pass over the data in dataset (natural-sort) order gives
the predictions; when that pass is too short for a stable timing, further timed passes run (like
``--loop``) until a minimum batch count and duration are reached. A short last batch is padded;
its padding is neither counted as images nor written out. Shards are streamed, so memory stays
flat however many images there are.
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import dataclasses
import json
import logging
import platform
import sys
import time
from collections.abc import Sequence

import numpy as np

from jobs import backends, errors, params, progress
from jobs import store as store_mod
from jobs.artifacts import commit, records, shards
from jobs.backends import base
from jobs.devices import power, provenance
from jobs.harness import overlap
from jobs.results import metrics
from jobs.stages import cli

log = logging.getLogger("ghostbench.infer")

TOPK = 5
# Reading ahead and ranking behind the backend call (jobs.harness.overlap): None = when the backend
# computes off the host (a device), True/False = always/never (the harness benchmark's A/B).
OVERLAP: bool | None = None
# Copying batches to the device on a second thread where the backend stages them: None = whenever it
# does and the pass overlaps, False = never (the feed benchmark's A/B).
STAGING: bool | None = None
PREFETCH = base.STAGING_SLOTS - 2  # batches read (and, where the backend stages, copied to it) ahead
_PROCESS_RESOURCES = contextlib.ExitStack()
atexit.register(_PROCESS_RESOURCES.close)


def load_engine(uri: str | None, resources: contextlib.ExitStack | None = None) -> base.EngineInfo:
    """The committed engine at ``uri``, its file checked against the manifest's sha256.

    On a local store the file stays where it is; from a remote store it is a verified local copy
    that lives as long as ``resources`` (default: until the process exits).
    """
    if uri is None:
        return base.EngineInfo(path=None, record={})
    engine_store, manifest = commit.require_committed(uri, "--engine")
    record = records.EngineRecord.from_dict(json.loads(commit.read_verified(engine_store, manifest,
                                                                            records.ENGINE_RECORD)),
                                            f"{engine_store.uri}/{records.ENGINE_RECORD}")
    stack = resources if resources is not None else _PROCESS_RESOURCES
    path = stack.enter_context(commit.local_copy(engine_store, manifest, record.file))
    return base.EngineInfo(path=path, record=record.to_dict())


def check_compatible(spec: base.TensorSpec, dataset: shards.Dataset, batch_size: int) -> None:
    if spec.dtype != dataset.dtype:
        raise errors.BadInput(
            f"engine input {spec.name!r} takes {spec.dtype} but the data (--data {dataset.uri}) is "
            f"{dataset.dtype} ({dataset.mode} mode); pair uint8 data with a uint8-input model")
    if tuple(spec.shape[1:]) != tuple(dataset.image_shape) and None not in spec.shape[1:]:
        raise errors.BadInput(f"engine input shape {spec.shape} does not fit images of shape {dataset.image_shape}")
    if spec.batch is not None and spec.batch != batch_size:
        raise errors.BadInput(f"--batch-size {batch_size}: the engine was built for batch size {spec.batch}")


def run(args: params.InferParams, out: store_mod.Store) -> None:
    backend_cls = backends.REGISTRY.load(args.backend)
    options = dict(args.options or {})
    dataset = shards.open_dataset(args.data)
    if dataset.num_images == 0:
        raise errors.BadInput(f"--data {dataset.uri}: the dataset has no images")
    resources = contextlib.ExitStack()  # the engine's local copy, kept while the backend runs
    engine = load_engine(args.engine, resources)
    if args.backend == "null":  # no engine: the null backend takes the data's element type
        options.setdefault("dtype", str(dataset.dtype))
    log.info("infer: %s on %s, batch %d, %d images from %s",
             args.backend, args.device, args.batch_size, dataset.num_images, dataset.uri)
    backend = backend_cls.open(engine, args.device, options, args.precision)
    try:
        check_compatible(backend.input, dataset, args.batch_size)
        # device power around the timed passes (jobs.devices.power); a method asked for by name that cannot run exits 3 here
        sampler = power.sampler_for(args.power, args.device, args.power_interval_ms, backend.describe)
        if sampler is not None:
            resources.callback(sampler.close)
        with commit.Output(out, "infer", args.to_dict()) as output:
            summary = _run_passes(args, backend, dataset, output.dir / records.PREDICTIONS, sampler)
            summary = dataclasses.replace(
                summary, target=args.target_name or f"{args.backend}-{args.device}", engine=args.engine,
                engine_record=engine.record, data=dataset.uri, input_mode=dataset.mode,
                backend_info=backend.describe(), precision=args.precision, provenance=provenance.collect(),
                host={"machine": platform.machine(), "processor": platform.processor(),
                      "python": platform.python_version(), "numpy": np.__version__})
            (output.dir / records.SUMMARY).write_text(summary.to_json())
            output.record.update({"throughput": summary.throughput, "batch_size": summary.batch_size,
                                  "num_images": summary.num_images, "passes": summary.passes})
        w = summary.windows
        log.info("infer: throughput %.1f images/s (compute; windows %.1f..%.1f%s), end to end %.1f images/s",
                 summary.throughput, w.min, w.max, "" if w.stable else ", UNSTABLE", summary.end_to_end.images_per_second)
        p = summary.power
        if p is not None and p.joules_per_image is not None:
            log.info("infer: power %.1f W mean, %.1f W max (%s, %s, %d samples): %.4g J/image, %.4g images/J",
                     p.mean_watts, p.max_watts, p.method, p.energy, p.samples, p.joules_per_image, p.images_per_joule)
    finally:
        backend.close()
        resources.close()


def _run_passes(args: params.InferParams, backend: base.Backend, dataset: shards.Dataset,
                predictions_path, sampler: power.PowerSampler | None = None) -> records.InferSummary:
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

    def timed(batch: np.ndarray | base.Staged) -> np.ndarray:
        logits, t = backend.infer_staged(batch) if isinstance(batch, base.Staged) else backend.infer(batch)
        compute.append(t.compute_ms)
        if t.h2d_ms is not None:
            h2d.append(t.h2d_ms)
        if t.d2h_ms is not None:
            d2h.append(t.d2h_ms)
        return logits

    # Pass 1: every image once, in order; top-k written as we go. The backend is called from this
    # thread only; reading ahead and ranking behind run beside it (jobs.harness.overlap).
    prog = progress.Progress("infer", dataset.num_images, log)
    names = dataset.names
    written = 0
    bytes_before = dataset.bytes_read
    if sampler is not None:  # power over the timed passes only: after warm-up, until the last timed batch
        sampler.start()
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
        staging = overlapped and backend.stages_input and STAGING is not False
        if overlapped:  # buffers: one in use, PREFETCH queued, one being read
            source = dataset.iter_batches(bs, buffers=PREFETCH + 2)
            if staging:  # a second thread copies to the device, beside the reading and the previous compute
                source = ((backend.stage(batch), count) for batch, count in overlap.prefetch(source, 1))
            batches = overlap.prefetch(source, PREFETCH)
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
    power_record = sampler.stop().for_images(dataset.num_images * passes) if sampler is not None else None
    if passes > 1:
        log.info("infer: %d passes over the data for %d timed batches", passes, len(compute))

    stats = records.LatencyStats.of(compute)
    num_batches = -(-dataset.num_images // bs)
    return records.InferSummary(
        compute=stats, h2d=records.LatencyStats.of(h2d), d2h=records.LatencyStats.of(d2h),
        throughput=records.throughput(bs, stats.mean), batch_size=bs, backend=args.backend, device=args.device,
        num_images=dataset.num_images, num_batches=num_batches, padded_images=num_batches * bs - dataset.num_images,
        passes=passes, warmup_batches=warm, windows=records.Windows.of(compute, bs), power=power_record,
        transfer_timing="measured by the backend" if h2d else "none: the backend reports no separate transfers",
        end_to_end=records.EndToEnd(
            images=dataset.num_images, seconds=e2e_seconds,
            images_per_second=dataset.num_images / e2e_seconds if e2e_seconds > 0 else 0.0,
            overlapped=overlapped, staged=staging, bytes_read=pass_bytes, bytes_read_per_image=pass_bytes / dataset.num_images,
            compute_seconds=pass_compute_s,
            efficiency=pass_compute_s / e2e_seconds if e2e_seconds > 0 else 0.0))


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(params.InferParams, run, argv)


if __name__ == "__main__":
    sys.exit(main())
