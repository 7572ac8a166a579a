"""Returns the same logits for every image at once, so images/s through it is the harness ceiling.

With ``--option images_per_s=R`` it stands in for an accelerator that computes R images/s: each
call waits batch/R seconds with the host idle (no CPU, GIL released), as a host waits on an NPU.
The harness benchmark uses it to measure what the host side costs next to a device of known speed.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from jobs.backends import base
from jobs.backends.null import config as config_mod


class NullBackend(base.Backend):
    name = "null"

    def __init__(self, spec: base.TensorSpec, num_classes: int, images_per_s: float | None = None):
        self._spec = spec
        self._seconds_per_image = 1.0 / images_per_s if images_per_s else 0.0
        # with a simulated speed it stands in for a device; without, nothing to overlap with
        self.computes_on_host = not images_per_s
        self._logits = np.linspace(1.0, 0.0, num_classes, dtype=np.float32)  # class 0 always wins
        self._out = np.empty((0, num_classes), dtype=np.float32)

    @classmethod
    def open(cls, engine: base.EngineInfo, device: str, options: dict[str, Any]) -> NullBackend:
        cfg = config_mod.NullConfig.check(device, options)
        inp = engine.record.get("input", {})
        spec = base.TensorSpec(
            name=inp.get("name", "image"),
            dtype=np.dtype(inp.get("dtype", cfg.dtype or "float32")),
            shape=tuple(inp.get("shape", (None, 3, 224, 224))),
        )
        return cls(spec, cfg.num_classes, cfg.images_per_s)

    @property
    def input(self) -> base.TensorSpec:
        return self._spec

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, base.RunTiming]:
        t0 = time.perf_counter()
        if self._out.shape[0] != batch.shape[0]:
            self._out = np.broadcast_to(self._logits, (batch.shape[0], self._logits.size))
        if self._seconds_per_image:
            time.sleep(batch.shape[0] * self._seconds_per_image)  # the simulated device computes
        return self._out, base.RunTiming(compute_ms=(time.perf_counter() - t0) * 1e3)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "device": "none",
                "simulated_images_per_s": 1.0 / self._seconds_per_image if self._seconds_per_image else None}
