"""Returns the same logits for every image at once, so images/s through it is the harness ceiling."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from jobs.backends import base


class NullBackend(base.Backend):
    name = "null"

    def __init__(self, spec: base.TensorSpec, num_classes: int):
        self._spec = spec
        self._logits = np.linspace(1.0, 0.0, num_classes, dtype=np.float32)  # class 0 always wins
        self._out = np.empty((0, num_classes), dtype=np.float32)

    @classmethod
    def open(cls, engine: base.EngineInfo, device: str, options: dict[str, Any]) -> NullBackend:
        inp = engine.record.get("input", {})
        spec = base.TensorSpec(
            name=inp.get("name", "image"),
            dtype=np.dtype(inp.get("dtype", options.get("dtype", "float32"))),
            shape=tuple(inp.get("shape", (None, 3, 224, 224))),
        )
        return cls(spec, int(options.get("num_classes", 1000)))

    @property
    def input(self) -> base.TensorSpec:
        return self._spec

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, base.RunTiming]:
        t0 = time.perf_counter()
        if self._out.shape[0] != batch.shape[0]:
            self._out = np.broadcast_to(self._logits, (batch.shape[0], self._logits.size))
        return self._out, base.RunTiming(compute_ms=(time.perf_counter() - t0) * 1e3)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "device": "none"}
