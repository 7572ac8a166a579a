"""Options of the ONNX Runtime backend, validated without touching a device.

Devices: ``cpu``, ``cuda[:N]``, ``tensorrt[:N]`` (onnxruntime-gpu) and ``cann[:N]`` (onnxruntime-cann:
an Ascend NPU through the CANN execution provider, a second route to the NPU without ATC).

The target's precision (``fp32``, ``tf32``, ``fp16``; ``jobs.params.PRECISIONS``) is mapped onto each
provider's own switch, always set explicitly, since the providers' defaults are not fp32:

- ``cpu``: fp32 only.
- ``cuda``: ``use_tf32`` = 0 for fp32 and 1 for tf32. ONNX Runtime's default is 1, so without this a
  "float32" run on an Ampere or later GPU computes its convolutions in TF32.
- ``tensorrt``: ``trt_fp16_enable`` = 1 for fp16, 0 for fp32.
- ``cann``: ``precision_mode`` = ``must_keep_origin_dtype`` for fp32 (every operator keeps float32, and
  one with no float32 kernel is an error, not a quiet fp16 fallback) and ``force_fp16`` for fp16 (ATC's
  default, under which the seed's published figures were measured). The provider's own default,
  ``force_fp16``, would make an accuracy run silently fp16. An explicit ``precision_mode`` option must
  agree with the precision.

int8 is reserved (it needs a calibrated engine) and refused for now.

``allow_spinning`` (ONNX Runtime's ``session.intra_op.allow_spinning``) is off by default here, unlike ONNX
Runtime's own default: with spinning, an operator's threads busy-wait for each other, and on a shared or
virtual host, where a core can be taken away mid-operator, a run falls into a mode twice as slow and stays
there (measured on a 2-vCPU VM, GhostNet at batch 1: spinning gave 98-259 images/s across fresh processes,
not spinning 159-192; ``docs/performance.md``). Set it true on a dedicated host for the last few percent.

On a device (cuda, tensorrt, cann) batches are bound with I/O binding: the input is copied to device
memory before the timed call and the output back after it, each copy timed apart (ais_infer's
``H2D_latency``/``D2H_latency``). ``io_binding=true`` uses the same path on the CPU (copies are memcpy).
After the session is created, the provider actually running it must be the one asked for; otherwise the
backend refuses (exit 3) unless ``fallback=true`` allows ONNX Runtime's own chain, which is then recorded.
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
COMMON_OPTIONS = ("intra_op_threads", "allow_spinning", "graph_optimization_level", "io_binding", "fallback",
                  "parity")
CUDA_OPTIONS = ("cuda_graph",)
CANN_OPTIONS = ("precision_mode", "enable_cann_graph", "npu_mem_limit", "op_select_impl_mode")
# device kind -> the precisions it can run, and (for cann) the precision_mode each maps to
PRECISIONS = {"cpu": ("fp32",), "cuda": ("fp32", "tf32"), "tensorrt": ("fp32", "fp16"), "cann": ("fp32", "fp16")}
CANN_MODES_BY_PRECISION = {"fp32": ("must_keep_origin_dtype", "force_fp32"),
                           "fp16": ("force_fp16", "allow_fp32_to_fp16", "allow_mix_precision")}


@dataclasses.dataclass(frozen=True)
class OnnxRuntimeConfig:
    device: str = "cpu"
    """'cpu', 'cuda[:N]', 'tensorrt[:N]' or 'cann[:N]'."""
    precision: str = "fp32"
    """fp32, tf32 (cuda) or fp16 (tensorrt, cann): mapped onto the provider's own switch (see the module)."""
    io_binding: bool = False
    """Copy each batch to the device before the timed call and back after it (default: on a device)."""
    cuda_graph: bool = False
    """cuda only: capture the model once as a CUDA graph and replay it (``enable_cuda_graph``); small batches
    are launch-bound, so this is the default for a fixed-batch engine on cuda."""
    fallback: bool = False
    """Accept a session that ONNX Runtime moved to a later provider of the chain (recorded); default: refuse."""
    parity: bool = False
    """Check the first batch's logits against the same engine on the CPU provider (always with a CUDA graph)."""
    intra_op_threads: int = 0
    """Threads for one operator; 0 lets ONNX Runtime choose (one per physical core)."""
    allow_spinning: bool = False
    """Let the operator threads busy-wait between operators (``session.intra_op.allow_spinning``); off: see the
    module's docstring."""
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
    def check_devices(cls, devices: list[str]) -> None:
        """Several devices at once (``jobs.backends.check_devices``): GPUs or NPUs by index, each its own device
        (``cuda:0``, ``cuda:1``), all through one provider; the CPU's cores are one device shared by every process,
        so never ``cpu``, and a device without its index names the same one twice, as do ``cuda:0`` and
        ``tensorrt:0`` (one GPU)."""
        seen: dict[int, str] = {}
        for d in devices:
            kind, _, index = d.partition(":")
            if kind == "cpu" or not index:
                raise errors.OptionError(None, f"expected devices with an index such as cuda:0, cuda:1 for a run on "
                                         f"several (the CPU is one device), got {d!r}")
            first_kind = devices[0].partition(":")[0]
            if kind != first_kind:
                raise errors.OptionError(None, f"expected every device through one provider ({first_kind}:N, as "
                                         f"{devices[0]!r}), got {d!r}")
            if int(index) in seen:
                raise errors.OptionError(None, f"expected distinct devices, got {seen[int(index)]!r} and {d!r}, one "
                                         "device")
            seen[int(index)] = d

    @classmethod
    def check(cls, device: str, options: Mapping[str, Any], precision: str = "fp32") -> OnnxRuntimeConfig:
        """The config for ``device``, ``options`` and ``precision``; ``errors.OptionError`` naming what is wrong
        (``option`` None: the device; ``"precision"``: the precision)."""
        kind, _, index = device.partition(":")
        if kind not in PROVIDERS or (index and not index.isdigit()):
            raise errors.OptionError(None, f"expected one of cpu, cuda[:N], tensorrt[:N], cann[:N] for backend "
                                     f"onnxruntime, got {device!r}")
        if precision not in PRECISIONS[kind]:
            why = " (int8 needs a calibrated engine, not supported yet)" if precision == "int8" else ""
            raise errors.OptionError("precision", f"expected one of {', '.join(PRECISIONS[kind])} on {kind}, got "
                                     f"{precision!r}{why}")
        own = CANN_OPTIONS if kind == "cann" else CUDA_OPTIONS if kind == "cuda" else ()
        foreign = sorted(set(options) & (set(CANN_OPTIONS) | set(CUDA_OPTIONS)) - set(own))
        if foreign:
            raise errors.OptionError(foreign[0], f"does not apply to device {device!r}")
        registry.check_option_names(options, COMMON_OPTIONS + own)
        threads = options.get("intra_op_threads", 0)
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise errors.OptionError("intra_op_threads", f"expected an integer >= 0, got {threads!r}")
        level = options.get("graph_optimization_level", "all")
        if level not in LEVELS:
            raise errors.OptionError("graph_optimization_level", f"expected one of {', '.join(LEVELS)}, got {level!r}")
        flags = {}
        for name, default in (("io_binding", kind != "cpu"), ("fallback", False), ("cuda_graph", kind == "cuda"),
                              ("enable_cann_graph", True), ("parity", False), ("allow_spinning", False)):
            flags[name] = options.get(name, default)
            if not isinstance(flags[name], bool):
                raise errors.OptionError(name, f"expected true or false, got {flags[name]!r}")
        if flags["cuda_graph"] and kind == "cuda" and not flags["io_binding"]:
            raise errors.OptionError("cuda_graph", "needs io_binding (a CUDA graph replays fixed device buffers)")
        mode = CANN_MODES_BY_PRECISION.get(precision, ("",))[0] if kind == "cann" else CANN_DEFAULT_PRECISION
        if "precision_mode" in options:
            mode = options["precision_mode"]
            if mode not in CANN_PRECISION_MODES:
                raise errors.OptionError("precision_mode", f"expected one of {', '.join(CANN_PRECISION_MODES)}, "
                                         f"got {mode!r}")
            if mode not in CANN_MODES_BY_PRECISION[precision]:
                raise errors.OptionError("precision_mode", f"{mode!r} does not compute in {precision}; for "
                                         f"{precision} use one of {', '.join(CANN_MODES_BY_PRECISION[precision])}")
        mem = options.get("npu_mem_limit")
        if mem is not None and (isinstance(mem, bool) or not isinstance(mem, int) or mem < 1):
            raise errors.OptionError("npu_mem_limit", f"expected bytes (an integer >= 1), got {mem!r}")
        impl = options.get("op_select_impl_mode")
        if impl is not None and impl not in CANN_IMPL_MODES:
            raise errors.OptionError("op_select_impl_mode", f"expected one of {', '.join(CANN_IMPL_MODES)}, "
                                     f"got {impl!r}")
        return cls(device=device, precision=precision, io_binding=flags["io_binding"], parity=flags["parity"],
                   cuda_graph=flags["cuda_graph"] and kind == "cuda", fallback=flags["fallback"],
                   intra_op_threads=threads, allow_spinning=flags["allow_spinning"],
                   graph_optimization_level=level, precision_mode=mode,
                   enable_cann_graph=flags["enable_cann_graph"], npu_mem_limit=mem, op_select_impl_mode=impl)


def provider_options(cfg: OnnxRuntimeConfig, provider: str) -> dict[str, str]:
    """The options one execution provider is given, as the strings ONNX Runtime parses."""
    if provider == "CPUExecutionProvider":
        return {}
    opts = {"device_id": str(cfg.device_id)}
    if provider == "CUDAExecutionProvider":
        opts["use_tf32"] = "1" if cfg.precision == "tf32" else "0"
        if cfg.cuda_graph:
            opts["enable_cuda_graph"] = "1"
    if provider == "TensorrtExecutionProvider":
        opts["trt_fp16_enable"] = "1" if cfg.precision == "fp16" else "0"
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
