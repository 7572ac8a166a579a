"""The documents a run leaves, as typed records with one writer (``to_dict``) and one reader (``from_dict``).

One module per document, this package's face names them all:

- ``timing``: ``LatencyStats`` (ais_infer's statistics of one timed quantity, ms), ``Windows``, ``throughput``,
  ``Repetitions`` (a run's repetitions and the interval an identical rerun would fall in).
- ``summary``: ``InferSummary``, ``summary.json`` of an infer run, ais_infer's keys and layout kept exactly
  (``NPU_compute_time``, ``H2D_latency``, ``D2H_latency``, ``throughput``) plus ghostbench's own
  (``EndToEnd``, ``PowerRecord``, ``NonFinite``).
- ``report``: ``SeedAccuracy`` (``accuracy.json`` exactly as the seed's ``imagenet_acc_eval.py`` writes it),
  ``ReportRun`` and ``Report`` (``report.json`` of a sweep; ``BestBatch``, ``Price``, ``LeftOut``).
- ``devices``: ``DeviceSet`` and ``DeviceRun``, a run on several devices at once (ais_bench's ``--device 0,1,..``).
- ``engine``: ``EngineRecord`` (``engine.json``) and ``ExportRecord`` (``export_record.json``).
- ``noise``: ``Noise`` (``HostNoise``, ``DeviceNoise``): what else ran while a run was timed.

Stages, the reports and the benchmarks share these types; nothing else spells their keys. Formats:
``docs/stages.md`` (ais_infer's summary keys, the seed's accuracy.json) and ``docs/architecture.md`` (layout).
"""

from jobs.artifacts.records.devices import DEVICES_DIR, DeviceRun, DeviceSet
from jobs.artifacts.records.engine import ENGINE_RECORD, EXPORT_RECORD, MODEL_FILE, EngineRecord, ExportRecord
from jobs.artifacts.records.noise import BUSY_SHARE, DeviceNoise, HostNoise, Noise
from jobs.artifacts.records.report import (
    ACCURACY,
    LEFT_OUT_EXAMPLES,
    P99_SAMPLES,
    PLOT_FILES,
    REPORT_FILES,
    BestBatch,
    LeftOut,
    Price,
    Reference,
    Report,
    ReportRun,
    SeedAccuracy,
)
from jobs.artifacts.records.summary import (
    NONFINITE_EXAMPLES,
    PREDICTIONS,
    SUMMARY,
    UNJUDGED,
    VALID_BATCHES,
    VALID_SECONDS,
    EndToEnd,
    InferSummary,
    NonFinite,
    PowerRecord,
    Validity,
)
from jobs.artifacts.records.timing import (
    CONFIDENCE,
    MIN_REPETITIONS,
    UNSTABLE_SPREAD,
    WINDOWS,
    LatencyStats,
    Repetitions,
    Windows,
    throughput,
)

__all__ = [
    "ACCURACY", "BUSY_SHARE", "CONFIDENCE", "DEVICES_DIR", "DeviceRun", "DeviceSet", "ENGINE_RECORD", "EXPORT_RECORD", "LEFT_OUT_EXAMPLES", "MIN_REPETITIONS", "MODEL_FILE", "NONFINITE_EXAMPLES", "P99_SAMPLES", "PLOT_FILES", "PREDICTIONS", "REPORT_FILES",
    "SUMMARY", "UNJUDGED", "UNSTABLE_SPREAD", "VALID_BATCHES", "VALID_SECONDS", "WINDOWS", "BestBatch", "DeviceNoise", "EndToEnd", "EngineRecord", "ExportRecord", "HostNoise", "InferSummary",
    "LatencyStats", "LeftOut", "Noise", "NonFinite", "PowerRecord", "Price", "Reference", "Report", "Repetitions", "ReportRun", "SeedAccuracy", "Validity", "Windows",
    "throughput",
]
