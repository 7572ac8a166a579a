"""One infer run on several devices of this host at once (the stage's ``--devices``), as ais_bench measures a card.

ais_bench's ``--device 0,1,2,3`` runs one process per device, started together, each on every input file, or, with
``--divide-input``, on its share of them (the files split evenly in order: each ``len // n``, the first
``len % n`` one more); its card figure is the sum of the processes' throughputs (``jobs.harness.fanout``, whose
docstring cites its source). Here each device's process runs the whole timing protocol (the stage's
``jobs.stages.infer.measure``) and
writes ``devices/<i>/summary.json`` and ``devices/<i>/predictions.csv``; this module then writes the run's own
``predictions.csv``, every image once (the parts in order with ``--divide-input``; else the first device's, every
device having inferred every image, with the images whose top-1 differs between devices counted: ``disagreeing``),
and returns the run's summary (``jobs.harness.combine``): the summed
throughput, the wall-clock images/s of the whole and every device's row (``records.DeviceSet``). Accuracy (the
eval stage) is computed over that union.
"""

from __future__ import annotations

import csv
import logging
import pathlib
import shutil
from collections.abc import Callable
from typing import Any

from jobs import errors
from jobs.artifacts import records, shards
from jobs.backends import base
from jobs.harness import combine, fanout

InferParams = Any
"""``jobs.InferParams`` (a layer above this one): ``devices``, ``divide_input`` and ``data`` are read."""

log = logging.getLogger("ghostbench.infer")


def divide(num_images: int, parts: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each part, in order: ais_bench's ``--divide-input`` split, ``num_images // parts`` each
    and the first ``num_images % parts`` one more. ``BadInput`` when some part would be empty."""
    if num_images < parts:
        raise errors.BadInput(f"--divide-input: {num_images} images cannot be divided among {parts} devices (each "
                              "needs at least one)")
    size, extra = divmod(num_images, parts)
    bounds, start = [], 0
    for i in range(parts):
        stop = start + size + (1 if i < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


Measure = Callable[..., records.InferSummary]
"""The stage's one-device run (``infer.measure``): passed in, since the stage module imports this one."""


def _worker(index: int, gate: fanout.Gate, measure: Measure, args: InferParams, device: str,
            engine: base.EngineInfo, start: int, stop: int, folder: str, overlap: bool | None,
            staging: bool | None, level: int) -> combine.DeviceOutcome:
    """One device's process (``fanout.run``): its part of the data, the protocol with the shared gate."""
    logging.basicConfig(level=level, format=f"%(asctime)s %(name)s [{device}] %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    dataset = shards.open_dataset(args.data)
    if (start, stop) != (0, dataset.num_images):
        dataset = dataset.part(start, stop)
    out = pathlib.Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    measure(args, device, engine, dataset, out, overlap, staging, gate)
    return combine.DeviceOutcome(device=device, summary=f"{records.DEVICES_DIR}/{index}/{records.SUMMARY}",
                                 started=gate.released_at[0] if gate.released_at else 0.0, together=gate.together,
                                 first=start)


def run(measure: Measure, args: InferParams, engine: base.EngineInfo, dataset: shards.Dataset,
        folder: pathlib.Path, overlap: bool | None = None, staging: bool | None = None,
        start_timeout_s: float = fanout.START_TIMEOUT_S) -> records.InferSummary:
    """Every device of ``args.devices`` at once, each run by ``measure`` in a process of its own (a module-level
    function: it is pickled by name); their outputs below ``folder/devices/``, the run's
    ``predictions.csv`` in ``folder``; the run's summary, without its identity (the stage adds it). Raises what a
    device raised, naming the device (``fanout.run``)."""
    devices = list(args.devices)
    bounds = divide(dataset.num_images, len(devices)) if args.divide_input else [(0, dataset.num_images)] * len(devices)
    log.info("infer: %d devices at once (%s)%s", len(devices), ", ".join(devices),
             ", the images divided among them" if args.divide_input else ", each on every image")
    level = logging.getLogger("ghostbench").getEffectiveLevel()
    work = [(measure, args, d, engine, lo, hi, str(folder / records.DEVICES_DIR / str(i)), overlap, staging, level)
            for i, (d, (lo, hi)) in enumerate(zip(devices, bounds))]
    outcomes, _ = fanout.run(_worker, work, devices, start_timeout_s)
    parts = [records.InferSummary.from_json((folder / o.summary).read_text(), str(folder / o.summary))
             for o in outcomes]
    _write_predictions(folder, len(devices), args.divide_input)
    differ = None if args.divide_input else disagreeing(
        [folder / records.DEVICES_DIR / str(i) / records.PREDICTIONS for i in range(len(devices))])
    if differ:
        log.warning("infer: %d image(s) have another top-1 on some device than on %s (the run's predictions are "
                    "%s's)", len(differ), devices[0], devices[0])
    return combine.combine(parts, outcomes, args.divide_input, dataset.num_images,
                           None if differ is None else len(differ))


def disagreeing(paths: list[pathlib.Path]) -> list[int]:
    """Indices of the images whose top-1 in some of ``paths`` (predictions.csv of devices that each inferred every
    image) is not the first's, in order; [] when they all agree. ``BadInput`` when a file lists other images."""
    tables = []
    for path in paths:
        with open(path, newline="") as f:
            tables.append({int(row["index"]): row["top1"] for row in csv.DictReader(f)})
    first = tables[0]
    for path, table in zip(paths[1:], tables[1:]):
        if table.keys() != first.keys():
            raise errors.BadInput(f"{path}: lists {len(table)} images, {paths[0]} {len(first)}: not the same images")
    return [i for i in sorted(first) if any(t[i] != first[i] for t in tables[1:])]


def _write_predictions(folder: pathlib.Path, count: int, divided: bool) -> None:
    """The run's predictions.csv, every image once: the devices' parts in order, or the first device's."""
    sources = [folder / records.DEVICES_DIR / str(i) / records.PREDICTIONS for i in range(count if divided else 1)]
    with open(folder / records.PREDICTIONS, "wb") as out:
        for i, src in enumerate(sources):
            with open(src, "rb") as f:
                if i:
                    f.readline()  # the header, written once
                shutil.copyfileobj(f, out)
