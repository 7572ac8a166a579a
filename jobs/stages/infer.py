"""Stage infer: engine + preprocessed shards + backend + batch size -> predictions and summary.json.

The command around the timing protocol (``jobs.harness.passes``): it loads the committed engine (checked
against its manifest), opens the backend on the device asked for, checks that engine and data fit, times
the run, and commits ``predictions.csv`` and ``summary.json`` with where it ran. With ``--devices`` it runs on
several devices of this host at once (``jobs.harness.multidevice``). Flags and outputs: ``docs/stages.md`` ("infer").
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import functools
import json
import logging
import pathlib
import platform
import sys
from collections.abc import Callable, Sequence

import numpy as np

from jobs import backends, errors, params
from jobs import store as store_mod
from jobs.artifacts import commit, records, shards
from jobs.backends import base
from jobs.devices import noise, power, provenance
from jobs.harness import multidevice, passes
from jobs.stages import cli

log = logging.getLogger("ghostbench.infer")

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


def measure(args: params.InferParams, device: str, engine: base.EngineInfo, dataset: shards.Dataset,
            folder: pathlib.Path, overlap: bool | None = None, staging: bool | None = None,
            gate: Callable[[], None] | None = None) -> records.InferSummary:
    """One device's run: the backend opened on ``device``, engine and data checked, the timing protocol
    (``jobs.harness.passes``) with ``gate`` before each timed repetition; ``predictions.csv`` and ``summary.json``
    written to ``folder``; the summary returned."""
    backend_cls = backends.REGISTRY.load(args.backend)
    options = dict(args.options or {})
    if args.backend == "null":  # no engine: the null backend takes the data's element type
        options.setdefault("dtype", str(dataset.dtype))
    log.info("infer: %s on %s, batch %d, %d images from %s",
             args.backend, device, args.batch_size, dataset.num_images, dataset.uri)
    resources = contextlib.ExitStack()
    backend = backend_cls.open(engine, device, options, args.precision)
    try:
        check_compatible(backend.input, dataset, args.batch_size)
        # device power around the timed passes (jobs.devices.power); a method asked for by name that cannot run exits 3 here
        sampler = power.sampler_for(args.power, device, args.power_interval_ms, backend.describe)
        if sampler is not None:
            resources.callback(sampler.close)
        protocol = passes.Protocol(batch_size=args.batch_size, warmup=args.warmup, min_batches=args.min_batches,
                                   min_seconds=args.min_seconds, max_passes=args.max_passes,
                                   repetitions=args.repetitions, overlap=overlap, staging=staging)
        summary = passes.run(protocol, backend, dataset, folder / records.PREDICTIONS, sampler,
                             reopen=lambda: backend_cls.open(engine, device, options, args.precision),
                             device_noise=noise.watch_device(device, backend.describe()), gate=gate)
    finally:
        backend.close()
        resources.close()
    summary = _identify(summary, args, device, engine, dataset)
    (folder / records.SUMMARY).write_text(summary.to_json())
    return summary


def _identify(summary: records.InferSummary, args: params.InferParams, device: str, engine: base.EngineInfo,
              dataset: shards.Dataset) -> records.InferSummary:
    """The run's identity and where it ran, added to the protocol's figures."""
    return dataclasses.replace(
        summary, backend=args.backend, device=device,
        target=args.target_name or f"{args.backend}-{device}", engine=args.engine,
        engine_record=engine.record, data=dataset.uri, input_mode=dataset.mode,
        precision=args.precision, provenance=provenance.collect(),
        host={"machine": platform.machine(), "processor": platform.processor(),
              "python": platform.python_version(), "numpy": np.__version__})


def run(args: params.InferParams, out: store_mod.Store, overlap: bool | None = None,
        staging: bool | None = None) -> None:
    """The run: engine and data checked, the timing protocol on one device or on several at once
    (``jobs.harness.multidevice``), summary.json committed.

    ``overlap``, ``staging``: the protocol's switches (None: its own choice), forced by the benchmarks' A/B."""
    backends.REGISTRY.load(args.backend)  # a backend that is not installed: one line, before any work
    dataset = shards.open_dataset(args.data)
    if dataset.num_images == 0:
        raise errors.BadInput(f"--data {dataset.uri}: the dataset has no images")
    resources = contextlib.ExitStack()  # the engine's local copy, kept while the backend runs
    engine = load_engine(args.engine, resources)
    try:
        with commit.Output(out, "infer", args.to_dict(), args.upstream()) as output:
            if args.devices:
                summary = multidevice.run(measure, args, engine, dataset, output.dir, overlap, staging)
                summary = _identify(summary, args, ",".join(args.devices), engine, dataset)
                (output.dir / records.SUMMARY).write_text(summary.to_json())
            else:
                summary = measure(args, args.device, engine, dataset, output.dir, overlap, staging)
            output.record.update({"throughput": summary.throughput, "batch_size": summary.batch_size,
                                  "num_images": summary.num_images, "passes": summary.passes,
                                  "nonfinite_images": summary.nonfinite.images})
    finally:
        resources.close()
    _log_summary(summary)


def _log_summary(summary: records.InferSummary) -> None:
    r = summary.repetitions
    log.info("infer: throughput %.1f images/s (compute; %d repetitions, median %.1f, a rerun within %.1f..%.1f), "
             "end to end %.1f images/s", summary.throughput, r.n, r.median, r.low, r.high,
             summary.end_to_end.images_per_second)
    if summary.devices is not None:
        d = summary.devices
        log.info("infer: %d devices at once: %.1f images/s summed (ais_bench's figure), %.1f images/s by the wall "
                 "clock%s", d.count, d.summed_throughput, d.wall_images_per_second,
                 "" if d.started_together else "; they did NOT start together")
    if summary.nonfinite.images:  # kept as evidence; eval fails the run's gate (docs/stages.md, "infer")
        log.warning("infer: %s; predictions.csv and summary.json keep them, and eval fails this run's accuracy "
                    "gate", summary.nonfinite.line(summary.num_images))
    if not summary.validity.valid:
        log.info("infer: not a valid run: %s", "; ".join(summary.validity.reasons))
    if summary.noise is not None and summary.noise.busy:
        log.warning("infer: busy while timed: %s", "; ".join(summary.noise.reasons))
    p = summary.power
    if p is not None and p.joules_per_image is not None:
        log.info("infer: power %.1f W mean, %.1f W max (%s, %s, %d samples): %.4g J/image, %.4g images/J",
                 p.mean_watts, p.max_watts, p.method, p.energy, p.samples, p.joules_per_image, p.images_per_joule)


def main(argv: Sequence[str] | None = None, *, overlap: bool | None = None, staging: bool | None = None) -> int:
    """The stage's command; ``overlap`` and ``staging`` force the timing protocol's switches (benchmarks, tests)."""
    return cli.main(params.InferParams, functools.partial(run, overlap=overlap, staging=staging), argv)


if __name__ == "__main__":
    sys.exit(main())
