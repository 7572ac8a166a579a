"""One run's summary from the summaries of its devices, when it ran on several at once (``records.DeviceSet``).

The figures, and where each comes from:

- ``throughput``: the sum of the devices' throughputs, ais_bench's "summary throughput" for ``--device 0,1,..``
  (``jobs.harness.fanout``); ``real_images_per_second`` likewise summed.
- ``end_to_end``: every device's predictions pass together, by the wall clock: the images they inferred over the
  time from the first one's start to the last one's end (the start barrier releases them together).
- ``NPU_compute_time`` (and the copies): every device's batches pooled: min, max, count and mean over all of them;
  median and p99 are the slowest device's (the pooled percentiles need every batch, which the devices' summaries
  do not carry).
- ``repetitions`` and ``windows``: the devices' figures added repetition by repetition and window by window (the
  barrier starts each repetition on every device at once, so the k-th ones overlap in time).
- ``validity``: every device's, and the devices started together. A device's reason keeps its first word first and
  names the device after it (``short: none:1: 0.6s of timed compute, ...``): reports and ``compare`` mark a run by
  that word (``short``, ``few samples``, ``unstable``), as for one device.
- ``power``: none; each device's summary keeps its own (an Ascend card's power is the whole card's, read by each).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from jobs.artifacts import records


@dataclasses.dataclass(frozen=True)
class DeviceOutcome:
    """What a device's worker reports beside its summary.json."""

    device: str
    summary: str
    """Its summary.json, relative to the run's output."""
    started: float
    """``time.monotonic()`` when the start barrier released its predictions pass."""
    together: bool
    """Every gate released it with the others."""
    first: int
    """Index of its first image in the dataset."""


def _pool(stats: Sequence[records.LatencyStats]) -> records.LatencyStats:
    got = [s for s in stats if s.count]
    if not got:
        return records.LatencyStats()
    n = sum(s.count for s in got)
    return records.LatencyStats(min=min(s.min for s in got), max=max(s.max for s in got),
                                mean=sum(s.mean * s.count for s in got) / n, median=max(s.median for s in got),
                                p99=max(s.p99 for s in got), count=n)


def _on(device: str, reason: str) -> str:
    """``short: 0.6s ...`` of ``device`` as ``short: <device>: 0.6s ...`` (its mark first, as one device's)."""
    mark, sep, rest = reason.partition(": ")
    return f"{mark}: {device}: {rest}" if sep else f"{reason}: {device}"


def _add(series: Sequence[Sequence[float]]) -> list[float]:
    """Element-wise sums over the common length."""
    n = min((len(s) for s in series), default=0)
    return [sum(s[i] for s in series) for i in range(n)]


def combine(parts: Sequence[records.InferSummary], outcomes: Sequence[DeviceOutcome], divide_input: bool,
            num_images: int, disagreeing: int | None = None) -> records.InferSummary:
    """The run's summary (see the module's docstring); ``num_images``: the dataset's, each image once;
    ``disagreeing``: images whose top-1 differed between devices (None: not compared, ``divide_input``). The caller
    adds the run's identity (backend, device list, target, engine) as for one device."""
    t0 = min(o.started for o in outcomes)
    ends = [o.started + p.end_to_end.seconds for o, p in zip(outcomes, parts)]
    wall = max(ends) - t0
    inferred = sum(p.end_to_end.images for p in parts)
    rows = []
    for o, p in zip(outcomes, parts):
        info = p.backend_info.get("device_info") or {}
        rows.append(records.DeviceRun(
            device=o.device, throughput=p.throughput, images=p.num_images, first=o.first,
            end_to_end_images_per_second=p.end_to_end.images_per_second, started=o.started - t0,
            seconds=p.end_to_end.seconds, summary=o.summary, valid=p.validity.valid,
            physical_id=p.backend_info.get("physical_device_id"), chips_on_card=info.get("chips_on_card"),
            card=info.get("card"), npu_id=info.get("npu_id")))
    counts = {r.chips_on_card for r in rows if r.chips_on_card}
    cards = {r.card for r in rows if r.card}
    together = all(o.together for o in outcomes)
    summed = sum(p.throughput for p in parts)
    devices = records.DeviceSet(devices=tuple(rows), divide_input=divide_input, summed_throughput=summed,
                                wall_images_per_second=inferred / wall if wall > 0 else 0.0, wall_seconds=wall,
                                started_together=together, chips_per_card=counts.pop() if len(counts) == 1 else None,
                                card=cards.pop() if len(cards) == 1 else None, disagreeing_images=disagreeing)
    e2e = [p.end_to_end for p in parts]
    pass_seconds = sum(e.seconds for e in e2e)
    compute_seconds = sum(e.compute_seconds for e in e2e)
    bytes_read = sum(e.bytes_read for e in e2e)
    end_to_end = records.EndToEnd(
        images=inferred, seconds=wall, images_per_second=devices.wall_images_per_second,
        overlapped=all(e.overlapped for e in e2e), staged=all(e.staged for e in e2e), bytes_read=bytes_read,
        bytes_read_per_image=bytes_read / inferred if inferred else 0.0, compute_seconds=compute_seconds,
        efficiency=compute_seconds / pass_seconds if pass_seconds > 0 else 0.0,
        what="every device's predictions pass at once: their images over the wall clock from the first start to "
             "the last end")
    reasons = [_on(r.device, why) for r, p in zip(rows, parts) for why in p.validity.reasons]
    if not together:
        reasons.append("not together: the devices did not start together (one did not come to the start barrier in "
                       "time)")
    v0 = parts[0].validity
    validity = records.Validity(valid=not reasons, reasons=tuple(reasons), min_seconds=v0.min_seconds,
                                min_batches=v0.min_batches, min_repetitions=v0.min_repetitions,
                                seconds=sum(p.validity.seconds for p in parts),
                                batches=sum(p.validity.batches for p in parts))
    windows = _add([p.windows.throughput for p in parts])
    if divide_input:
        nonfinite = records.NonFinite(
            images=sum(p.nonfinite.images for p in parts), nan=sum(p.nonfinite.nan for p in parts),
            posinf=sum(p.nonfinite.posinf for p in parts), neginf=sum(p.nonfinite.neginf for p in parts),
            examples=tuple(x for p in parts for x in p.nonfinite.examples)[:records.NONFINITE_EXAMPLES])
    else:  # every device inferred every image: the worst device's count, each image once
        nonfinite = max((p.nonfinite for p in parts), key=lambda n: n.images)
    busy = [p.noise for p in parts if p.noise is not None and p.noise.busy]
    batches = sum(p.num_batches for p in parts)
    padded = sum(p.padded_images for p in parts)
    first = parts[0]
    return dataclasses.replace(
        first, compute=_pool([p.compute for p in parts]), h2d=_pool([p.h2d for p in parts]),
        d2h=_pool([p.d2h for p in parts]), throughput=summed, num_images=num_images, num_batches=batches,
        padded_images=padded, passes=max(p.passes for p in parts),
        warmup_batches=sum(p.warmup_batches for p in parts), end_to_end=end_to_end,
        windows=records.Windows(tuple(windows), *(_median_min_max(windows))), power=None,
        repetitions=records.Repetitions.of(_add([p.repetitions.throughput for p in parts])),
        padded_share=padded / (batches * first.batch_size) if batches else 0.0,
        real_images_per_second=sum(p.real_images_per_second for p in parts), validity=validity,
        noise=busy[0] if busy else first.noise, nonfinite=nonfinite,
        backend_info={**first.backend_info, "devices": [p.backend_info for p in parts]}, devices=devices)


def _median_min_max(values: Sequence[float]) -> tuple[float, float, float]:
    if not values:
        return 0.0, 0.0, 0.0
    ordered = sorted(values)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return median, ordered[0], ordered[-1]
