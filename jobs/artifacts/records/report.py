"""The eval stage's documents: ``accuracy.json`` in the seed's format and ``report.json`` of a sweep.

``SeedAccuracy`` is exactly what the seed's ``imagenet_acc_eval.py`` writes (seed step 6; ``docs/stages.md``,
"eval"); ``Report`` holds every run of a sweep (``ReportRun``), its reference and gate, the
images left out, and each target's best batch sizes (``BestBatch``, with a ``Price``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from collections.abc import Mapping
from typing import Any

from jobs.artifacts.records.fields import field as _field

ACCURACY = "accuracy.json"
P99_SAMPLES = math.ceil(math.log(0.05) / math.log(0.99))
"""299: the largest of this many samples bounds the 99th percentile with 95% confidence (distribution-free;
the binomial reasoning behind MLPerf LoadGen's early stopping). A p99 from fewer samples is shown as such and
is not used to pick a batch size under a latency limit."""
REPORT_FILES = ("report.md", "report.json", "report.csv")
PLOT_FILES = ("report-throughput.png", "report-throughput.svg", "report-latency.png", "report-latency.svg")
"""The eval stage's plots (``jobs.results.plots``), beside the reports in its output; the controller publishes them
with the reports to ``sweeps/<id>/``. report.md links them by these names (relative links)."""


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
    """Passed the accuracy gate; false also when the labels file named images the dataset lacks, unless that was
    intended (``Report.allow_missing``)."""
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
    repetitions: tuple[float, ...] = ()
    """Each repetition's images/s (``InferSummary.repetitions``): what ``compare`` tests with; empty in older reports."""
    repetitions_low: float = 0.0
    """95% prediction interval for an identical rerun (images/s)."""
    repetitions_high: float = 0.0
    valid: bool = False
    """The run met the harness's minimums (``InferSummary.validity``)."""
    validity_reasons: tuple[str, ...] = ()
    busy: bool = False
    """Something else ran on the host or the device while it was timed (``InferSummary.noise``)."""
    noise_reasons: tuple[str, ...] = ()
    padded_share: float = 0.0
    """Share of the batch rows that are padding; ais_infer's throughput counts them."""
    real_images_per_second: float = 0.0
    """Throughput of the dataset's own images (padding not counted): what best batch sizes are chosen by."""
    p99_samples: int = 0
    """Batches behind ``compute_p99_ms``; a p99 needs ``P99_SAMPLES`` for a 95% bound (fewer: shown as such)."""
    nonfinite: int = 0
    """Images whose logits held NaN or an infinity (``InferSummary.nonfinite``): any fails the gate, whatever the
    accuracy; 0 in a report written before they were counted."""
    devices: int = 1
    """Devices the run used at once (``InferSummary.devices``): above 1, ``throughput`` is their sum (ais_bench's)."""
    wall_images_per_second: float | None = None
    """A run on several devices: the images/s of the whole by the wall clock, beside the sum; None: one device."""
    started_together: bool = True
    """A run on several devices: each timed repetition started on every device at once."""
    per_card_throughput: float | None = None
    """images/s per card (``jobs.results.per_card``); None: no card (a CPU target)."""
    per_card_basis: str | None = None
    """``measured`` (every chip of the card ran at once) or ``extrapolated`` (from fewer chips); None: no card."""
    per_card_chips: int | None = None
    """Chips on the card, and where that came from (``per_card_chips_from``: npu-smi info, the card, the
    accelerator)."""
    per_card_chips_from: str | None = None

    @property
    def p99_resolved(self) -> bool:
        """Enough samples for the p99 to be bounded (``P99_SAMPLES``)."""
        return self.p99_samples >= P99_SAMPLES

    @property
    def geomean(self) -> float:
        """The repetitions' geometric mean images/s, the figure ``repetitions_low``/``_high`` bound (the throughput
        itself in an older report)."""
        logs = [math.log(v) for v in self.repetitions if v > 0]
        return math.exp(sum(logs) / len(logs)) if logs else self.throughput

    @property
    def median(self) -> float:
        """The repetitions' median images/s (the throughput itself in an older report)."""
        return float(statistics.median(self.repetitions)) if self.repetitions else self.throughput

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["repetitions"], d["validity_reasons"], d["noise_reasons"] = (list(self.repetitions),
                                                                       list(self.validity_reasons),
                                                                       list(self.noise_reasons))
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReportRun:
        values = {f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d}
        for name in ("repetitions", "validity_reasons", "noise_reasons"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)


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
"""Left-out images a report names: the first this many left out by ``--skip-bad``, and the first this many missing
(the preprocess shards' index.json lists them)."""


@dataclasses.dataclass(frozen=True)
class LeftOut:
    """Images left out of the evaluated set: those preprocess ``--skip-bad`` left out, and those the labels file
    names that are not in the image folder; how many, why, which."""

    counts: dict[str, int]
    """reason kind (``undecodable``, ``unlabelled``, ``too_large``: left out by ``--skip-bad``; ``missing``: labelled,
    not in the image folder) -> images."""
    examples: tuple[dict[str, str], ...] = ()
    """The first few (``LEFT_OUT_EXAMPLES`` left out, then as many missing): ``{"name": ..., "reason": ...}``."""

    @property
    def missing(self) -> int:
        """Images the labels file names that the image folder lacks."""
        return self.counts.get("missing", 0)

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
    allow_missing: bool = False
    """Images the labels file names may be missing from the dataset (the sweep's ``dataset.allow_missing``): without
    it, any missing fails every run's gate."""
    distinct_labels: int | None = None
    """Distinct labels among the evaluated images: how much an agreement figure says (None: not counted)."""
    latency_limit_ms: float | None = None
    """The compute p99 limit (ms) the best batch sizes were bounded by (None: none given)."""
    best: dict[str, BestBatch] = dataclasses.field(default_factory=dict)
    """target -> its best batch sizes (and cost per million images where it has a price); in target order."""
    model_source: str | None = None
    """Where the model came from (``ONNX file ..., sha256:...``, ``PyTorch factory ...``); None: the registry's."""

    @property
    def all_pass(self) -> bool:
        return all(r.gate_pass for r in self.runs)

    def failing(self) -> list[ReportRun]:
        """The runs below the accuracy gate, in the report's order."""
        return [r for r in self.runs if not r.gate_pass]

    @property
    def missing_fails(self) -> int:
        """How many labelled images are missing from the dataset where that fails every run's gate (0: none, or the
        sweep intends a partial set)."""
        return 0 if self.left_out is None or self.allow_missing else self.left_out.missing

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"model": self.model, "reference": dataclasses.asdict(self.reference),
                             "runs": [r.to_dict() for r in self.runs], "all_pass": self.all_pass}
        if self.ratios or self.accelerators:
            d["ratios"] = list(self.ratios)
            d["accelerators"] = dict(self.accelerators)
        if self.left_out is not None and self.left_out.total:
            d["left_out"] = self.left_out.to_dict()
        if self.allow_missing:
            d["allow_missing"] = True
        if self.distinct_labels is not None:
            d["distinct_labels"] = self.distinct_labels
        if self.latency_limit_ms is not None:
            d["latency_limit_ms"] = self.latency_limit_ms
        if self.best:
            d["best"] = {t: b.to_dict() for t, b in self.best.items()}
        if self.model_source is not None:
            d["model_source"] = self.model_source
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "report.json") -> Report:
        return cls(model=_field(d, "model", source), reference=Reference(**_field(d, "reference", source)),
                   runs=tuple(ReportRun.from_dict(r) for r in _field(d, "runs", source)),
                   ratios=tuple(d.get("ratios") or ()), accelerators=dict(d.get("accelerators") or {}),
                   left_out=LeftOut.from_dict(d["left_out"]) if d.get("left_out") else None,
                   allow_missing=bool(d.get("allow_missing", False)),
                   distinct_labels=d.get("distinct_labels"), latency_limit_ms=d.get("latency_limit_ms"),
                   best={t: BestBatch.from_dict(b) for t, b in (d.get("best") or {}).items()},
                   model_source=d.get("model_source"))

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "report.json") -> Report:
        return cls.from_dict(json.loads(text), source)
