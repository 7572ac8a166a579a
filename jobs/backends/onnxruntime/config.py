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
from collections.abc import Mapping
from typing import Any

from jobs import errors, registry

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
    def check(cls, device: str, options: Mapping[str, Any]) -> OnnxRuntimeConfig:
        """The config for ``device`` and ``options``; ``errors.OptionError`` naming what is wrong."""
        kind, _, index = device.partition(":")
        if kind not in PROVIDERS or (index and not index.isdigit()):
            raise errors.OptionError(None, f"expected one of cpu, cuda[:N], tensorrt[:N], cann[:N] for backend "
                                     f"onnxruntime, got {device!r}")
        cann_only = sorted(set(options) & set(CANN_OPTIONS)) if kind != "cann" else []
        if cann_only:
            raise errors.OptionError(cann_only[0], f"applies only to the cann device, not {device!r}")
        registry.check_option_names(options, COMMON_OPTIONS + (CANN_OPTIONS if kind == "cann" else ()))
        threads = options.get("intra_op_threads", 0)
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise errors.OptionError("intra_op_threads", f"expected an integer >= 0, got {threads!r}")
        level = options.get("graph_optimization_level", "all")
        if level not in LEVELS:
            raise errors.OptionError("graph_optimization_level", f"expected one of {', '.join(LEVELS)}, got {level!r}")
        precision = options.get("precision_mode", CANN_DEFAULT_PRECISION)
        if precision not in CANN_PRECISION_MODES:
            raise errors.OptionError("precision_mode", f"expected one of {', '.join(CANN_PRECISION_MODES)}, "
                                     f"got {precision!r}")
        graph = options.get("enable_cann_graph", True)
        if not isinstance(graph, bool):
            raise errors.OptionError("enable_cann_graph", f"expected true or false, got {graph!r}")
        mem = options.get("npu_mem_limit")
        if mem is not None and (isinstance(mem, bool) or not isinstance(mem, int) or mem < 1):
            raise errors.OptionError("npu_mem_limit", f"expected bytes (an integer >= 1), got {mem!r}")
        impl = options.get("op_select_impl_mode")
        if impl is not None and impl not in CANN_IMPL_MODES:
            raise errors.OptionError("op_select_impl_mode", f"expected one of {', '.join(CANN_IMPL_MODES)}, "
                                     f"got {impl!r}")
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
