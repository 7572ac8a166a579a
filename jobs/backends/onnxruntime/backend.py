"""ONNX Runtime inference session over an engine made by ``jobs.stages.convert --target onnxruntime``.

Providers, their options and the precision come from ``config`` (see there). Two ways to run a batch:

- host arrays (the CPU by default): ``session.run`` on the batch; the CPU has no copies to time.
- I/O binding (a device by default, ``io_binding=true`` anywhere): one input and one output buffer are
  allocated on the device once; per batch the input is copied in (``H2D_latency``), the model runs on
  device-resident input and output and is synchronized (``NPU_compute_time``: device compute only, as
  ais_infer defines it), and the output is copied back (``D2H_latency``). Fixed buffers are also what a
  CUDA graph (``cuda_graph``) replays.

After the session is created, the provider actually running it must be the one asked for: ONNX Runtime
otherwise falls back along the provider list without a word (TensorRT libraries missing: CUDA; CUDA
libraries missing: the CPU; microsoft/onnxruntime#23372). That is ``MissingDependency`` (exit 3) before
anything is timed, unless ``fallback=true``, which records the provider that ran.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import onnxruntime as ort

from jobs import errors
from jobs.backends import base
from jobs.backends.onnxruntime import config as config_mod
from jobs.devices import cpu, nvidia_smi

_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}

# largest |device - CPU| / max |logit| accepted on the first batch, by precision (fp32 differs in summation
# order only; tf32 and fp16 round their inputs)
PARITY_TOLERANCE = {"fp32": 1e-3, "tf32": 2e-2, "fp16": 5e-2, "int8": 1e-1}

_DTYPES = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(float16)": np.float16}
# OrtValue device names by device kind
_ORT_DEVICE = {"cpu": "cpu", "cuda": "cuda", "tensorrt": "cuda", "cann": "cann"}


def intra_op_threads(cfg: config_mod.OnnxRuntimeConfig) -> tuple[int, str]:
    """(threads, where the number came from). 0 ("ONNX Runtime chooses") becomes the CPUs this process may use:
    ONNX Runtime counts the node's cores, which a container's CPU limit does not restrict
    (microsoft/onnxruntime#29510), so a pod limited to 4 CPUs on a 64-core node would start 64 threads."""
    if cfg.intra_op_threads:
        return cfg.intra_op_threads, "option intra_op_threads"
    budget = cpu.available_cpus()
    return budget.count, budget.source


def session_options(cfg: config_mod.OnnxRuntimeConfig) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.graph_optimization_level = _LEVELS[cfg.graph_optimization_level]
    so.intra_op_num_threads = intra_op_threads(cfg)[0]
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if cfg.allow_spinning else "0")
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3  # errors only; ONNX Runtime's warnings are noise in stage logs
    return so


def check_providers(requested: list[str], used: list[str], device: str, fallback: bool) -> None:
    """``MissingDependency`` when the session does not run on the provider asked for (``used[0]``)."""
    if used and used[0] == requested[0]:
        return
    if fallback and used and used[0] in requested:
        return
    hint = {"TensorrtExecutionProvider": "the TensorRT libraries (libnvinfer) are not found",
            "CUDAExecutionProvider": "the CUDA/cuDNN libraries are not found (onnxruntime-gpu needs them on "
                                     "LD_LIBRARY_PATH, or its cuda and cudnn extras)",
            "CANNExecutionProvider": "the CANN runtime is not found (source the toolkit's set_env.sh)"}
    raise errors.MissingDependency(
        f"device {device!r} asked for {requested[0]} but ONNX Runtime runs the session on "
        f"{used[0] if used else 'nothing'}: {hint.get(requested[0], 'the provider could not start')}; "
        "nothing was timed (fallback=true accepts ONNX Runtime's fallback and records it)")


class OnnxRuntimeBackend(base.Backend):
    name = "onnxruntime"

    def __init__(self, session: ort.InferenceSession, cfg: config_mod.OnnxRuntimeConfig,
                 engine_path: str | None = None):
        self._session = session
        self._cfg = cfg
        self._engine_path = engine_path
        # a CUDA graph replays what it captured: its first logits are checked against the plain engine on the CPU
        self._parity: dict[str, Any] | None = None if (cfg.cuda_graph or cfg.parity) else {"checked": False}
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
        out = session.get_outputs()[0]
        self._output_name = out.name
        self._output_shape = tuple(d if isinstance(d, int) else None for d in out.shape)
        self._binding: _Binding | None = None
        # staged batches (copied on the reading thread into their own device buffers) need fixed buffers per
        # slot; a CUDA graph replays one fixed input buffer, so it takes batches in the calling thread
        self.stages_input = cfg.io_binding and not cfg.cuda_graph
        self._slots: list[_Binding] = []
        self._next_slot = 0

    @classmethod
    def open(cls, engine: base.EngineInfo, device: str, options: dict[str, Any],
             precision: str = "fp32") -> OnnxRuntimeBackend:
        if engine.path is None:
            raise errors.BadInput("backend onnxruntime needs an engine file (--engine)")
        merged = dict(engine.record.get("session_options", {}))
        merged.update(options)
        cfg = config_mod.OnnxRuntimeConfig.check(device, merged, precision)
        wanted = config_mod.PROVIDERS[cfg.kind]
        available = ort.get_available_providers()
        if wanted[0] not in available:
            raise errors.MissingDependency(
                f"device {device!r} needs {wanted[0]}, which this onnxruntime build lacks "
                f"(available: {', '.join(available)}); install onnxruntime-gpu for cuda/tensorrt, "
                "onnxruntime-cann for cann")
        try:
            session = ort.InferenceSession(str(engine.path), session_options(cfg), providers=config_mod.providers(cfg))
        except Exception as e:  # noqa: BLE001 - ONNX Runtime raises its own exception types for corrupt models
            raise errors.BadInput(f"engine {engine.path}: ONNX Runtime cannot load it: {str(e).splitlines()[0]}") \
                from e
        check_providers(wanted, session.get_providers(), device, cfg.fallback)
        return cls(session, cfg, str(engine.path))

    @property
    def input(self) -> base.TensorSpec:
        return self._spec

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, base.RunTiming]:
        if not self._cfg.io_binding:
            feeds = {self._spec.name: batch}
            t0 = time.perf_counter()
            (logits,) = self._session.run([self._output_name], feeds)
            return logits, base.RunTiming(compute_ms=(time.perf_counter() - t0) * 1e3)
        if self._binding is None or self._binding.shape != batch.shape:
            self._binding = _Binding(self._session, self._spec.name, self._output_name, batch,
                                     _ORT_DEVICE[self._cfg.kind], self._cfg.device_id)
        logits, timing = self._binding.run(batch)
        if self._parity is None:  # the first batch (a warm-up batch in the infer stage)
            self._parity = self._check_parity(batch, logits)
        return logits, timing

    def _check_parity(self, batch: np.ndarray, logits: np.ndarray) -> dict[str, Any]:
        """The device's logits for ``batch`` against the same engine on the CPU provider, without a graph;
        ``GhostbenchError`` (nothing committed) beyond the precision's tolerance."""
        so = ort.SessionOptions()
        so.log_severity_level = 3
        plain = ort.InferenceSession(self._engine_path, so, providers=["CPUExecutionProvider"])
        (expected,) = plain.run([self._output_name], {self._spec.name: batch})
        bad = [int(np.count_nonzero(~np.isfinite(x))) for x in (logits, expected)]
        if any(bad):  # named as such: the difference would read "nan of max |logit|"
            raise errors.GhostbenchError(
                f"logits on {self._cfg.device} hold {bad[0]} NaN or infinite value(s) in the first batch (the plain "
                f"engine on the CPU: {bad[1]}); nothing was timed")
        diff = float(np.max(np.abs(logits.astype(np.float64) - expected)))
        scale = float(np.max(np.abs(expected))) or 1.0
        tolerance = PARITY_TOLERANCE[self._cfg.precision]
        record = {"checked": True, "reference": "the same engine on CPUExecutionProvider, no graph",
                  "batch": int(batch.shape[0]), "max_abs_diff": diff, "relative": diff / scale,
                  "tolerance": tolerance,
                  "top1_agreement": float(np.mean(logits.argmax(1) == expected.argmax(1)))}
        if not diff / scale <= tolerance:
            raise errors.GhostbenchError(
                f"logits on {self._cfg.device} differ from the plain engine's on the CPU by {diff / scale:.3g} of "
                f"max |logit| (tolerance {tolerance:g} for {self._cfg.precision}); nothing was timed"
                + (" (cuda_graph=false runs without the graph)" if self._cfg.cuda_graph else ""))
        return record

    def stage(self, batch: np.ndarray) -> base.Staged:
        if not self._slots or self._slots[0].shape != batch.shape:
            self._slots = [_Binding(self._session, self._spec.name, self._output_name, batch,
                                    _ORT_DEVICE[self._cfg.kind], self._cfg.device_id)
                           for _ in range(base.STAGING_SLOTS)]
        slot = self._next_slot
        self._next_slot = (slot + 1) % base.STAGING_SLOTS
        return base.Staged(slot=slot, rows=batch.shape[0], h2d_ms=self._slots[slot].copy_in(batch))

    def infer_staged(self, staged: base.Staged) -> tuple[np.ndarray, base.RunTiming]:
        logits, t = self._slots[staged.slot].compute_and_copy_out()
        return logits, base.RunTiming(compute_ms=t.compute_ms, h2d_ms=staged.h2d_ms, d2h_ms=t.d2h_ms)

    def describe(self) -> dict[str, Any]:
        used = self._session.get_providers()
        return {
            "backend": self.name,
            "device": self._cfg.device,
            "precision": self._cfg.precision,
            "providers": used,
            "provider_requested": config_mod.PROVIDERS[self._cfg.kind][0],
            "fallback": used[0] != config_mod.PROVIDERS[self._cfg.kind][0],
            "io_binding": self._cfg.io_binding,
            "cuda_graph": self._cfg.cuda_graph,
            "stages_input": self.stages_input,
            "intra_op_threads": dict(zip(("count", "source"), intra_op_threads(self._cfg))),
            "allow_spinning": self._cfg.allow_spinning,
            "graph_optimization_level": self._cfg.graph_optimization_level,
            "provider_options": {p: self._session.get_provider_options().get(p, {})
                                 for p in used if p != "CPUExecutionProvider"},
            "onnxruntime": ort.__version__,
            "onnxruntime_device": ort.get_device(),
            "parity": self._parity or {"checked": False, "why": "no batch ran before timing (--warmup 0)"},
            "device_info": (nvidia_smi.device_info(self._cfg.device_id) if self._cfg.kind in ("cuda", "tensorrt")
                            else None),
        }

    def close(self) -> None:
        self._binding = None
        self._slots = []
        self._session = None  # type: ignore[assignment]


class _Binding:
    """Device-resident input and output of one batch shape, bound once (fixed addresses, as a CUDA graph
    needs); ``run`` times the copy in, the synchronized compute and the copy out apart."""

    def __init__(self, session: ort.InferenceSession, input_name: str, output_name: str, batch: np.ndarray,
                 device: str, device_id: int):
        self.shape = batch.shape
        self._session = session
        # memory of its own on the device (on the CPU, ortvalue_from_numpy would wrap the caller's array)
        self._input = ort.OrtValue.ortvalue_from_shape_and_type(list(batch.shape), batch.dtype.type, device, device_id)
        self._io = session.io_binding()
        self._io.bind_ortvalue_input(input_name, self._input)
        self._io.bind_output(output_name, device, device_id)
        self._run_options = ort.RunOptions()

    def copy_in(self, batch: np.ndarray) -> float:
        """Host -> device (synchronous); its time in ms."""
        t0 = time.perf_counter()
        self._input.update_inplace(np.ascontiguousarray(batch))
        return (time.perf_counter() - t0) * 1e3

    def compute_and_copy_out(self) -> tuple[np.ndarray, base.RunTiming]:
        """The synchronized compute on the bound buffers, then device -> host, timed apart."""
        t1 = time.perf_counter()
        self._session.run_with_iobinding(self._io, self._run_options)
        self._io.synchronize_outputs()  # the device has finished the batch
        t2 = time.perf_counter()
        logits = self._io.copy_outputs_to_cpu()[0]
        t3 = time.perf_counter()
        return logits, base.RunTiming(compute_ms=(t2 - t1) * 1e3, d2h_ms=(t3 - t2) * 1e3)

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, base.RunTiming]:
        h2d_ms = self.copy_in(batch)
        logits, t = self.compute_and_copy_out()
        return logits, base.RunTiming(compute_ms=t.compute_ms, h2d_ms=h2d_ms, d2h_ms=t.d2h_ms)
