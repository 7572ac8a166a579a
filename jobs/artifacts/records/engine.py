"""What export and convert leave beside the model: ``export_record.json`` and ``engine.json``.

The fields every producer writes are typed; the rest (removed no-op nodes, session options, ATC's
arguments, AIPP, ...) stays in ``details`` exactly as written. The stages write them through these types
and the next stage reads them back through the same types.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from jobs.artifacts.records.fields import split as _split

MODEL_FILE = "model.onnx"
"""The exported model in an export output (read by convert)."""
ENGINE_RECORD = "engine.json"
EXPORT_RECORD = "export_record.json"


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

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = ENGINE_RECORD) -> EngineRecord:
        core, rest = _split(d, cls.CORE, source)
        return cls(**core, details=rest)



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

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = EXPORT_RECORD) -> ExportRecord:
        core, rest = _split(d, cls.CORE, source)
        return cls(**core, details=rest)
