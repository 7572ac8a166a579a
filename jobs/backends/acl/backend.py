"""An ``.om`` engine on an Ascend NPU through aclruntime's ``InferenceSession``, timed as ais_infer times it.

Per batch: ``aclruntime.Tensor(batch).to_device(id)`` (H2D, host clock around ``to_device``),
``session.run(output_names, [tensor])``, the model's execution time from aclruntime's own summary
(``sumary().exec_time_list``, ais_infer's NPU_compute_time; reset after every batch), then
``outputs[0].to_host()`` (D2H, host clock around ``to_host``) and ``numpy.array``.

Layout: the harness feeds NCHW batches. An ``.om`` built with AIPP takes uint8 NHWC pixels, so
for such an engine each batch is transposed CHW -> HWC on the host into a reused buffer before
the copy (outside every timing). Dynamic-batch engines get ``set_dynamic_batchsize(n)`` whenever
the batch size changes; their output may be sized for the largest batch, so only the first n rows
are taken.

aclruntime is imported when the backend opens; it is not on PyPI (it ships with ais_bench in the
Ascend inference image).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import time
from typing import Any

import numpy as np

from jobs import errors
from jobs.backends import base
from jobs.backends.acl import config as config_mod
from jobs.devices import npu_smi

NOT_INSTALLED = "aclruntime is not installed; it ships with ais_bench in the Ascend inference image"
_DTYPES = {"float32": np.float32, "float16": np.float16, "uint8": np.uint8, "int8": np.int8}
# aclFormat values (acl_base.h) as aclruntime's tensor_desc reports them
_FORMATS = {0: "NCHW", 1: "NHWC", 2: "ND"}


def import_aclruntime():
    try:
        return importlib.import_module("aclruntime")
    except ImportError as e:
        raise errors.MissingDependency(NOT_INSTALLED) from e


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def dtype_name(datatype: Any) -> str:
    """``aclruntime.dtype.float32`` (a pybind11 enum) -> ``float32``."""
    name = getattr(datatype, "name", None)
    return str(name if isinstance(name, str) else datatype).rsplit(".", 1)[-1].lower()


def format_name(fmt: Any, shape: list[int]) -> str:
    """The descriptor's layout: from the ACL format code, or from the shape when it says ND."""
    name = _FORMATS.get(fmt, str(fmt).rsplit(".", 1)[-1].upper()) if not isinstance(fmt, str) else fmt.upper()
    if name not in ("NCHW", "NHWC") and len(shape) == 4:
        name = "NHWC" if shape[3] in (1, 3) and shape[1] not in (1, 3) else "NCHW"
    return name


def exec_ms(entries: list[Any]) -> float:
    """Milliseconds of execution in ``exec_time_list`` entries: numbers (ms), or (start, end) pairs (ms)."""
    total = 0.0
    for e in entries:
        if isinstance(e, (tuple, list)):
            total += float(e[1]) - float(e[0])
        else:
            total += float(e)
    return total


class AclBackend(base.Backend):
    name = "acl"
    _device_info: dict[str, Any] | None = None  # npu-smi and CANN facts, read once by describe()

    def __init__(self, acl: Any, session: Any, cfg: config_mod.AclConfig, chip: config_mod.AclDevice,
                 record: dict[str, Any]):
        self._acl = acl
        self._session = session
        self._cfg = cfg
        self._chip = chip
        inputs, outputs = list(session.get_inputs()), list(session.get_outputs())
        if len(inputs) != 1 or not outputs:
            raise errors.BadInput(f"the .om has {len(inputs)} inputs and {len(outputs)} outputs; expected one image "
                                  "input and a logits output")
        desc = inputs[0]
        self._desc = {"name": desc.name, "dtype": dtype_name(desc.datatype), "shape": [int(d) for d in desc.shape],
                      "format": format_name(desc.format, [int(d) for d in desc.shape]),
                      "size": int(desc.size), "realsize": int(desc.realsize)}
        dt, shape, fmt = self._desc["dtype"], self._desc["shape"], self._desc["format"]
        if dt not in ("float32", "uint8") or len(shape) != 4:
            raise errors.BadInput(f"the .om's input {desc.name!r} is {dt} {shape}; expected a float32 or uint8 "
                                  "4-D image input")
        rec_in = record.get("input") or {}
        if rec_in.get("dtype") and rec_in["dtype"] != dt:
            raise errors.BadInput(f"engine.json says the input is {rec_in['dtype']} but the .om's descriptor "
                                  f"says {dt}; rebuild the engine")
        self._nhwc = fmt == "NHWC"
        n, c, h, w = (shape[0], shape[3], shape[1], shape[2]) if self._nhwc else tuple(shape)
        self._sizes = [int(b) for b in record.get("dynamic_batch_sizes") or []]
        self._dynamic = bool(self._sizes) or n < 0
        self._batch = None if self._dynamic else n
        self._dtype = np.dtype(_DTYPES[dt])
        # What the harness feeds: NCHW in the engine's element type (the layout is converted here).
        self._spec = base.TensorSpec(name=desc.name, dtype=self._dtype, shape=(self._batch, c, h, w))
        self._output_names = [o.name for o in outputs]
        out_shape = [int(d) for d in outputs[0].shape]
        self._classes = out_shape[-1] if out_shape and out_shape[-1] > 0 else None
        self._current_batch: int | None = None
        self._nhwc_buf: np.ndarray | None = None
        summary = getattr(session, "sumary", None) or session.summary
        self._summary = summary

    @classmethod
    def open(cls, engine: base.EngineInfo, device: str, options: dict[str, Any],
             precision: str = "fp32") -> AclBackend:
        cfg = config_mod.AclConfig.check(device, options, precision)
        built = engine.record.get("precision")
        if built is not None and built != precision:
            raise errors.BadInput(f"the .om was built for {built} (ATC precision_mode "
                                  f"{engine.record.get('precision_mode')}), the target asks for {precision}")
        chip = cfg.resolve(os.environ)
        if engine.path is None:
            raise errors.BadInput("backend acl needs an .om engine (--engine, from the convert stage's atc target)")
        if engine.record.get("target") not in (None, "atc"):
            raise errors.BadInput(f"backend acl runs .om engines from the atc target; this engine is "
                                  f"{engine.record.get('target')!r}")
        acl = import_aclruntime()
        so = acl.session_options()
        so.log_level = cfg.log_level
        if cfg.acl_json_path:
            so.acl_json_path = cfg.acl_json_path
        try:
            session = acl.InferenceSession(str(engine.path), chip.device_id, so)
        except (RuntimeError, ValueError, OSError) as e:  # pybind11 turns ACL's errors into RuntimeError
            raise errors.BadInput(f"engine {engine.path.name}: aclruntime cannot load it on NPU {chip.device_id}: "
                                  f"{_first_line(e)}") from e
        try:
            return cls(acl, session, cfg, chip, engine.record)
        except BaseException:
            _finalize(session)
            raise

    @property
    def input(self) -> base.TensorSpec:
        return self._spec

    def _feed(self, batch: np.ndarray) -> np.ndarray:
        if batch.dtype != self._dtype:
            raise errors.BadInput(f"batch of {batch.dtype}; the .om's input takes {self._dtype}")
        if not self._nhwc:
            return np.ascontiguousarray(batch)
        target = (batch.shape[0], batch.shape[2], batch.shape[3], batch.shape[1])
        if self._nhwc_buf is None or self._nhwc_buf.shape != target:
            self._nhwc_buf = np.empty(target, dtype=self._dtype)
        np.copyto(self._nhwc_buf, batch.transpose(0, 2, 3, 1))
        return self._nhwc_buf

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, base.RunTiming]:
        n = int(batch.shape[0])
        if self._dynamic and self._sizes and n not in self._sizes:
            raise errors.BadInput(f"batch size {n}: this dynamic-batch engine takes {self._sizes}")
        if not self._dynamic and n != self._batch:
            raise errors.BadInput(f"batch size {n}: the .om was built for batch size {self._batch}")
        feed = self._feed(batch)
        try:
            if self._dynamic and n != self._current_batch:
                self._session.set_dynamic_batchsize(n)
                self._current_batch = n
            tensor = self._acl.Tensor(feed)
            t0 = time.perf_counter()
            tensor.to_device(self._chip.device_id)
            t1 = time.perf_counter()
            outputs = self._session.run(self._output_names, [tensor])
            entries = list(self._summary().exec_time_list)
            self._session.reset_sumaryinfo()
            out = outputs[0]
            t2 = time.perf_counter()
            out.to_host()
            t3 = time.perf_counter()
            logits = np.array(out)
        except (RuntimeError, ValueError, OSError) as e:
            raise errors.GhostbenchError(f"aclruntime failed on a batch of {n}: {_first_line(e)}") from e
        if not entries:
            raise errors.GhostbenchError("aclruntime reported no execution time for the batch (sumary().exec_time_list "
                                         "is empty)")
        classes = self._classes or (logits.size // max(logits.shape[0], 1))
        logits = logits.reshape(-1, classes)[:n]
        if logits.shape[0] != n:
            raise errors.GhostbenchError(f"the .om returned {logits.shape[0]} rows of logits for a batch of {n}")
        return logits, base.RunTiming(compute_ms=exec_ms(entries), h2d_ms=(t1 - t0) * 1e3, d2h_ms=(t3 - t2) * 1e3)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "device": self._cfg.device,
            "acl_device_id": self._chip.device_id,
            "physical_device_id": self._chip.physical_id,
            npu_smi.VISIBLE_DEVICES_ENV: self._chip.visible_devices,
            "om_input": self._desc,
            "dynamic_batch_sizes": self._sizes or None,
            "host_layout_conversion": ("NCHW -> NHWC transpose on the host before H2D (not timed)" if self._nhwc
                                       else None),
            "timing": {"compute": "aclruntime sumary().exec_time_list, per batch",
                       "h2d": "host clock around Tensor.to_device", "d2h": "host clock around Tensor.to_host"},
            "aclruntime": getattr(self._acl, "__version__", None),
            "device_info": self.device_info(),
        }

    def device_info(self) -> dict[str, Any]:
        """The chip this run used (its npu-smi name, health, bus id) and the driver and CANN versions
        (``jobs.devices.npu_smi.device_info``), read once, after the timed batches; what cannot be read is None."""
        if self._device_info is None:
            self._device_info = npu_smi.device_info(self._chip.device_id, self._chip.physical_id)
        return self._device_info

    def close(self) -> None:
        if self._session is not None:
            _finalize(self._session)
            self._session = None


def _finalize(session: Any) -> None:
    finalize = getattr(session, "finalize", None)
    if finalize is not None:
        with contextlib.suppress(RuntimeError):  # releasing the device must not hide the run's result or error
            finalize()
