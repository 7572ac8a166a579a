"""``summary.json``: one infer run, ais_infer's keys and layout kept exactly, plus ghostbench's own.

``NPU_compute_time``, ``H2D_latency``, ``D2H_latency`` (``timing.LatencyStats``, ms) and ``throughput``
(images/s) as ais_infer writes them (Ascend ais-bench_workload; ``docs/stages.md``, "infer"); ghostbench adds the
end-to-end pass, the timing windows, where it ran and the device's power.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from jobs import errors
from jobs.artifacts.records.devices import DeviceSet
from jobs.artifacts.records.fields import field as _field
from jobs.artifacts.records.noise import Noise
from jobs.artifacts.records.timing import LatencyStats, Repetitions, Windows

SUMMARY = "summary.json"
PREDICTIONS = "predictions.csv"


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
class Validity:
    """Whether a run meets the harness's fixed minimums (``jobs.harness.passes.VALID_*``, after MLPerf LoadGen's
    ``Result is : VALID``), and why not."""

    valid: bool
    reasons: tuple[str, ...] = ()
    """One line per minimum missed (short, few samples, few repetitions, unstable repetitions)."""
    min_seconds: float = 0.0
    min_batches: int = 0
    min_repetitions: int = 0
    seconds: float = 0.0
    """Timed compute over all repetitions (s)."""
    batches: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "reasons": list(self.reasons),
                "rules": {"min_seconds": self.min_seconds, "min_batches": self.min_batches,
                          "min_repetitions": self.min_repetitions},
                "seconds": self.seconds, "batches": self.batches}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Validity:
        rules = d.get("rules") or {}
        return cls(valid=bool(d["valid"]), reasons=tuple(d.get("reasons") or ()),
                   min_seconds=float(rules.get("min_seconds", 0.0)), min_batches=int(rules.get("min_batches", 0)),
                   min_repetitions=int(rules.get("min_repetitions", 0)), seconds=float(d.get("seconds", 0.0)),
                   batches=int(d.get("batches", 0)))


NONFINITE_EXAMPLES = 5
"""Images with non-finite logits a summary names (predictions.csv has them all, scores as ``nan``/``inf``)."""


@dataclasses.dataclass(frozen=True)
class NonFinite:
    """The NaN and infinite logits of a run's predictions pass (every image once), as an fp16 overflow leaves them.

    A run with any is kept (its predictions.csv shows the values) and the eval stage fails its accuracy gate,
    whatever its accuracy: ranking NaN says nothing about the model (``docs/stages.md``, "infer")."""

    images: int = 0
    """Images whose logits hold at least one NaN or infinity."""
    nan: int = 0
    """NaN logits, over all images."""
    posinf: int = 0
    neginf: int = 0
    examples: tuple[str, ...] = ()
    """The first few such images' names (``NONFINITE_EXAMPLES``)."""

    @property
    def values(self) -> int:
        return self.nan + self.posinf + self.neginf

    def line(self, num_images: int) -> str:
        """``3 of 10 images have non-finite logits (2 NaN, 1 +inf, 0 -inf; first: a.JPEG, b.JPEG)``."""
        return (f"{self.images} of {num_images} images have non-finite logits ({self.nan} NaN, {self.posinf} +inf, "
                f"{self.neginf} -inf; first: {', '.join(self.examples)})")

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "values": self.values, "nan": self.nan, "posinf": self.posinf,
                "neginf": self.neginf, "examples": list(self.examples)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NonFinite:
        return cls(images=int(d.get("images", 0)), nan=int(d.get("nan", 0)), posinf=int(d.get("posinf", 0)),
                   neginf=int(d.get("neginf", 0)), examples=tuple(d.get("examples") or ()))


VALID_SECONDS = 10.0
"""A valid run timed at least this much compute over all its repetitions (MLPerf LoadGen's minimum duration,
scaled to a sweep of many runs; the sweep defaults, 5 repetitions of at least 2 s, meet it)."""
VALID_BATCHES = 100
"""... and at least this many batches (LoadGen's minimum query count; the defaults: 5 x 20)."""


UNJUDGED = Validity(valid=False, reasons=("recorded before runs were judged: no repetitions",))
"""A summary written before validity was recorded."""


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
    repetitions: Repetitions = Repetitions((), 0.0, 0.0, 0.0, 0.0, 0.0)
    """Each repetition's throughput (images/s, ais_infer's definition) and the interval an identical rerun falls in."""
    padded_share: float = 0.0
    """Share of each pass's batch rows that are padding (a short last batch): ais_infer's throughput counts them."""
    real_images_per_second: float = 0.0
    """``throughput`` x (1 - ``padded_share``): the images that are the dataset's, per second of compute."""
    validity: Validity = UNJUDGED
    noise: Noise | None = None
    """What else ran on the host and the device while the run was timed; None: not recorded."""
    nonfinite: NonFinite = NonFinite()
    """NaN and infinite logits of the predictions pass; zero in a summary written before they were counted."""
    devices: DeviceSet | None = None
    """A run on several devices at once (``records.devices``): then ``throughput`` is the sum of the devices'
    (ais_bench's), ``NPU_compute_time`` pools their batches, ``end_to_end`` is the wall clock of the whole and
    ``num_images`` counts each image once. None (the key absent): one device."""

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
            "repetitions": self.repetitions.to_dict(),
            "padded_share": self.padded_share,
            "real_images_per_second": self.real_images_per_second,
            "validity": self.validity.to_dict(),
            "noise": self.noise.to_dict() if self.noise is not None else None,
            "nonfinite": self.nonfinite.to_dict(),
            **({"devices": self.devices.to_dict()} if self.devices is not None else {}),
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
            power=PowerRecord.from_dict(d["power"]) if d.get("power") else None,
            repetitions=(Repetitions.from_dict(d["repetitions"]) if d.get("repetitions")
                         else Repetitions((), 0.0, 0.0, 0.0, 0.0, 0.0)),
            padded_share=float(d.get("padded_share", 0.0)),
            real_images_per_second=float(d.get("real_images_per_second", 0.0)),
            validity=Validity.from_dict(d["validity"]) if d.get("validity") else UNJUDGED,
            noise=Noise.from_dict(d["noise"]) if d.get("noise") else None,
            nonfinite=NonFinite.from_dict(d["nonfinite"]) if d.get("nonfinite") else NonFinite(),
            devices=DeviceSet.from_dict(d["devices"]) if d.get("devices") else None)

    @classmethod
    def from_json(cls, text: str | bytes, source: str = SUMMARY) -> InferSummary:
        try:
            return cls.from_dict(json.loads(text), source)
        except ValueError as e:
            raise errors.BadInput(f"{source}: not JSON ({e})") from e
