"""The timing protocol of an infer run: what is timed, in which order, and for how long.

Like ais_infer: warm-up batches first (untimed: lazy allocation, kernel selection); then one pass over the
data in dataset (natural-sort) order gives the predictions, each batch's compute timed by the backend
(``NPU_compute_time``, with the copies apart where the backend has them); when that pass is too short
for a stable figure, further timing-only passes run (like ``--loop``) until ``min_batches`` and
``min_seconds`` of compute are reached or ``max_passes``. A short last batch is padded; the padding is
neither counted as images nor written out. Shards are streamed, so memory stays flat.

The backend is called from the calling thread only (ACL binds its context to the thread that made it).
Where the backend computes off the host (``overlap``), one thread reads ahead and another ranks and writes
behind (``jobs.harness.overlap``); where it stages its input, a third copies batches to the device. The
switches are the ``Protocol``'s fields. What each figure means: ``docs/stages.md`` ("infer").
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import pathlib
import time

import numpy as np

from jobs import errors, progress
from jobs.artifacts import records, shards
from jobs.backends import base
from jobs.devices import power
from jobs.harness import overlap as overlap_mod
from jobs.results import metrics

log = logging.getLogger("ghostbench.infer")

TOPK = 5
"""Predictions written per image (``predictions.csv``: top1..top5 and their scores)."""
PREFETCH = base.STAGING_SLOTS - 2
"""Batches read (and, where the backend stages, copied to it) ahead of the backend call."""


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How long and how a run is timed; the infer stage builds it from its parameters."""

    batch_size: int
    warmup: int = 2
    """Untimed batches before timing."""
    min_batches: int = 20
    """Timed batches at least: timing-only passes run until reached."""
    min_seconds: float = 2.0
    """Timed compute seconds at least."""
    max_passes: int = 100
    """Upper bound on passes over the data."""
    overlap: bool | None = None
    """Read ahead and rank behind the backend call: None = where the backend computes off the host (a device)."""
    staging: bool | None = None
    """Copy batches to the device on a second thread: None = whenever the backend stages and the pass overlaps,
    False = never."""


def run(protocol: Protocol, backend: base.Backend, dataset: shards.Dataset, predictions_path: pathlib.Path,
        sampler: power.PowerSampler | None = None) -> records.InferSummary:
    """Warm-up, the first pass (predictions written to ``predictions_path``), then timing-only passes until the
    protocol's minimum batches and seconds; the summary's figures (the run's identity is the caller's to add).

    ``sampler``: device power over the timed passes, from the first timed batch to the last."""
    args = protocol
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
    with open(predictions_path, "w", newline="") as f, overlap_mod.InOrderWorker() as post:
        writer = csv.writer(f)
        writer.writerow(["index", "name"] + [f"top{i}" for i in range(1, TOPK + 1)]
                        + [f"score{i}" for i in range(1, TOPK + 1)])

        def rank_and_write(logits: np.ndarray, first: int) -> None:
            idx, scores = metrics.topk(logits, TOPK)
            for row in range(len(logits)):
                writer.writerow([first + row, names[first + row], *idx[row].tolist(),
                                 *(f"{s:.6g}" for s in scores[row].tolist())])
            prog.advance(len(logits))

        overlapped = not backend.computes_on_host if args.overlap is None else args.overlap
        staging = overlapped and backend.stages_input and args.staging is not False
        if overlapped:  # buffers: one in use, PREFETCH queued, one being read
            source = dataset.iter_batches(bs, buffers=PREFETCH + 2)
            if staging:  # a second thread copies to the device, beside the reading and the previous compute
                source = ((backend.stage(batch), count) for batch, count in overlap_mod.prefetch(source, 1))
            batches = overlap_mod.prefetch(source, PREFETCH)
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
        throughput=records.throughput(bs, stats.mean), batch_size=bs, backend="", device="",
        num_images=dataset.num_images, num_batches=num_batches, padded_images=num_batches * bs - dataset.num_images,
        passes=passes, warmup_batches=warm, windows=records.Windows.of(compute, bs), power=power_record,
        transfer_timing="measured by the backend" if h2d else "none: the backend reports no separate transfers",
        end_to_end=records.EndToEnd(
            images=dataset.num_images, seconds=e2e_seconds,
            images_per_second=dataset.num_images / e2e_seconds if e2e_seconds > 0 else 0.0,
            overlapped=overlapped, staged=staging, bytes_read=pass_bytes, bytes_read_per_image=pass_bytes / dataset.num_images,
            compute_seconds=pass_compute_s,
            efficiency=pass_compute_s / e2e_seconds if e2e_seconds > 0 else 0.0))
