"""How long things took, as ais_infer states it, and how sure that is: latency statistics (ms), throughput,
timing windows, repetitions.

Formats: ais_infer's summary keys (``min``, ``max``, ``mean``, ``median``, ``percentile(99%)``, ``count``);
the window rule is perf_analyzer's stability rule. ``Repetitions``: a run's throughput from several
repetitions, each on a fresh backend session, with a 95% prediction interval for an identical rerun:
``mean ± t(0.975, n-1) · s · sqrt(1/n + 1/n)`` on the log images/s (Student's t; pyperf reports mean ± std of
several worker processes in the same spirit). How two runs' repetitions are compared: ``jobs.results.stats``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jobs.artifacts.records.fields import field as _field


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



WINDOWS = 5
"""Timing windows per run: the timed batches split into this many consecutive windows."""
UNSTABLE_SPREAD = 0.10
"""perf_analyzer's stability rule, applied twice: a run's timing windows (``Windows.stable``, the report's
``stable``: jitter within a pass) and its repetitions (``validity``: ``unstable`` when they differ by more than
this share of their median, and then ``compare`` does not judge it)."""


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


CONFIDENCE = 0.95
"""Of the intervals (and of ``jobs.results.stats``' tests: two-sided α = 0.05)."""
MIN_REPETITIONS = 3
"""Fewer repetitions than this give no interval (a run of 1 or 2 cannot estimate its spread)."""


@dataclasses.dataclass(frozen=True)
class Repetitions:
    """A run's repetitions (images/s each) and what an identical rerun would give."""

    throughput: tuple[float, ...]
    """Each repetition's images/s, in the order they ran."""
    median: float
    geomean: float
    spread: float
    """Standard deviation of the log images/s: about the coefficient of variation (0.03: 3%)."""
    low: float
    """95% prediction interval for the geometric mean of an identical rerun (images/s); equal to ``high`` and
    ``geomean`` below ``MIN_REPETITIONS``."""
    high: float

    METHOD = ("95% prediction interval for an identical rerun's geometric mean of as many repetitions "
              "(Student's t on log images/s)")

    @property
    def n(self) -> int:
        return len(self.throughput)

    @classmethod
    def of(cls, throughput: Sequence[float]) -> Repetitions:
        values = tuple(float(v) for v in throughput)
        logs = np.log(np.asarray([v for v in values if v > 0], dtype=np.float64))
        if len(logs) == 0:
            return cls(values, 0.0, 0.0, 0.0, 0.0, 0.0)
        mean = float(logs.mean())
        s = float(logs.std(ddof=1)) if len(logs) > 1 else 0.0
        geomean = math.exp(mean)
        if len(logs) < MIN_REPETITIONS:
            low = high = geomean
        else:
            from scipy import special  # here: importing scipy costs every process that reads a record 0.1 s

            half = float(special.stdtrit(len(logs) - 1, 0.5 + CONFIDENCE / 2)) * s * math.sqrt(2.0 / len(logs))
            low, high = math.exp(mean - half), math.exp(mean + half)
        return cls(values, float(np.median(values)), geomean, s, low, high)

    def to_dict(self) -> dict[str, Any]:
        return {"throughput": list(self.throughput), "n": self.n, "median": self.median, "geomean": self.geomean,
                "spread": self.spread, "low": self.low, "high": self.high, "method": self.METHOD}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Repetitions:
        return cls(tuple(float(v) for v in d["throughput"]), float(d["median"]), float(d["geomean"]),
                   float(d["spread"]), float(d["low"]), float(d["high"]))
