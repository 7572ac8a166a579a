"""The timing protocol of an infer run: what is timed, in which order, and for how long.

Like ais_infer: warm-up batches first (untimed: lazy allocation, kernel selection), through the same
path as the timed pass, so that its buffers are allocated and touched before the clock starts; then one
pass over the data in dataset (natural-sort) order gives the predictions, each batch's compute timed by
the backend (``NPU_compute_time``, with the copies apart where the backend has them); when that pass is
too short, timing-only passes run (like ``--loop``) until ``min_batches`` and ``min_seconds`` of compute
are reached or ``max_passes``. That is the first **repetition**. Each further repetition opens a fresh
backend session (its own thread pool, memory and device context, as another run would have), warms it up
and times passes to the same minimums: the repetitions see the variation between runs, not only the
jitter within one, and their throughputs give the run's interval (``records.Repetitions``). A short last
batch is padded; the padding is neither counted as images nor written out, and the real-image rate beside
ais_infer's throughput discounts it. Shards are streamed, so memory stays flat.

What ran beside the timed window is read at its start and end (``jobs.devices.noise``), and the run's
validity is judged against fixed minimums, after MLPerf LoadGen (``VALID_*``).

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
from collections.abc import Callable

import numpy as np

from jobs import errors, progress
from jobs.artifacts import records, shards
from jobs.backends import base
from jobs.devices import noise, power
from jobs.harness import overlap as overlap_mod
from jobs.results import metrics

log = logging.getLogger("ghostbench.infer")

TOPK = 5
"""Predictions written per image (``predictions.csv``: top1..top5 and their scores)."""
PREFETCH = base.STAGING_SLOTS - 2
"""Batches read (and, where the backend stages, copied to it) ahead of the backend call."""
VALID_SECONDS = records.VALID_SECONDS
VALID_BATCHES = records.VALID_BATCHES
VALID_REPETITIONS = records.MIN_REPETITIONS
"""... in at least this many repetitions, whose throughputs differ by at most ``records.UNSTABLE_SPREAD`` of
their median (perf_analyzer's stability rule, across repetitions)."""


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
    repetitions: int = 5
    """Timed repetitions: the first on the session of the predictions pass, each further one on a fresh session."""
    overlap: bool | None = None
    """Read ahead and rank behind the backend call: None = where the backend computes off the host (a device)."""
    staging: bool | None = None
    """Copy batches to the device on a second thread: None = whenever the backend stages and the pass overlaps,
    False = never."""


def run(protocol: Protocol, backend: base.Backend, dataset: shards.Dataset, predictions_path: pathlib.Path,
        sampler: power.PowerSampler | None = None, reopen: Callable[[], base.Backend] | None = None,
        device_noise: noise.DeviceWatch | None = None, gate: Callable[[], None] | None = None) -> records.InferSummary:
    """Warm-up, the predictions pass (top-k written to ``predictions_path``) and the repetitions; the summary's
    figures (the run's identity is the caller's to add).

    ``reopen``: opens a fresh session of the same engine for each repetition after the first (None: the
    repetitions reuse ``backend``); then ``backend`` is described (the summary's ``backend_info``) and closed
    after the first repetition, so that one session at a time holds memory; ``sampler``: device power over the timed window, from the first timed
    batch to the last; ``device_noise``: the accelerator read before and after the timed window; ``gate``: called
    after each repetition's warm-up, just before its timed passes (the predictions pass in the first): the start
    barrier of a run on several devices at once (``jobs.harness.fanout``), so that their timed windows coincide."""
    args = protocol
    bs = args.batch_size
    overlapped = not backend.computes_on_host if args.overlap is None else args.overlap
    staging = overlapped and backend.stages_input and args.staging is not False
    warm = _warm_up(backend, dataset, args, overlapped, staging)
    host = noise.HostSampler(siblings=gate is not None)  # (a run on several devices: their processes are its own)
    if device_noise is not None:
        device_noise.start()
    host.start()
    if sampler is not None:  # power over the timed passes only: after warm-up, until the last timed batch
        sampler.start()
    timing = _Timing()
    bad = _NonFiniteTally(dataset.names)
    if gate is not None:
        gate()
    first = _predictions_pass(backend, dataset, bs, predictions_path, timing, overlapped, staging, bad)
    passes = 1 + _timing_passes(backend, dataset, args, timing, max_passes=args.max_passes - 1)
    rep_throughput = [timing.repetition_throughput(bs)]
    backend_info = backend.describe()
    if reopen is not None and args.repetitions > 1:
        backend.close()  # one session at a time: a fresh one per repetition must not double the memory it takes
    for r in range(2, args.repetitions + 1):
        session = reopen() if reopen is not None else backend
        try:
            _warm_up(session, dataset, args, overlapped=False, staging=False)
            if gate is not None:
                gate()
            timing.next_repetition()
            passes += _timing_passes(session, dataset, args, timing, max_passes=args.max_passes)
            rep_throughput.append(timing.repetition_throughput(bs))
        finally:
            if session is not backend:
                session.close()
    host_noise = host.stop()
    watched = _stop_watch(device_noise)
    timed_images = timing.images()
    power_record = sampler.stop().for_images(timed_images) if sampler is not None else None
    log.info("infer: %d repetition(s), %d passes over the data, %d timed batches", len(rep_throughput), passes,
             len(timing.compute))

    stats = records.LatencyStats.of(timing.compute)
    num_batches = -(-dataset.num_images // bs)
    padded = num_batches * bs - dataset.num_images
    throughput = records.throughput(bs, stats.mean)
    repetitions = records.Repetitions.of(rep_throughput)
    return records.InferSummary(
        compute=stats, h2d=records.LatencyStats.of(timing.h2d), d2h=records.LatencyStats.of(timing.d2h),
        throughput=throughput, batch_size=bs, backend="", device="",
        num_images=dataset.num_images, num_batches=num_batches, padded_images=padded,
        passes=passes, warmup_batches=warm, windows=records.Windows.of(timing.compute, bs), power=power_record,
        transfer_timing="measured by the backend" if timing.h2d else "none: the backend reports no separate transfers",
        end_to_end=first, repetitions=repetitions, backend_info=backend_info,
        padded_share=padded / (num_batches * bs),
        real_images_per_second=throughput * dataset.num_images / (num_batches * bs),
        validity=validity(timing.compute, repetitions, timing.stopped_short, bs),
        noise=records.Noise(host=host_noise, device=watched), nonfinite=bad.record())


def _stop_watch(watch: noise.DeviceWatch | None) -> records.DeviceNoise | None:
    """The device's record; a watcher that fails is recorded as such, never the run's failure."""
    if watch is None:
        return None
    try:
        return watch.stop()
    except Exception as e:  # noqa: BLE001 - NVML's or npu-smi's own errors: the run is timed already
        return records.DeviceNoise("unknown", "", error=f"{type(e).__name__}: {e}")


def validity(compute_ms: list[float], repetitions: records.Repetitions, stopped_short: bool,
             batch_size: int) -> records.Validity:
    """Whether the run meets the fixed minimums (``VALID_*``), with the reason for each one it misses."""
    reasons = []
    seconds = sum(compute_ms) / 1e3
    if seconds < VALID_SECONDS:
        reasons.append(f"short: {seconds:.2f}s of timed compute, a valid run has {VALID_SECONDS:g}s")
    if len(compute_ms) < VALID_BATCHES:
        reasons.append(f"few samples: {len(compute_ms)} timed batches, a valid run has {VALID_BATCHES}")
    if repetitions.n < VALID_REPETITIONS:
        reasons.append(f"{repetitions.n} repetition(s), a valid run has {VALID_REPETITIONS}")
    elif repetitions.median > 0:
        spread = (max(repetitions.throughput) - min(repetitions.throughput)) / repetitions.median
        if spread > records.UNSTABLE_SPREAD:
            reasons.append(f"unstable: the repetitions differ by {spread:.0%} of their median, a valid run by at "
                           f"most {records.UNSTABLE_SPREAD:.0%}")
    if stopped_short:
        reasons.append("max passes reached before the minimum batches and seconds")
    return records.Validity(valid=not reasons, reasons=tuple(reasons), min_seconds=VALID_SECONDS,
                            min_batches=VALID_BATCHES, min_repetitions=VALID_REPETITIONS,
                            seconds=seconds, batches=len(compute_ms))


class _Timing:
    """Every timed batch of the run (ms), and where each repetition starts."""

    def __init__(self) -> None:
        self.compute: list[float] = []
        self.h2d: list[float] = []
        self.d2h: list[float] = []
        self.rows: list[int] = []
        self._start = 0
        self.stopped_short = False

    def record(self, t: base.RunTiming, rows: int) -> None:
        self.compute.append(t.compute_ms)
        self.rows.append(rows)
        if t.h2d_ms is not None:
            self.h2d.append(t.h2d_ms)
        if t.d2h_ms is not None:
            self.d2h.append(t.d2h_ms)

    def next_repetition(self) -> None:
        self._start = len(self.compute)

    def in_repetition(self) -> tuple[int, float]:
        """(batches, compute ms) of the current repetition."""
        part = self.compute[self._start:]
        return len(part), sum(part)

    def repetition_throughput(self, batch_size: int) -> float:
        """The current repetition's images/s: 1000 x batch / its median batch compute. The median, not the mean:
        what else runs on a host only ever slows batches down, in bursts, and a burst in one repetition must not
        decide the run's interval (the run's ``throughput`` stays ais_infer's mean over every batch)."""
        part = self.compute[self._start:]
        return records.throughput(batch_size, float(np.median(part))) if part else 0.0

    def images(self) -> int:
        """Real images inferred in the timed window (the padding of a short last batch not counted)."""
        return int(sum(self.rows))


class _NonFiniteTally:
    """NaN and infinite logits over the predictions pass (``records.NonFinite``), added to by the ranking thread."""

    def __init__(self, names: list[str]) -> None:
        self._names = names
        self.images = self.nan = self.posinf = self.neginf = 0
        self.examples: list[str] = []

    def add(self, logits: np.ndarray, first: int) -> None:
        count = metrics.nonfinite(logits)
        if count is None:
            return
        self.images += len(count.rows)
        self.nan, self.posinf, self.neginf = (self.nan + count.nan, self.posinf + count.posinf,
                                              self.neginf + count.neginf)
        room = records.NONFINITE_EXAMPLES - len(self.examples)
        self.examples += [self._names[first + int(r)] for r in count.rows[:room]]

    def record(self) -> records.NonFinite:
        return records.NonFinite(images=self.images, nan=self.nan, posinf=self.posinf, neginf=self.neginf,
                                 examples=tuple(self.examples))


def _warm_up(backend: base.Backend, dataset: shards.Dataset, args: Protocol, overlapped: bool,
             staging: bool) -> int:
    """``args.warmup`` untimed batches through the path the timed pass takes: the batches are read into the same
    buffers and, where the backend stages, copied into its device slots (lazy allocation and page faults of
    large batches would otherwise land in the first timed batches: half the pass at batch 256, measured)."""
    warm = 0
    if args.warmup <= 0:
        return 0
    for batch, _ in dataset.iter_batches(args.batch_size, buffers=PREFETCH + 2 if overlapped else 1):
        if warm >= args.warmup:
            break
        if staging:
            backend.infer_staged(backend.stage(batch))
        else:
            backend.infer(batch)
        warm += 1
    return warm


def _predictions_pass(backend: base.Backend, dataset: shards.Dataset, bs: int, predictions_path: pathlib.Path,
                      timing: _Timing, overlapped: bool, staging: bool, bad: _NonFiniteTally) -> records.EndToEnd:
    """Every image once, in order, top-k written as we go, non-finite logits counted (``bad``). The backend is
    called from this thread only; reading ahead and ranking behind run beside it (``jobs.harness.overlap``) where
    the pass overlaps."""
    prog = progress.Progress("infer", dataset.num_images, log)
    names = dataset.names
    offset = dataset.first  # the index column counts in the whole dataset (a part of it starts later)
    written = 0
    bytes_before = dataset.bytes_read
    compute_before = sum(timing.compute)
    t0 = time.perf_counter()
    with open(predictions_path, "w", newline="") as f, overlap_mod.InOrderWorker() as post:
        writer = csv.writer(f)
        writer.writerow(["index", "name"] + [f"top{i}" for i in range(1, TOPK + 1)]
                        + [f"score{i}" for i in range(1, TOPK + 1)])

        def rank_and_write(logits: np.ndarray, first: int) -> None:
            idx, scores = metrics.topk(logits, TOPK)
            bad.add(logits, first)
            for row in range(len(logits)):
                writer.writerow([offset + first + row, names[first + row], *idx[row].tolist(),
                                 *(f"{s:.6g}" for s in scores[row].tolist())])
            prog.advance(len(logits))

        if overlapped:  # buffers: one in use, PREFETCH queued, one being read
            source = dataset.iter_batches(bs, buffers=PREFETCH + 2)
            if staging:  # a second thread copies to the device, beside the reading and the previous compute
                source = ((backend.stage(batch), count) for batch, count in overlap_mod.prefetch(source, 1))
            batches = overlap_mod.prefetch(source, PREFETCH)
        else:
            batches = dataset.iter_batches(bs)
        for batch, count in batches:
            logits, t = backend.infer_staged(batch) if isinstance(batch, base.Staged) else backend.infer(batch)
            timing.record(t, count)
            logits = logits[:count]
            if overlapped:  # ranked later: copied, since a backend may reuse its output buffer
                post.submit(rank_and_write, np.array(logits), written)
            else:
                rank_and_write(logits, written)
            written += count
        post.finish()
    seconds = time.perf_counter() - t0
    prog.finish()
    if written != dataset.num_images:
        raise errors.GhostbenchError(f"read {written} images but the dataset index lists {dataset.num_images}")
    pass_bytes = dataset.bytes_read - bytes_before
    compute_s = (sum(timing.compute) - compute_before) / 1e3  # the backend's own time within that same pass
    return records.EndToEnd(
        images=dataset.num_images, seconds=seconds,
        images_per_second=dataset.num_images / seconds if seconds > 0 else 0.0,
        overlapped=overlapped, staged=staging, bytes_read=pass_bytes,
        bytes_read_per_image=pass_bytes / dataset.num_images, compute_seconds=compute_s,
        efficiency=compute_s / seconds if seconds > 0 else 0.0)


def _timing_passes(backend: base.Backend, dataset: shards.Dataset, args: Protocol, timing: _Timing,
                   max_passes: int) -> int:
    """Timing-only passes until the current repetition has ``min_batches`` and ``min_seconds`` of compute, or
    ``max_passes`` (then ``timing.stopped_short``); the passes run."""
    passes = 0
    while True:
        n, ms = timing.in_repetition()
        if n >= args.min_batches and ms >= args.min_seconds * 1e3:
            return passes
        if passes >= max_passes:
            timing.stopped_short = True
            return passes
        for batch, count in dataset.iter_batches(args.batch_size):
            _, t = backend.infer(batch)
            timing.record(t, count)
        passes += 1
