"""ONNX Runtime engine: the model with a fixed batch size and graph optimizations applied offline.

The offline level defaults to 'extended', whose rewrites are valid on any CPU; the
hardware-specific layout rewrites of level 'all' (NCHWc blocking) are left to session load
time, where they are fast and match the machine the pod actually landed on. Ask for
``offline_level=all`` to bake them in when engines never move between machine types.
"""

from __future__ import annotations

import pathlib
import platform

import onnx
import onnxruntime as ort

from jobs import errors

_LEVELS = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
ENGINE_FILE = "engine.onnx"


def fix_batch(model: onnx.ModelProto, batch_size: int) -> onnx.ModelProto:
    """Set the first dimension of every graph input and output to ``batch_size``."""
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_value = batch_size
    return model


def convert(model_path: pathlib.Path, out_dir: pathlib.Path, batch_size: int, options: dict) -> dict:
    unknown = set(options) - {"offline_level", "dynamic_batch"}
    if unknown:
        raise errors.BadInput(f"onnxruntime target options: unknown {sorted(unknown)}; "
                              "allowed: offline_level, dynamic_batch")
    level = options.get("offline_level", "extended")
    if level not in _LEVELS:
        raise errors.BadInput(f"onnxruntime option offline_level: expected one of {', '.join(_LEVELS)}, got {level!r}")
    dynamic = bool(options.get("dynamic_batch", False))
    try:
        model = onnx.load(str(model_path))
    except Exception as e:
        raise errors.BadInput(f"{model_path.name}: not a readable ONNX model ({e})") from None
    if not dynamic:
        model = fix_batch(model, batch_size)
    fixed_path = out_dir / "fixed.onnx.tmp"
    onnx.save(model, str(fixed_path))
    engine_path = out_dir / ENGINE_FILE
    so = ort.SessionOptions()
    so.graph_optimization_level = _LEVELS[level]
    so.optimized_model_filepath = str(engine_path)
    so.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(fixed_path), so, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise errors.BadInput(f"{model_path.name}: ONNX Runtime cannot load it: {str(e).splitlines()[0]}") from None
    inp = session.get_inputs()[0]
    fixed_path.unlink()
    dtype = {"tensor(float)": "float32", "tensor(uint8)": "uint8"}.get(inp.type, inp.type)
    return {
        "target": "onnxruntime",
        "file": ENGINE_FILE,
        "batch_size": None if dynamic else batch_size,
        "input": {"name": inp.name, "dtype": dtype,
                  "shape": [d if isinstance(d, int) else None for d in inp.shape]},
        "output": {"name": session.get_outputs()[0].name},
        "offline_level": level,
        # What infer should load it with: the remaining (hardware-specific) optimizations.
        "session_options": {"graph_optimization_level": "all" if level != "all" else "disable"},
        "built_with": {"onnxruntime": ort.__version__, "onnx": onnx.__version__,
                       "machine": platform.machine()},
        "portable": level != "all",
    }
