"""ONNX Runtime inference session over an engine made by ``jobs.convert --target onnxruntime``.

Providers and their options come from ``config.providers``: on ``cann`` the precision mode is
always set explicitly (see ``config``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import onnxruntime as ort

from jobs import errors
from jobs.backends import base
from jobs.backends.onnxruntime import config as config_mod

_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}

_DTYPES = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(float16)": np.float16}


def session_options(cfg: config_mod.OnnxRuntimeConfig) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.graph_optimization_level = _LEVELS[cfg.graph_optimization_level]
    so.intra_op_num_threads = cfg.intra_op_threads
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3  # errors only; ONNX Runtime's warnings are noise in stage logs
    return so


class OnnxRuntimeBackend(base.Backend):
    name = "onnxruntime"

    def __init__(self, session: ort.InferenceSession, cfg: config_mod.OnnxRuntimeConfig):
        self._session = session
        self._cfg = cfg
        self.computes_on_host = cfg.kind == "cpu"
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise errors.BadInput(f"engine has {len(inputs)} inputs; expected one image input")
        inp = inputs[0]
        if inp.type not in _DTYPES:
            raise errors.BadInput(f"engine input {inp.name!r} has type {inp.type}; expected float or uint8")
        self._spec = base.TensorSpec(
            name=inp.name,
            dtype=np.dtype(_DTYPES[inp.type]),
            shape=tuple(d if isinstance(d, int) else None for d in inp.shape),
        )
        self._output_names = [session.get_outputs()[0].name]

    @classmethod
    def open(cls, engine: base.EngineInfo, device: str, options: dict[str, Any]) -> OnnxRuntimeBackend:
        if engine.path is None:
            raise errors.BadInput("backend onnxruntime needs an engine file (--engine)")
        merged = dict(engine.record.get("session_options", {}))
        merged.update(options)
        cfg = config_mod.OnnxRuntimeConfig.check(device, merged)
        wanted = config_mod.PROVIDERS[cfg.kind]
        available = ort.get_available_providers()
        if wanted[0] not in available:
            raise errors.MissingDependency(
                f"device {device!r} needs {wanted[0]}, which this onnxruntime build lacks "
                f"(available: {', '.join(available)}); install onnxruntime-gpu for cuda/tensorrt, "
                "onnxruntime-cann for cann")
        providers: list[Any] = config_mod.providers(cfg)
        try:
            session = ort.InferenceSession(str(engine.path), session_options(cfg), providers=providers)
        except Exception as e:  # noqa: BLE001 - ONNX Runtime raises its own exception types for corrupt models
            raise errors.BadInput(f"engine {engine.path}: ONNX Runtime cannot load it: {str(e).splitlines()[0]}")
        return cls(session, cfg)

    @property
    def input(self) -> base.TensorSpec:
        return self._spec

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, base.RunTiming]:
        feeds = {self._spec.name: batch}
        t0 = time.perf_counter()
        (logits,) = self._session.run(self._output_names, feeds)
        elapsed = time.perf_counter() - t0
        return logits, base.RunTiming(compute_ms=elapsed * 1e3)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "device": self._cfg.device,
            "providers": self._session.get_providers(),
            "intra_op_threads": self._cfg.intra_op_threads,
            "graph_optimization_level": self._cfg.graph_optimization_level,
            "provider_options": {p: self._session.get_provider_options().get(p, {})
                                 for p in self._session.get_providers() if p != "CPUExecutionProvider"},
            "onnxruntime": ort.__version__,
        }

    def close(self) -> None:
        self._session = None  # type: ignore[assignment]
