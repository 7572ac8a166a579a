"""Options of the ONNX Runtime backend, validated without touching a device.

Devices: ``cpu``, ``cuda[:N]``, ``tensorrt[:N]`` (onnxruntime-gpu) and ``cann[:N]`` (onnxruntime-cann:
an Ascend NPU through the CANN execution provider, a second route to the NPU without ATC).

On ``cann`` the precision is always set explicitly: the execution provider's own default
(``force_fp16``) would make an accuracy run silently fp16. ghostbench's default is
``must_keep_origin_dtype``: every operator keeps the model's float32, and an operator that has no
float32 kernel on the chip is an error rather than a quiet fp16 fallback. ``precision_mode=force_fp32``
keeps float32 wherever a kernel exists (fp16 elsewhere); ``force_fp16`` matches ATC's default, under
which the seed's published throughput was measured.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jobs import errors

# device prefix -> execution providers, in priority order (ONNX Runtime falls back along the list)
PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    "cann": ["CANNExecutionProvider", "CPUExecutionProvider"],
}

LEVELS = ("disable", "basic", "extended", "all")
CANN_PRECISION_MODES = ("must_keep_origin_dtype", "force_fp32", "allow_fp32_to_fp16", "allow_mix_precision",
                        "force_fp16")
CANN_DEFAULT_PRECISION = "must_keep_origin_dtype"
CANN_IMPL_MODES = ("high_precision", "high_performance")
COMMON_OPTIONS = ("intra_op_threads", "graph_optimization_level")
CANN_OPTIONS = ("precision_mode", "enable_cann_graph", "npu_mem_limit", "op_select_impl_mode")


@dataclasses.dataclass(frozen=True)
class OnnxRuntimeConfig:
    device: str = "cpu"
    """'cpu', 'cuda[:N]', 'tensorrt[:N]' or 'cann[:N]'."""
    intra_op_threads: int = 0
    """Threads for one operator; 0 lets ONNX Runtime choose (one per physical core)."""
    graph_optimization_level: str = "all"
    """Optimizations applied when the session loads: disable, basic, extended or all."""
    precision_mode: str = CANN_DEFAULT_PRECISION
    """cann only: CANN's operator precision mode (see the module's docstring); always passed."""
    enable_cann_graph: bool = True
    """cann only: run the model as one CANN graph (True) or operator by operator (False)."""
    npu_mem_limit: int | None = None
    """cann only: bytes the execution provider's memory arena may take; None: no limit."""
    op_select_impl_mode: str | None = None
    """cann only: high_precision or high_performance operator implementations; None: CANN's default."""

    @property
    def kind(self) -> str:
        return self.device.partition(":")[0]

    @property
    def device_id(self) -> int:
        _, _, index = self.device.partition(":")
        return int(index or 0)

    @classmethod
    def from_options(cls, device: str, options: dict[str, Any]) -> OnnxRuntimeConfig:
        kind, _, index = device.partition(":")
        if kind not in PROVIDERS or (index and not index.isdigit()):
            raise errors.BadInput(
                f"device {device!r}: expected one of cpu, cuda[:N], tensorrt[:N], cann[:N] for backend onnxruntime")
        allowed = COMMON_OPTIONS + (CANN_OPTIONS if kind == "cann" else ())
        unknown = set(options) - set(allowed)
        if unknown:
            cann_only = sorted(unknown & set(CANN_OPTIONS))
            if cann_only:
                raise errors.BadInput(f"onnxruntime options {cann_only}: apply only to the cann device, "
                                      f"not {device!r}")
            raise errors.BadInput(f"onnxruntime options: unknown {sorted(unknown)}; allowed: {', '.join(allowed)}")
        threads = options.get("intra_op_threads", 0)
        if not isinstance(threads, int) or threads < 0:
            raise errors.BadInput(f"onnxruntime option intra_op_threads: expected an integer >= 0, got {threads!r}")
        level = options.get("graph_optimization_level", "all")
        if level not in LEVELS:
            raise errors.BadInput(f"onnxruntime option graph_optimization_level: expected one of "
                                  f"{', '.join(LEVELS)}, got {level!r}")
        precision = options.get("precision_mode", CANN_DEFAULT_PRECISION)
        if precision not in CANN_PRECISION_MODES:
            raise errors.BadInput(f"onnxruntime option precision_mode: expected one of "
                                  f"{', '.join(CANN_PRECISION_MODES)}, got {precision!r}")
        graph = options.get("enable_cann_graph", True)
        if not isinstance(graph, bool):
            raise errors.BadInput(f"onnxruntime option enable_cann_graph: expected true or false, got {graph!r}")
        mem = options.get("npu_mem_limit")
        if mem is not None and (isinstance(mem, bool) or not isinstance(mem, int) or mem < 1):
            raise errors.BadInput(f"onnxruntime option npu_mem_limit: expected bytes (an integer >= 1), got {mem!r}")
        impl = options.get("op_select_impl_mode")
        if impl is not None and impl not in CANN_IMPL_MODES:
            raise errors.BadInput(f"onnxruntime option op_select_impl_mode: expected one of "
                                  f"{', '.join(CANN_IMPL_MODES)}, got {impl!r}")
        return cls(device=device, intra_op_threads=threads, graph_optimization_level=level,
                   precision_mode=precision, enable_cann_graph=graph, npu_mem_limit=mem, op_select_impl_mode=impl)


def provider_options(cfg: OnnxRuntimeConfig, provider: str) -> dict[str, str]:
    """The options one execution provider is given, as the strings ONNX Runtime parses."""
    if provider == "CPUExecutionProvider":
        return {}
    opts = {"device_id": str(cfg.device_id)}
    if provider == "CANNExecutionProvider":
        opts["precision_mode"] = cfg.precision_mode
        opts["enable_cann_graph"] = "1" if cfg.enable_cann_graph else "0"
        if cfg.npu_mem_limit is not None:
            opts["npu_mem_limit"] = str(cfg.npu_mem_limit)
        if cfg.op_select_impl_mode is not None:
            opts["op_select_impl_mode"] = cfg.op_select_impl_mode
    return opts


def providers(cfg: OnnxRuntimeConfig) -> list[Any]:
    """``providers=`` for ``InferenceSession``: names, with (name, options) where a provider takes options."""
    return [(p, provider_options(cfg, p)) if p != "CPUExecutionProvider" else p for p in PROVIDERS[cfg.kind]]
