"""The documents a run leaves, as typed records with one writer (``to_dict``) and one reader (``from_dict``).

- ``LatencyStats``: ais_infer's statistics of one timed quantity, in milliseconds.
- ``InferSummary``: ``summary.json`` of an infer run, ais_infer's keys and layout kept exactly
  (``NPU_compute_time``, ``H2D_latency``, ``D2H_latency``, ``throughput``) plus ghostbench's own
  (``PowerRecord``: the device's power and energy per image over the timed passes).
- ``SeedAccuracy``: ``accuracy.json`` exactly as the seed's ``imagenet_acc_eval.py`` writes it.
- ``ReportRun`` and ``Report``: ``report.json`` of a sweep (``BestBatch``: a target's best batch sizes,
  ``Price``: what its machine costs an hour).

Infer, eval, the reports and the benchmarks share these types; nothing else spells their keys.
Formats: ``shared/facts/FORMATS.md`` ("Inference summary", "Accuracy report").
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jobs import errors

SUMMARY = "summary.json"
PREDICTIONS = "predictions.csv"
ACCURACY = "accuracy.json"
ENGINE_RECORD = "engine.json"
REPORT_FILES = ("report.md", "report.json", "report.csv")
PLOT_FILES = ("report-throughput.png", "report-throughput.svg", "report-latency.png", "report-latency.svg")
"""The eval stage's plots (``jobs.results.plots``), beside the reports in its output; the controller publishes them with the
reports to ``sweeps/<id>/``. report.md links them by these names (relative links)."""


def _field(data: Mapping[str, Any], key: str, source: str) -> Any:
    try:
        return data[key]
    except (KeyError, TypeError) as e:
        raise errors.BadInput(f"{source}: no {key!r}; not a ghostbench document of this version") from e


@dataclasses.dataclass(frozen=True)
class LatencyStats:
    """ais_infer's latency statistics of one quantity (a batch's compute, H2D or D2H copy), in milliseconds."""

    min: float = 0.0
    max: float = 0.0
    mean: float = 0.0
    median: float = 0.0
    p99: float = 0.0
    """The 99th percentile, ais_infer's ``percentile(99%)``."""
    count: int = 0
    """Samples (batches); 0 when nothing was measured (all figures are then 0)."""

    UNIT = "ms"

    @classmethod
    def of(cls, values_ms: Sequence[float]) -> LatencyStats:
        """The statistics of ``values_ms`` (milliseconds); all zero for no values."""
        if len(values_ms) == 0:
            return cls()
        a = np.asarray(values_ms, dtype=np.float64)
        return cls(min=float(a.min()), max=float(a.max()), mean=float(a.mean()), median=float(np.median(a)),
                   p99=float(np.percentile(a, 99)), count=int(a.size))

    def to_dict(self) -> dict[str, Any]:
        return {"min": self.min, "max": self.max, "mean": self.mean, "median": self.median,
                "percentile(99%)": self.p99, "count": self.count}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "latency") -> LatencyStats:
        return cls(min=float(_field(d, "min", source)), max=float(_field(d, "max", source)),
                   mean=float(_field(d, "mean", source)), median=float(_field(d, "median", source)),
                   p99=float(_field(d, "percentile(99%)", source)), count=int(d.get("count", 0)))


def throughput(batch_size: int, mean_compute_ms: float) -> float:
    """ais_infer's throughput: images per second from the mean compute time of one batch (ms)."""
    return 1000.0 * batch_size / mean_compute_ms if mean_compute_ms > 0 else 0.0


@dataclasses.dataclass(frozen=True)
class EndToEnd:
    """The first pass over the data: reading shards, feeding the backend, top-k, writing predictions."""

    images: int
    seconds: float
    """Wall time of the pass (s)."""
    images_per_second: float
    overlapped: bool
    """Reading ahead and ranking behind ran beside the backend (a device backend) rather than between calls."""
    bytes_read: int
    """Bytes read from the store in the pass."""
    bytes_read_per_image: float
    compute_seconds: float
    """The backend's own time within the pass (s)."""
    efficiency: float
    """compute_seconds / seconds: the backend's share of the pass (1.0: the harness costs nothing)."""
    staged: bool = False
    """The copies to the device ran on the reading thread, beside the previous batch's compute."""
    what: str = "first pass: reading shards, feeding the backend, top-k, writing predictions"

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "seconds": self.seconds, "images_per_second": self.images_per_second,
                "what": self.what, "overlapped": self.overlapped, "bytes_read": self.bytes_read,
                "bytes_read_per_image": self.bytes_read_per_image, "compute_seconds": self.compute_seconds,
                "efficiency": self.efficiency, "staged": self.staged}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EndToEnd:
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


WINDOWS = 5
"""Timing windows per run: the timed batches split into this many consecutive windows."""
UNSTABLE_SPREAD = 0.10
"""A run is unstable when its windows' throughputs differ by more than this share of their median
(perf_analyzer's stability rule)."""


@dataclasses.dataclass(frozen=True)
class Windows:
    """Throughput (images/s) of consecutive timing windows of one run, their median and range."""

    throughput: tuple[float, ...]
    median: float
    min: float
    max: float

    @property
    def spread(self) -> float:
        """(max - min) / median: 0 for identical windows."""
        return (self.max - self.min) / self.median if self.median > 0 else 0.0

    @property
    def stable(self) -> bool:
        return self.spread <= UNSTABLE_SPREAD

    @classmethod
    def of(cls, compute_ms: Sequence[float], batch_size: int, windows: int = WINDOWS) -> Windows:
        """Split per-batch compute times (ms) into ``windows`` consecutive windows (fewer with fewer batches)."""
        if len(compute_ms) == 0:
            return cls((), 0.0, 0.0, 0.0)
        chunks = np.array_split(np.asarray(compute_ms, dtype=np.float64), min(windows, len(compute_ms)))
        rates = tuple(float(1000.0 * batch_size * len(c) / c.sum()) if c.sum() > 0 else 0.0 for c in chunks)
        return cls(rates, float(np.median(rates)), min(rates), max(rates))

    def to_dict(self) -> dict[str, Any]:
        return {"throughput": list(self.throughput), "median": self.median, "min": self.min, "max": self.max,
                "spread": self.spread, "stable": self.stable, "rule": f"unstable above {UNSTABLE_SPREAD:.0%} spread"}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Windows:
        return cls(tuple(d["throughput"]), d["median"], d["min"], d["max"])


@dataclasses.dataclass(frozen=True)
class PowerRecord:
    """How the device's power was sampled during the timed passes, and the energy per image (``jobs.devices.power``).

    ``summary.json``'s ``power``: absent when power was off (the CPU, the null backend, ``--power off``); with
    ``measured`` false and the ``reason`` when ``--power auto`` chose a method that could not run here."""

    method: str
    """``nvml`` (an NVIDIA GPU) or ``npu-smi`` (an Ascend card)."""
    measured: bool = True
    reason: str = ""
    """Why nothing was measured (``measured`` false)."""
    source: str = ""
    """What was read: the GPU (index, name, UUID) or the npu-smi command, and how the device was found."""
    scope: str = ""
    """``board`` (the whole GPU board) or ``card`` (the whole Ascend card: every chip of a multi-chip card)."""
    energy: str = ""
    """``counter``: the device's own energy counter at start and stop (exact); ``integrated``: the power readings
    integrated over the window (trapezoids)."""
    interval_ms: float = 0.0
    """The sampling interval asked for (an npu-smi reading takes as long as npu-smi does)."""
    samples: int = 0
    """Power readings taken (at start, every interval, at stop)."""
    failed_samples: int = 0
    seconds: float = 0.0
    """The measured window: the timed passes, from the first timed batch to the last."""
    mean_watts: float = 0.0
    """joules / seconds."""
    max_watts: float = 0.0
    joules: float = 0.0
    images: int = 0
    """Images inferred in the window: the dataset's images times the timed passes (padding not counted)."""
    first_error: str | None = None
    """The first failed reading's error, where one failed."""

    @classmethod
    def unavailable(cls, method: str, reason: str, source: str = "") -> PowerRecord:
        return cls(method=method, measured=False, reason=reason, source=source)

    def for_images(self, images: int) -> PowerRecord:
        return dataclasses.replace(self, images=int(images))

    @property
    def joules_per_image(self) -> float | None:
        return self.joules / self.images if self.measured and self.images > 0 else None

    @property
    def images_per_joule(self) -> float | None:
        return self.images / self.joules if self.measured and self.joules > 0 else None

    def to_dict(self) -> dict[str, Any]:
        if not self.measured:
            return {"method": self.method, "measured": False, "reason": self.reason, "source": self.source}
        d = {"method": self.method, "measured": True, "source": self.source, "scope": self.scope,
             "energy": self.energy, "interval_ms": self.interval_ms, "samples": self.samples,
             "failed_samples": self.failed_samples, "seconds": self.seconds, "mean_watts": self.mean_watts,
             "max_watts": self.max_watts, "joules": self.joules, "images": self.images,
             "joules_per_image": self.joules_per_image, "images_per_joule": self.images_per_joule}
        if self.first_error is not None:
            d["first_error"] = self.first_error
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PowerRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclasses.dataclass(frozen=True)
class InferSummary:
    """``summary.json``: one infer run (one target, one batch size). Times in ms, throughput in images/s."""

    compute: LatencyStats
    """``NPU_compute_time``: the backend computing one batch (ais_infer's name, kept for every device)."""
    h2d: LatencyStats
    """``H2D_latency``: host-to-device copies, one sample per batch where the backend has them."""
    d2h: LatencyStats
    """``D2H_latency``: device-to-host copies."""
    throughput: float
    """1000 x batch_size / mean compute ms (images/s), as ais_infer computes it."""
    batch_size: int
    backend: str
    device: str
    num_images: int
    num_batches: int
    padded_images: int
    """Images added to pad the last batch: neither counted nor written."""
    passes: int
    """Passes over the data (more than one when a pass is too short for a stable timing)."""
    warmup_batches: int
    transfer_timing: str
    end_to_end: EndToEnd
    windows: Windows = Windows((), 0.0, 0.0, 0.0)
    """The timed batches in consecutive windows: the spread the figure carries."""
    precision: str = "fp32"
    """What the target asked the backend to compute in (``jobs.params.PRECISIONS``)."""
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Date, host CPU, library versions, ghostbench revision (``jobs.devices.provenance``)."""
    target: str = ""
    engine: str | None = None
    engine_record: dict[str, Any] = dataclasses.field(default_factory=dict)
    data: str = ""
    input_mode: str = ""
    backend_info: dict[str, Any] = dataclasses.field(default_factory=dict)
    host: dict[str, Any] = dataclasses.field(default_factory=dict)
    power: PowerRecord | None = None
    """Device power during the timed passes (``jobs.devices.power``); None: not sampled (the key is then absent)."""

    UNITS = {"latency": "ms", "throughput": "images/s"}

    def to_dict(self) -> dict[str, Any]:
        return {
            "NPU_compute_time": self.compute.to_dict(),
            "H2D_latency": self.h2d.to_dict(),
            "D2H_latency": self.d2h.to_dict(),
            "throughput": self.throughput,
            "batch_size": self.batch_size,
            "backend": self.backend,
            "device": self.device,
            "num_images": self.num_images,
            "num_batches": self.num_batches,
            "padded_images": self.padded_images,
            "passes": self.passes,
            "warmup_batches": self.warmup_batches,
            "transfer_timing": self.transfer_timing,
            "end_to_end": self.end_to_end.to_dict(),
            "windows": self.windows.to_dict(),
            "precision": self.precision,
            "provenance": self.provenance,
            "units": dict(self.UNITS),
            "target": self.target,
            "engine": self.engine,
            "engine_record": self.engine_record,
            "data": self.data,
            "input_mode": self.input_mode,
            "backend_info": self.backend_info,
            "host": self.host,
            **({"power": self.power.to_dict()} if self.power is not None else {}),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = SUMMARY) -> InferSummary:
        """``BadInput`` naming ``source`` when a key is missing."""
        get = lambda k: _field(d, k, source)  # noqa: E731
        return cls(
            compute=LatencyStats.from_dict(get("NPU_compute_time"), source),
            h2d=LatencyStats.from_dict(get("H2D_latency"), source),
            d2h=LatencyStats.from_dict(get("D2H_latency"), source),
            throughput=float(get("throughput")), batch_size=int(get("batch_size")), backend=get("backend"),
            device=get("device"), num_images=int(get("num_images")), num_batches=int(get("num_batches")),
            padded_images=int(get("padded_images")), passes=int(get("passes")),
            warmup_batches=int(get("warmup_batches")), transfer_timing=get("transfer_timing"),
            end_to_end=EndToEnd.from_dict(get("end_to_end")), windows=Windows.from_dict(get("windows")),
            precision=get("precision"), provenance=d.get("provenance") or {}, target=d.get("target", ""),
            engine=d.get("engine"),
            engine_record=d.get("engine_record") or {}, data=d.get("data", ""), input_mode=d.get("input_mode", ""),
            backend_info=d.get("backend_info") or {}, host=d.get("host") or {},
            power=PowerRecord.from_dict(d["power"]) if d.get("power") else None)

    @classmethod
    def from_json(cls, text: str | bytes, source: str = SUMMARY) -> InferSummary:
        try:
            return cls.from_dict(json.loads(text), source)
        except ValueError as e:
            raise errors.BadInput(f"{source}: not JSON ({e})") from e


@dataclasses.dataclass(frozen=True)
class SeedAccuracy:
    """``accuracy.json`` in the seed's format: images, classes and top-k accuracy in percent (2 decimals)."""

    num_images: int
    num_classes: int
    topk: dict[int, float]
    """k -> accuracy in percent."""

    TITLE = "Overall statistical evaluation"

    def to_dict(self) -> dict[str, Any]:
        value = [{"key": "Number of images", "value": str(self.num_images)},
                 {"key": "Number of classes", "value": str(self.num_classes)}]
        value += [{"key": f"Top{k} accuracy", "value": f"{self.topk[k]:.2f}%"} for k in sorted(self.topk)]
        return {"title": self.TITLE, "value": value}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = ACCURACY) -> SeedAccuracy:
        """Reads the seed's format (values rounded to 2 decimals, as written)."""
        items = {v["key"]: v["value"] for v in _field(d, "value", source)}
        topk = {int(k[3:].split()[0]): float(v.rstrip("%")) for k, v in items.items() if k.startswith("Top")}
        return cls(num_images=int(items["Number of images"]), num_classes=int(items["Number of classes"]), topk=topk)


@dataclasses.dataclass(frozen=True)
class ReportRun:
    """One row of a sweep report: a run's throughput and accuracy."""

    run: str
    """URI of the infer output."""
    target: str
    backend: str
    device: str
    input_mode: str | None
    batch_size: int
    num_images: int
    throughput: float
    """images/s, compute only (ais_infer's throughput)."""
    compute_mean_ms: float
    compute_p99_ms: float
    end_to_end_images_per_second: float
    passes: int
    accuracy: dict[str, float]
    """"1".."5" -> top-k accuracy in percent (4 decimals)."""
    gate_pass: bool
    throughput_min: float = 0.0
    """The slowest timing window's images/s."""
    throughput_max: float = 0.0
    """The fastest timing window's images/s."""
    stable: bool = True
    """Windows within the stability rule (``UNSTABLE_SPREAD``)."""
    precision: str = "fp32"
    provider: str = ""
    """The provider or chip that actually ran it (ONNX Runtime's first provider, the NPU, or the backend)."""
    fallback: bool = False
    """The provider that ran is not the one asked for (allowed by ``fallback=true``)."""
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Where it ran: date, host CPU, versions, revision (``InferSummary.provenance``)."""
    joules_per_image: float | None = None
    """Device energy per image over the timed passes (``InferSummary.power``); None: not measured."""
    images_per_joule: float | None = None
    mean_watts: float | None = None
    """Mean device power (W) over the timed passes; None: not measured."""
    power_method: str | None = None
    """How it was measured: ``nvml (counter)``, ``npu-smi (integrated)``; None: not measured."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReportRun:
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


@dataclasses.dataclass(frozen=True)
class Reference:
    """What accuracy is compared with, and the gate."""

    top1: float
    top5: float
    gate: float
    """A run passes when at most this many points below the reference."""
    kind: str
    """imagenet (published accuracy) or agreement (labels from a reference model)."""


LEFT_OUT_EXAMPLES = 5
"""Left-out images a report names (the preprocess shards' index.json lists them all)."""


@dataclasses.dataclass(frozen=True)
class LeftOut:
    """Images of the dataset left out of the evaluated set (preprocess ``--skip-bad``): how many, why, which."""

    counts: dict[str, int]
    """reason kind (``undecodable``, ``unlabelled``) -> images."""
    examples: tuple[dict[str, str], ...] = ()
    """The first few (``LEFT_OUT_EXAMPLES``): ``{"name": ..., "reason": ...}``."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "counts": dict(self.counts), "examples": [dict(e) for e in self.examples]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LeftOut:
        return cls(counts=dict(d["counts"]), examples=tuple(dict(e) for e in d.get("examples") or ()))


@dataclasses.dataclass(frozen=True)
class Price:
    """What an hour of a target's machine costs: the sweep's ``price_per_hour`` and ``currency`` (``--price``)."""

    per_hour: float
    currency: str

    def cost_per_million(self, images_per_second: float) -> float | None:
        """The cost of a million images at that throughput: per_hour / 3600 / images_per_second x 1e6 (in
        ``currency``); None at no throughput."""
        if images_per_second <= 0:
            return None
        return self.per_hour / 3600.0 / images_per_second * 1e6

    def to_dict(self) -> dict[str, Any]:
        return {"per_hour": self.per_hour, "currency": self.currency}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Price:
        return cls(per_hour=float(d["per_hour"]), currency=str(d["currency"]))


@dataclasses.dataclass(frozen=True)
class BestBatch:
    """One target's best batch sizes, read from the sweep's runs (ais_bench's best-batch search, without running
    anything again): the highest throughput, and the largest batch size whose compute p99 stays within a limit."""

    target: str
    batch_size: int
    """The batch size with the highest throughput (a tie goes to the smaller batch size)."""
    throughput: float
    """images/s at ``batch_size`` (compute only, ais_infer's)."""
    p99_ms: float
    """Compute p99 (ms) at ``batch_size``."""
    latency_limit_ms: float | None = None
    """The limit asked for (None: none given, and the ``under_limit_*`` fields are None)."""
    under_limit_batch_size: int | None = None
    """The largest batch size whose compute p99 is at most ``latency_limit_ms``; None: no limit, or none within it."""
    under_limit_throughput: float | None = None
    under_limit_p99_ms: float | None = None
    price: Price | None = None
    """What an hour of the target's machine costs (None: no price given, and no cost is computed)."""
    cost_per_million: float | None = None
    """Cost of a million images at ``batch_size``, in ``price.currency`` (``Price.cost_per_million``)."""
    cost_per_million_under_limit: float | None = None
    """Cost of a million images at ``under_limit_batch_size``."""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["price"] = self.price.to_dict() if self.price is not None else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BestBatch:
        values = {f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d}
        values["price"] = Price.from_dict(d["price"]) if d.get("price") else None
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class Report:
    """``report.json``: every run of a sweep, the reference, and the ratios and accelerators asked for."""

    model: str
    reference: Reference
    runs: tuple[ReportRun, ...]
    ratios: tuple[str, ...] = ()
    """``A/B`` target pairs whose throughput ratio is tabulated; empty: each target against the first."""
    accelerators: dict[str, str] = dataclasses.field(default_factory=dict)
    """target -> accelerator (``jobs.devices``), for the comparison with published figures."""
    left_out: LeftOut | None = None
    """Images left out of the evaluated set, by reason (None: none; the key is then absent from report.json)."""
    distinct_labels: int | None = None
    """Distinct labels among the evaluated images: how much an agreement figure says (None: not counted)."""
    latency_limit_ms: float | None = None
    """The compute p99 limit (ms) the best batch sizes were bounded by (None: none given)."""
    best: dict[str, BestBatch] = dataclasses.field(default_factory=dict)
    """target -> its best batch sizes (and cost per million images where it has a price); in target order."""

    @property
    def all_pass(self) -> bool:
        return all(r.gate_pass for r in self.runs)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"model": self.model, "reference": dataclasses.asdict(self.reference),
                             "runs": [r.to_dict() for r in self.runs], "all_pass": self.all_pass}
        if self.ratios or self.accelerators:
            d["ratios"] = list(self.ratios)
            d["accelerators"] = dict(self.accelerators)
        if self.left_out is not None and self.left_out.total:
            d["left_out"] = self.left_out.to_dict()
        if self.distinct_labels is not None:
            d["distinct_labels"] = self.distinct_labels
        if self.latency_limit_ms is not None:
            d["latency_limit_ms"] = self.latency_limit_ms
        if self.best:
            d["best"] = {t: b.to_dict() for t, b in self.best.items()}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "report.json") -> Report:
        return cls(model=_field(d, "model", source), reference=Reference(**_field(d, "reference", source)),
                   runs=tuple(ReportRun.from_dict(r) for r in _field(d, "runs", source)),
                   ratios=tuple(d.get("ratios") or ()), accelerators=dict(d.get("accelerators") or {}),
                   left_out=LeftOut.from_dict(d["left_out"]) if d.get("left_out") else None,
                   distinct_labels=d.get("distinct_labels"), latency_limit_ms=d.get("latency_limit_ms"),
                   best={t: BestBatch.from_dict(b) for t, b in (d.get("best") or {}).items()})

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "report.json") -> Report:
        return cls.from_dict(json.loads(text), source)


def _split(d: Mapping[str, Any], names: Sequence[str], source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the named keys, required; everything else) of a record: typed core, target-specific rest."""
    core = {n: _field(d, n, source) for n in names}
    return core, {k: v for k, v in d.items() if k not in names}


@dataclasses.dataclass(frozen=True)
class EngineRecord:
    """``engine.json``: what the convert stage built, read back by the infer stage.

    The fields every target writes are typed; the rest (ONNX Runtime's session options and offline level,
    ATC's argument list, AIPP, soc_version, ...) stays in ``details`` exactly as written.
    """

    target: str
    """The engine target that built it (``jobs.converters``)."""
    file: str
    """The engine file in the output (``engine.onnx``, ``ghostnet_bs8.om``)."""
    batch_size: int | None
    """The fixed batch size; None for a dynamic-batch engine."""
    input: dict[str, Any]
    """name, dtype, shape (and, for an .om, format)."""
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    CORE = ("target", "file", "batch_size", "input")

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "file": self.file, "batch_size": self.batch_size, "input": self.input,
                **self.details}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = ENGINE_RECORD) -> EngineRecord:
        core, rest = _split(d, cls.CORE, source)
        return cls(**core, details=rest)


EXPORT_RECORD = "export_record.json"


@dataclasses.dataclass(frozen=True)
class ExportRecord:
    """``export_record.json``: the exported model, its weights and its parity with PyTorch."""

    model: str
    opset: int
    input: dict[str, Any]
    output: dict[str, Any]
    weights: dict[str, Any]
    """uri (public, no credentials) and checksum."""
    parity: dict[str, Any]
    """torch vs ONNX Runtime on a fixed batch: max_abs_diff, relative, tolerance, top1_agreement, ..."""
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Everything else as written: removed no-op nodes, versions, threads, normalization."""

    CORE = ("model", "opset", "input", "output", "weights", "parity")

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "opset": self.opset, "input": self.input, "output": self.output,
                "weights": self.weights, "parity": self.parity, **self.details}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = EXPORT_RECORD) -> ExportRecord:
        core, rest = _split(d, cls.CORE, source)
        return cls(**core, details=rest)
