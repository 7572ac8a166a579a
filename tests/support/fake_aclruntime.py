"""A stand-in for the ``aclruntime`` module, following its documented interface, computing with ONNX Runtime.

The interface, as the ais_bench sources and ``shared/facts/FORMATS.md`` (the project's shared facts file, outside
this repository) record it: ``session_options()``;
``InferenceSession(model_path, device_id, options)`` with ``get_inputs()`` / ``get_outputs()``
(``tensor_desc``: name, datatype, format, shape, realsize, size), ``run(output_names, feeds)``,
``sumary().exec_time_list``, ``reset_sumaryinfo()``, ``set_dynamic_batchsize(n)``, ``finalize()``;
``Tensor(ndarray)`` with ``to_device(device_id)``, ``to_host()``, ``shape``, ``dtype`` and the buffer
protocol (``numpy.array(tensor)``, refused while the tensor is on the device); ``dtype`` an enum.

The "om" it loads is what ``tests.support.fake_atc`` writes: an ONNX model with the input ATC would give
the ``.om`` (fixed or -1 batch; uint8 NHWC with AIPP) and metadata saying so. Like the real
runtime it is strict: feeds must be on the session's device, in the input's dtype, and exactly the
model's batch size (a dynamic-batch model needs ``set_dynamic_batchsize`` first). A dynamic-batch
model's output is sized for its largest batch (the rows past the batch are zeros), the worst case
a caller must handle. Module attributes let tests steer it:

- ``DEVICE_COUNT``: devices ``0 .. DEVICE_COUNT - 1`` exist;
- ``FIXED_EXEC_MS``: when set, every run reports this execution time instead of the measured one;
- ``EXEC_TIME_AS_PAIRS``: report ``(start, end)`` pairs in ms, as newer aclruntime's ``summary()`` does;
- ``calls``: a log of ``(method, argument)`` for assertions.
"""

from __future__ import annotations

import enum
import time

import numpy as np

DEVICE_COUNT = 1
FIXED_EXEC_MS: float | None = None
EXEC_TIME_AS_PAIRS = False
calls: list[tuple[str, object]] = []

__version__ = "0.0.0-fake"


def reset() -> None:
    global DEVICE_COUNT, FIXED_EXEC_MS, EXEC_TIME_AS_PAIRS
    DEVICE_COUNT, FIXED_EXEC_MS, EXEC_TIME_AS_PAIRS = 1, None, False
    calls.clear()


class dtype(enum.Enum):
    int8 = 2
    uint8 = 4
    float16 = 1
    float32 = 0


_NP = {dtype.int8: np.int8, dtype.uint8: np.uint8, dtype.float16: np.float16, dtype.float32: np.float32}
_ONNX = {"tensor(float)": dtype.float32, "tensor(uint8)": dtype.uint8, "tensor(float16)": dtype.float16}
_FORMAT = {"NCHW": 0, "NHWC": 1, "ND": 2}  # aclFormat codes


def _dtype_of(array: np.ndarray) -> dtype:
    for k, v in _NP.items():
        if array.dtype == v:
            return k
    return dtype.uint8  # as the real module: unknown formats become uint8 bytes


class session_options:
    def __init__(self):
        self.loop = 1
        self.log_level = 2
        self.acl_json_path = ""


class tensor_desc:
    def __init__(self, name, datatype, fmt, shape, size):
        self.name, self.datatype, self.format, self.shape = name, datatype, fmt, shape
        self.realsize = self.size = size


class sumary:
    def __init__(self):
        self.exec_time_list: list = []


class Tensor:
    def __init__(self, array: np.ndarray):
        self._data = np.array(array, copy=True, order="C")  # the real one copies into its own buffer
        self._device: int | None = None

    def to_device(self, device_id: int) -> None:
        if not 0 <= device_id < DEVICE_COUNT:
            raise RuntimeError(f"aclrtSetDevice failed, device {device_id} does not exist")
        self._device = device_id

    def to_host(self) -> None:
        self._device = None

    @property
    def shape(self) -> list[int]:
        return list(self._data.shape)

    @property
    def dtype(self) -> dtype:
        return _dtype_of(self._data)

    @property
    def device(self) -> int:
        return -1 if self._device is None else self._device

    def __array__(self, dtype=None, copy=None):
        if self._device is not None:
            raise RuntimeError("tensor is in npu. can't convert to numpy array")
        return self._data if dtype is None else self._data.astype(dtype)


class InferenceSession:
    def __init__(self, model_path: str, device_id: int, options: session_options):
        import onnxruntime as ort

        if not isinstance(options, session_options):
            raise TypeError("InferenceSession(model_path, device_id, options): options must be session_options()")
        if not 0 <= device_id < DEVICE_COUNT:
            raise RuntimeError(f"aclrtSetDevice failed, device {device_id} does not exist (ret 107001)")
        calls.append(("open", (model_path, device_id)))
        so = ort.SessionOptions()
        so.log_severity_level = 3
        try:
            self._ort = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - any load failure becomes ACL's RuntimeError, as in the real module
            raise RuntimeError(f"aclmdlLoadFromFile failed for {model_path}: {str(e).splitlines()[0]}") from None
        meta = self._ort.get_modelmeta().custom_metadata_map
        if meta.get("fake_atc") != "1":
            raise RuntimeError(f"aclmdlLoadFromFile failed for {model_path}: not an om (ret 500002)")
        self.device_id = device_id
        self._sizes = [int(b) for b in meta["dynamic_batch_sizes"].split(",")] if "dynamic_batch_sizes" in meta else []
        self._dyn_batch: int | None = None
        self._summary = sumary()
        self._closed = False
        inp = self._ort.get_inputs()[0]
        self._in_dtype = _ONNX[inp.type]
        self._in_shape = [d if isinstance(d, int) else -1 for d in inp.shape]
        self._in_format = meta["input_format"]
        out = self._ort.get_outputs()[0]
        self._out_shape = [d if isinstance(d, int) else -1 for d in out.shape]

    def _bytes(self, shape: list[int], dt: dtype) -> int:
        n = [max(self._sizes) if d < 0 and self._sizes else d for d in shape]
        return int(np.prod(n)) * np.dtype(_NP[dt]).itemsize

    def get_inputs(self) -> list[tensor_desc]:
        return [tensor_desc(self._ort.get_inputs()[0].name, self._in_dtype, _FORMAT[self._in_format],
                            list(self._in_shape), self._bytes(self._in_shape, self._in_dtype))]

    def get_outputs(self) -> list[tensor_desc]:
        return [tensor_desc(self._ort.get_outputs()[0].name, dtype.float32, _FORMAT["ND"], list(self._out_shape),
                            self._bytes(self._out_shape, dtype.float32))]

    def set_dynamic_batchsize(self, batch: int) -> int:
        calls.append(("set_dynamic_batchsize", batch))
        if not self._sizes:
            raise RuntimeError("set_dynamic_batchsize: the model is not a dynamic-batch model")
        if batch not in self._sizes:
            raise RuntimeError(f"set_dynamic_batchsize: {batch} is not one of the model's batch sizes {self._sizes}")
        self._dyn_batch = batch
        return 0

    def run(self, output_names: list[str], feeds: list[Tensor]) -> list[Tensor]:
        if self._closed:
            raise RuntimeError("session finalized")
        if len(feeds) != 1 or not isinstance(feeds[0], Tensor):
            raise RuntimeError("run: expected one aclruntime.Tensor per model input")
        feed = feeds[0]
        if feed._device != self.device_id:
            raise RuntimeError("run: the input tensor is not on the session's device (call to_device)")
        if feed.dtype != self._in_dtype:
            raise RuntimeError(f"run: input is {feed.dtype.name}, the model takes {self._in_dtype.name}")
        expected = list(self._in_shape)
        if expected[0] < 0:
            if self._dyn_batch is None:
                raise RuntimeError("run: dynamic-batch model and no set_dynamic_batchsize")
            expected[0] = self._dyn_batch
        if feed.shape != expected:
            raise RuntimeError(f"run: input of shape {feed.shape}, the model takes {expected}")
        names = [o.name for o in self._ort.get_outputs()]
        if list(output_names) != names:
            raise RuntimeError(f"run: unknown outputs {output_names}; the model has {names}")
        start = time.perf_counter() * 1e3
        (logits,) = self._ort.run(names, {self._ort.get_inputs()[0].name: feed._data})
        end = time.perf_counter() * 1e3
        if FIXED_EXEC_MS is not None:
            start, end = 0.0, FIXED_EXEC_MS
        self._summary.exec_time_list.append((start, end) if EXEC_TIME_AS_PAIRS else end - start)
        if self._sizes:  # sized for the largest batch, as the output buffer is allocated
            padded = np.zeros((max(self._sizes),) + logits.shape[1:], dtype=logits.dtype)
            padded[: logits.shape[0]] = logits
            logits = padded
        out = Tensor(logits)
        out._device = self.device_id
        calls.append(("run", feed.shape[0]))
        return [out]

    def sumary(self) -> sumary:
        return self._summary

    def reset_sumaryinfo(self) -> int:
        self._summary = sumary()
        return 0

    def finalize(self) -> int:
        calls.append(("finalize", None))
        self._closed = True
        return 0
