"""Options of the ONNX Runtime backend, validated without touching a device."""

from __future__ import annotations

import dataclasses
from typing import Any

from jobs import errors

# device prefix -> execution providers, in priority order (ONNX Runtime falls back along the list)
PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}

LEVELS = ("disable", "basic", "extended", "all")


@dataclasses.dataclass(frozen=True)
class OnnxRuntimeConfig:
    device: str = "cpu"
    """'cpu', 'cuda[:N]' or 'tensorrt[:N]'."""
    intra_op_threads: int = 0
    """Threads for one operator; 0 lets ONNX Runtime choose (one per physical core)."""
    graph_optimization_level: str = "all"
    """Optimizations applied when the session loads: disable, basic, extended or all."""

    @property
    def kind(self) -> str:
        return self.device.partition(":")[0]

    @property
    def device_id(self) -> int:
        _, _, index = self.device.partition(":")
        return int(index or 0)

    @classmethod
    def from_options(cls, device: str, options: dict[str, Any]) -> "OnnxRuntimeConfig":
        kind, _, index = device.partition(":")
        if kind not in PROVIDERS or (index and not index.isdigit()):
            raise errors.BadInput(
                f"device {device!r}: expected one of cpu, cuda[:N], tensorrt[:N] for backend onnxruntime")
        unknown = set(options) - {"intra_op_threads", "graph_optimization_level"}
        if unknown:
            raise errors.BadInput(f"onnxruntime options: unknown {sorted(unknown)}; allowed: "
                                  "intra_op_threads, graph_optimization_level")
        threads = options.get("intra_op_threads", 0)
        if not isinstance(threads, int) or threads < 0:
            raise errors.BadInput(f"onnxruntime option intra_op_threads: expected an integer >= 0, got {threads!r}")
        level = options.get("graph_optimization_level", "all")
        if level not in LEVELS:
            raise errors.BadInput(f"onnxruntime option graph_optimization_level: expected one of "
                                  f"{', '.join(LEVELS)}, got {level!r}")
        return cls(device=device, intra_op_threads=threads, graph_optimization_level=level)
