"""Device power while the infer stage times: joules per image and images per joule.

One small interface, ``PowerSampler`` (``start()``, then ``stop() -> records.PowerRecord``), with two
implementations that read one device's power at a fixed interval (default 50 ms) in a background thread:

- ``NvmlSampler``: an NVIDIA GPU through NVML (``nvidia-ml-py``, module ``pynvml``; the ``gpu`` extra).
  ``nvmlDeviceGetPowerUsage`` (mW, the whole board) is sampled; where the GPU has it (Volta and later),
  ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded) is read at start and stop and gives the
  energy exactly. Without the counter the sampled power is integrated (trapezoids). On Ampere and later
  (GA100 excepted) NVML's power reading is a one-second average, one more reason to prefer the counter.
- ``NpuSmiSampler``: an Ascend NPU through ``npu-smi info -t power -i <NPU id>``, as ais_bench's
  ``--energy_consumption`` reads it: the ``Power Dissipation(W)`` line, which covers the whole card (every chip
  of a multi-chip card). Each reading is one ``npu-smi`` process, so readings come at most as often as it
  answers; the record gives the samples taken and the seconds they cover.

Which one: ``--power auto`` (the default) takes NVML on ``cuda``/``tensorrt`` devices, npu-smi on ``npu``
(acl) and ``cann`` devices, and nothing on the CPU or the null backend (``resolve``). Asked for by name
(``--power nvml``), a method that cannot run is an error before anything is timed (exit 3); under ``auto``
it is recorded in the summary as not measured, with the reason, and the run goes on.

The sampler runs only around the timed passes (after warm-up). The clock, the NVML module and the npu-smi
executable are parameters, so tests drive the readings themselves (``background=False``, ``sample()``).
"""

from __future__ import annotations

import abc
import importlib
import logging
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from jobs import devices, errors
from jobs.artifacts import records
from jobs.devices import npu_smi

log = logging.getLogger("ghostbench.power")

MODES = ("auto", "nvml", "npu-smi", "off")
DEFAULT_INTERVAL_MS = 50.0
NVML_DEVICES = ("cuda", "tensorrt")
"""Device kinds (``kind[:N]``) whose power NVML reads."""
NPU_SMI_DEVICES = ("npu", "cann")
"""Device kinds on an Ascend NPU: the acl backend's ``npu[:N]`` and ONNX Runtime's ``cann[:N]``."""
NVML_MISSING = "nvidia-ml-py is not installed (module pynvml); pip install 'ghostbench[gpu]'"
CUDA_VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES"
NPU_SMI_TIMEOUT_S = 10.0


class PowerUnavailable(errors.MissingDependency):
    """The method asked for cannot read this device's power here (library, tool or counter missing)."""


def resolve(mode: str | None, device: str) -> str:
    """The method ``mode`` means on ``device``: ``nvml``, ``npu-smi`` or ``off`` (``auto``/None by the device)."""
    if mode not in (None, "auto"):
        return mode
    kind = device.partition(":")[0]
    if kind in NVML_DEVICES:
        return "nvml"
    if kind in NPU_SMI_DEVICES:
        return "npu-smi"
    return "off"


def integrate(points: Sequence[tuple[float, float]], t0: float, t1: float) -> float:
    """Joules over ``[t0, t1]`` (s) of the power through ``points`` ((time s, watts), in time order): straight
    lines between readings, the first and last reading held before and after them."""
    if not points or t1 <= t0:
        return 0.0
    times = np.array([t0] + [t for t, _ in points if t0 < t < t1] + [t1])
    watts = np.interp(times, [t for t, _ in points], [w for _, w in points])
    return float(np.sum((watts[1:] + watts[:-1]) / 2 * np.diff(times)))


class PowerSampler(abc.ABC):
    """One device's power between ``start()`` and ``stop()``: a reading at start, one every ``interval_ms`` in
    a background thread, one at stop; the energy from the device's own counter where it has one
    (``read_energy_mj``), else integrated from the readings.

    With ``background=False`` no thread runs: the caller takes readings with ``sample()`` (tests, with a fake
    ``clock``). A reading that fails is counted, not raised; a sampler that read nothing returns a record
    that says so."""

    method: ClassVar[str] = ""
    scope: ClassVar[str] = ""
    """What the reading covers: ``board`` (a GPU board), ``card`` (an Ascend card, all its chips)."""

    def __init__(self, interval_ms: float = DEFAULT_INTERVAL_MS, clock: Callable[[], float] = time.perf_counter,
                 background: bool = True):
        self.interval_ms = float(interval_ms)
        self._clock = clock
        self._background = background
        self._lock = threading.Lock()
        self._points: list[tuple[float, float]] = []
        self._failed = 0
        self._first_error: str | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._t0: float | None = None
        self._e0: float | None = None

    # -- what an implementation provides --------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def source(self) -> str:
        """What is read, for the record (``NVML GPU 0 NVIDIA H200 (GPU-...)``, ``npu-smi info -t power -i 4``)."""

    @abc.abstractmethod
    def read_watts(self) -> float:
        """One reading of the device's power (W); raises ``PowerUnavailable`` when there is none."""

    def read_energy_mj(self) -> float | None:
        """The device's cumulative energy counter (mJ), or None where it has none."""
        return None

    def close(self) -> None:
        """Stops the thread if it still runs, and lets go of the library (idempotent)."""
        self._stop_thread()

    # -- the interface ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Takes the first reading and starts the thread; the measured window begins when this returns."""
        with self._lock:
            self._points, self._failed, self._first_error = [], 0, None
        self._stopping.clear()
        self.sample()
        self._e0 = self._energy()
        self._t0 = self._clock()
        if self._background:
            self._thread = threading.Thread(target=self._loop, name=f"power-{self.method}", daemon=True)
            self._thread.start()

    def sample(self) -> None:
        """Takes one reading, stamped at the middle of the call (an npu-smi process takes a while)."""
        ta = self._clock()
        try:
            watts = float(self.read_watts())
        except Exception as e:  # noqa: BLE001 - a failed reading is counted; the run goes on
            with self._lock:
                self._failed += 1
                self._first_error = self._first_error or (str(e) or type(e).__name__)
            return
        tb = self._clock()
        with self._lock:
            self._points.append(((ta + tb) / 2, watts))

    def stop(self) -> records.PowerRecord:
        """Ends the window, takes the last reading, and returns what was measured (``images`` 0: the caller
        sets them with ``PowerRecord.for_images``)."""
        if self._t0 is None:
            raise RuntimeError("PowerSampler.stop() before start()")
        t1 = self._clock()
        self._stop_thread()
        self.sample()
        e1 = self._energy()
        t0, self._t0 = self._t0, None
        with self._lock:
            points = sorted(self._points)
            failed, first_error = self._failed, self._first_error
        if not points:
            return records.PowerRecord.unavailable(
                self.method, f"no reading from {self.source}" + (f": {first_error}" if first_error else ""),
                source=self.source)
        seconds = t1 - t0
        if self._e0 is not None and e1 is not None and e1 >= self._e0:
            joules, energy = (e1 - self._e0) / 1000.0, "counter"
        else:
            joules, energy = integrate(points, t0, t1), "integrated"
        return records.PowerRecord(
            method=self.method, source=self.source, scope=self.scope, energy=energy, interval_ms=self.interval_ms,
            samples=len(points), failed_samples=failed, seconds=seconds,
            mean_watts=joules / seconds if seconds > 0 else points[0][1], max_watts=max(w for _, w in points),
            joules=joules, first_error=first_error)

    # -- the machinery ---------------------------------------------------------------------------------------

    def _loop(self) -> None:
        interval_s = self.interval_ms / 1000.0
        while not self._stopping.wait(interval_s):
            self.sample()

    def _stop_thread(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _energy(self) -> float | None:
        try:
            value = self.read_energy_mj()
        except Exception:  # noqa: BLE001 - no counter this time: the readings are integrated instead
            return None
        return None if value is None else float(value)


class UnavailableSampler(PowerSampler):
    """Stands in where ``auto`` chose a method that cannot run here: measures nothing, says why."""

    scope = ""

    def __init__(self, method: str, reason: str):
        super().__init__(background=False)
        self.method = method  # type: ignore[misc]
        self.reason = reason

    @property
    def source(self) -> str:
        return ""

    def read_watts(self) -> float:
        raise PowerUnavailable(self.reason)

    def start(self) -> None:
        self._t0 = self._clock()

    def stop(self) -> records.PowerRecord:
        return records.PowerRecord.unavailable(self.method, self.reason)


# -- NVML -------------------------------------------------------------------------------------------------------

def import_nvml() -> Any:
    try:
        return importlib.import_module("pynvml")
    except ImportError as e:
        raise PowerUnavailable(NVML_MISSING) from e


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def nvml_target(device: str, environ: Mapping[str, str]) -> tuple[int | None, str | None, str]:
    """``(NVML index, UUID, how)`` of the GPU ``device`` (``cuda:N``, ``tensorrt:N``) runs on. NVML counts every
    GPU of the machine (a container: those it was given); ``CUDA_VISIBLE_DEVICES`` renumbers them for CUDA, so
    its N-th entry (an index or a ``GPU-...`` UUID) names the GPU. Without it N is NVML's index, which assumes
    CUDA's order is NVML's (PCI bus order; ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` makes it so on mixed machines)."""
    n = devices.device_index(device)
    raw = (environ.get(CUDA_VISIBLE_DEVICES) or "").strip()
    if raw:
        entries = [e.strip() for e in raw.split(",") if e.strip()]
        if n < len(entries):
            entry = entries[n]
            if entry.isdigit():
                return int(entry), None, f"{CUDA_VISIBLE_DEVICES}={raw}, entry {n}"
            if entry.startswith(("GPU-", "MIG-")):
                return None, entry, f"{CUDA_VISIBLE_DEVICES}={raw}, entry {n}"
    return n, None, f"device {device!r}: NVML index {n}"


class NvmlSampler(PowerSampler):
    """An NVIDIA GPU's board power through NVML; the energy counter where the GPU has one."""

    method = "nvml"
    scope = "board"

    def __init__(self, index: int | None = 0, uuid: str | None = None, how: str = "", *, nvml: Any = None,
                 interval_ms: float = DEFAULT_INTERVAL_MS, clock: Callable[[], float] = time.perf_counter,
                 background: bool = True):
        """Opens NVML and the GPU, and takes a test reading: ``PowerUnavailable`` when any of it fails.
        ``nvml``: the ``pynvml`` module (default: imported)."""
        super().__init__(interval_ms, clock, background)
        self._nvml = nvml if nvml is not None else import_nvml()
        self._open = False
        try:
            self._nvml.nvmlInit()
            self._open = True
            handle = (self._nvml.nvmlDeviceGetHandleByUUID(uuid) if uuid is not None
                      else self._nvml.nvmlDeviceGetHandleByIndex(index))
            self._handle = handle
            name = _text(self._nvml.nvmlDeviceGetName(handle))
            gpu_uuid = _text(self._nvml.nvmlDeviceGetUUID(handle))
            self._nvml.nvmlDeviceGetPowerUsage(handle)
        except Exception as e:  # pynvml.NVMLError and its many subclasses
            self.close()
            what = f"GPU {uuid}" if uuid is not None else f"GPU {index}"
            raise PowerUnavailable(f"NVML cannot read the power of {what}: {_text(e) or type(e).__name__}") from e
        try:
            self._nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            self._counter = True
        except Exception:  # noqa: BLE001 - before Volta: no counter, the power readings are integrated
            self._counter = False
        self._source = (f"NVML GPU {index if uuid is None else uuid} {name} ({gpu_uuid})"
                        + (f"; {how}" if how else ""))

    @property
    def source(self) -> str:
        return self._source

    @property
    def has_energy_counter(self) -> bool:
        return self._counter

    def read_watts(self) -> float:
        return self._nvml.nvmlDeviceGetPowerUsage(self._handle) / 1000.0

    def read_energy_mj(self) -> float | None:
        return float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)) if self._counter else None

    def close(self) -> None:
        super().close()
        if self._open:
            self._open = False
            try:
                self._nvml.nvmlShutdown()
            except Exception as e:  # noqa: BLE001 - shutting down: nothing left to measure
                log.debug("nvmlShutdown: %s", e)


# -- npu-smi ------------------------------------------------------------------------------------------------------

_POWER_LINES = (re.compile(r"^\s*Power Dissipation\(W\)\s*:\s*(\S+)", re.MULTILINE),
                re.compile(r"^\s*NPU Real-time Power\(W\)\s*:\s*(\S+)", re.MULTILINE))


def parse_power(text: str) -> float | None:
    """Watts in ``npu-smi info -t power`` output: its ``Power Dissipation(W)`` line (the card), else a chip's
    ``NPU Real-time Power(W)``; a 310 chip's ``Rated Power Dissipation(W)`` is a rating, not a reading, and
    ``NA`` is no reading. None when there is none."""
    for pattern in _POWER_LINES:
        m = pattern.search(text)
        if m:
            try:
                return float(m.group(1))
            except ValueError:
                return None
    return None


def npu_target(device: str, backend_info: Mapping[str, Any], environ: Mapping[str, str],
               exe: str | None = None) -> tuple[int, str]:
    """``(NPU id, how)``: the ``-i`` of ``npu-smi info -t power`` for the chip this run uses. The acl backend's
    ``describe()`` has found its row already (``device_info.npu_id``); otherwise (``cann:N``) the chip is
    looked up in ``npu-smi info`` by its ``ASCEND_VISIBLE_DEVICES`` id or ACL device id (``jobs.devices.npu_smi``).
    ``PowerUnavailable`` when npu-smi cannot be run."""
    info = backend_info.get("device_info") or {}
    if info.get("npu_id") is not None:
        return int(info["npu_id"]), f"npu-smi info row, {info.get('chip_found_by') or 'found by the backend'}"
    device_id, physical = npu_smi.chip_ids(device, backend_info, environ)
    try:
        chips = npu_smi.parse_info(npu_smi.run_info(exe)).chips
    except errors.BadInput as e:
        raise PowerUnavailable(str(e)) from e
    chip, how = npu_smi.find_chip(chips, device_id, physical)
    if chip is not None:
        return chip.npu, f"npu-smi info row, {how}"
    wanted = physical if physical is not None else device_id
    return int(wanted), f"{how}; assumed NPU id {wanted}"


class NpuSmiSampler(PowerSampler):
    """An Ascend card's power through ``npu-smi info -t power -i <NPU id>`` (ais_bench's reading)."""

    method = "npu-smi"
    scope = "card"

    def __init__(self, npu_id: int, how: str = "", *, exe: str | None = None, timeout_s: float = NPU_SMI_TIMEOUT_S,
                 interval_ms: float = DEFAULT_INTERVAL_MS, clock: Callable[[], float] = time.perf_counter,
                 background: bool = True):
        """Finds npu-smi and takes a test reading: ``PowerUnavailable`` when it cannot."""
        super().__init__(interval_ms, clock, background)
        found = exe or shutil.which(npu_smi.NPU_SMI)
        if found is None:
            raise PowerUnavailable("npu-smi is not on PATH (it comes with the Ascend driver)")
        self._argv = [found, "info", "-t", "power", "-i", str(npu_id)]
        self._timeout_s = timeout_s
        self._source = f"npu-smi info -t power -i {npu_id}" + (f" ({how})" if how else "")
        self.read_watts()

    @property
    def source(self) -> str:
        return self._source

    def read_watts(self) -> float:
        try:
            r = subprocess.run(self._argv, capture_output=True, text=True, timeout=self._timeout_s,
                               stdin=subprocess.DEVNULL, check=False, errors="replace")
        except subprocess.TimeoutExpired as e:
            raise PowerUnavailable(f"{' '.join(self._argv[1:])} did not answer in {self._timeout_s:g} s") from e
        except OSError as e:
            raise PowerUnavailable(f"cannot run npu-smi ({e.strerror})") from e
        if r.returncode != 0:
            first = (r.stderr or r.stdout).strip().splitlines()[:1]
            raise PowerUnavailable(f"npu-smi {' '.join(self._argv[1:])} failed (exit {r.returncode})"
                                   + (f": {first[0]}" if first else ""))
        watts = parse_power(r.stdout)
        if watts is None:
            raise PowerUnavailable(f"npu-smi {' '.join(self._argv[1:])}: no 'Power Dissipation(W)' reading")
        return watts


# -- choosing one -----------------------------------------------------------------------------------------------

def sampler_for(mode: str | None, device: str, interval_ms: float | None,
                backend_info: Callable[[], Mapping[str, Any]] = dict, environ: Mapping[str, str] | None = None,
                *, nvml: Any = None, npu_smi_exe: str | None = None) -> PowerSampler | None:
    """The sampler for ``--power mode`` on ``device``, opened (a test reading taken); None when off.

    Asked for by name, a method that cannot run raises ``PowerUnavailable`` (exit 3, before anything is timed);
    under ``auto`` it becomes an ``UnavailableSampler`` whose record says why. ``backend_info`` is called only
    where the method needs the chip (npu-smi: the acl backend's ``describe()``)."""
    method = resolve(mode, device)
    if method == "off":
        return None
    environ = os.environ if environ is None else environ
    interval = DEFAULT_INTERVAL_MS if interval_ms is None else float(interval_ms)
    try:
        if method == "nvml":
            index, uuid, how = nvml_target(device, environ)
            return NvmlSampler(index, uuid, how, nvml=nvml, interval_ms=interval)
        if method == "npu-smi":
            npu_id, how = npu_target(device, backend_info(), environ, npu_smi_exe)
            return NpuSmiSampler(npu_id, how, exe=npu_smi_exe, interval_ms=interval)
    except PowerUnavailable as e:
        if mode not in (None, "auto"):
            raise PowerUnavailable(f"--power {mode}: {e}") from e
        log.warning("infer: power not measured (%s on %s): %s", method, device, e)
        return UnavailableSampler(method, str(e))
    raise errors.BadInput(f"--power {mode!r}: expected one of {', '.join(MODES)}")
