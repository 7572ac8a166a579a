"""ONNX Runtime engine: the model with a fixed batch size and graph optimizations applied offline.

The offline level defaults to 'extended', whose rewrites are valid on any CPU; the
hardware-specific layout rewrites of level 'all' (NCHWc blocking) are left to session load
time, where they are fast and match the machine the pod actually landed on. Ask for
``offline_level=all`` to bake them in when engines never move between machine types.
"""

from __future__ import annotations

import dataclasses
import pathlib
import platform
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jobs import errors, registry
from jobs.artifacts import records

if TYPE_CHECKING:  # onnx and onnxruntime are imported when an engine is built, not when options are checked
    import onnx

LEVELS = ("basic", "extended", "all")
OPTIONS = ("offline_level", "dynamic_batch", "provider")
PROVIDERS = ("cpu", "cuda", "tensorrt", "cann")
"""The device kind an engine is built for: a graph optimized offline for the CPU provider carries CPU-specific
rewrites that ran 8-30% slower on an H200 than the plain export, so device engines get only the
provider-independent level (basic) offline and the provider's own optimizations when the session loads."""
ENGINE_FILE = "engine.onnx"


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    """The onnxruntime target's options, checked without onnx or onnxruntime."""

    offline_level: str = "extended"
    """Graph optimizations applied offline: basic, extended (portable across CPUs) or all (machine-specific);
    default extended for the CPU, basic for a device."""
    provider: str = "cpu"
    """The device kind the engine is for (``PROVIDERS``); the plan passes the target's."""
    dynamic_batch: bool = False
    """Keep the batch dimension dynamic instead of fixing it to the batch size."""

    @classmethod
    def opsets(cls, options: Mapping[str, Any]) -> tuple[int, int | None]:
        """(lowest, highest) ONNX opset: ONNX Runtime loads opset 7 and later (its own load names a newer one)."""
        return 7, None

    @classmethod
    def check(cls, options: Mapping[str, Any], batch_size: int, precision: str = "fp32") -> EngineOptions:
        """The precision is the session's (a provider switch, see jobs.backends.onnxruntime.config): the engine
        file stays float32; int8 needs a calibrated engine, not built yet."""
        if precision == "int8":
            raise errors.OptionError("precision", "int8 needs a calibrated engine, not supported yet")
        registry.check_option_names(options, OPTIONS)
        provider = options.get("provider", "cpu")
        if provider not in PROVIDERS:
            raise errors.OptionError("provider", f"expected one of {', '.join(PROVIDERS)}, got {provider!r}")
        level = options.get("offline_level", "extended" if provider == "cpu" else "basic")
        if level not in LEVELS:
            raise errors.OptionError("offline_level", f"expected one of {', '.join(LEVELS)}, got {level!r}")
        dynamic = options.get("dynamic_batch", False)
        if not isinstance(dynamic, bool):
            raise errors.OptionError("dynamic_batch", f"expected true or false, got {dynamic!r}")
        return cls(offline_level=level, dynamic_batch=dynamic, provider=provider)


def fix_batch(model: onnx.ModelProto, batch_size: int) -> onnx.ModelProto:
    """Set the first dimension of every graph input and output to ``batch_size``."""
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_value = batch_size
    return model


def convert(model_path: pathlib.Path, out_dir: pathlib.Path, batch_size: int, options: dict,
            precision: str = "fp32", normalization: Any = None, model_name: str | None = None
            ) -> records.EngineRecord:
    """Build ``engine.onnx`` in ``out_dir``; the record for ``engine.json``. ``BadInput`` for a bad model.
    ``normalization`` and ``model_name`` are not used: the graph (or the data) normalizes, the file is always
    ``engine.onnx``; any input size and name are kept."""
    import onnx
    import onnxruntime as ort

    opts = EngineOptions.check(options, batch_size, precision)
    level, dynamic = opts.offline_level, opts.dynamic_batch
    try:
        model = onnx.load(str(model_path))
    except Exception as e:  # noqa: BLE001 - protobuf's and onnx's own errors for a bad file
        raise errors.BadInput(f"{model_path.name}: not a readable ONNX model ({e})") from e
    if not dynamic:
        model = fix_batch(model, batch_size)
    fixed_path = out_dir / "fixed.onnx.tmp"
    onnx.save(model, str(fixed_path))
    engine_path = out_dir / ENGINE_FILE
    so = ort.SessionOptions()
    so.graph_optimization_level = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                   "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                                   "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    so.optimized_model_filepath = str(engine_path)
    so.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(fixed_path), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - ONNX Runtime's own exception types
        raise errors.BadInput(f"{model_path.name}: ONNX Runtime cannot load it: {str(e).splitlines()[0]}") from e
    inp = session.get_inputs()[0]
    fixed_path.unlink()
    dtype = {"tensor(float)": "float32", "tensor(uint8)": "uint8"}.get(inp.type, inp.type)
    return records.EngineRecord(
        target="onnxruntime", file=ENGINE_FILE, batch_size=None if dynamic else batch_size,
        input={"name": inp.name, "dtype": dtype, "shape": [d if isinstance(d, int) else None for d in inp.shape]},
        details={
        "output": {"name": session.get_outputs()[0].name},
        "offline_level": level,
        "built_for": opts.provider,
        # What infer should load it with: the remaining (hardware-specific) optimizations.
        "session_options": {"graph_optimization_level": "all" if level != "all" else "disable"},
        "built_with": {"onnxruntime": ort.__version__, "onnx": onnx.__version__,
                       "machine": platform.machine()},
        "portable": level != "all",
    })
