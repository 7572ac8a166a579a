"""What else ran while a run was timed: the host's and the device's noise, read for ``records.Noise``.

- **Host** (Linux ``/proc``, ``/sys``): CPU time taken by other processes during the timed passes (the whole
  machine's busy time from ``/proc/stat`` minus this process's from ``/proc/self/stat``), the hypervisor's
  steal time, the load average, the CPU frequency range (``cpufreq/scaling_cur_freq``, where readable) and
  this process's thread count. The run is marked busy when other processes took more than ``BUSY_SHARE``
  of the CPU time the window had, or steal did (``records.BUSY_SHARE``).
- **NVIDIA GPU** (NVML, ``pynvml``): other processes on the device and the clock-throttle reasons, before
  and after the timed passes.
- **Ascend NPU** (``npu-smi info``): the chip's AI Core utilization before the run (the seed checks that the
  device is idle first), and other processes on it.

Nothing here fails a run: what cannot be read is recorded as unknown (None) with the reason.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import pathlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from jobs import errors
from jobs.artifacts import records
from jobs.devices import npu_smi, power

_BUSY_FIELDS = (0, 1, 2, 5, 6)  # user, nice, system, irq, softirq (/proc/stat, in USER_HZ ticks)
_STEAL_FIELD = 7

# NVML's clock-event (throttle) reason bits (nvml.h: nvmlClocksEventReason* / nvmlClocksThrottleReason*) that
# mean the clocks were held down for a reason other than the GPU being idle (0x1) or the application clocks
# being set (0x2, usual when benchmarking).
THROTTLE_REASONS = {0x4: "sw_power_cap", 0x8: "hw_slowdown", 0x10: "sync_boost", 0x20: "sw_thermal_slowdown",
                    0x40: "hw_thermal_slowdown", 0x80: "hw_power_brake_slowdown", 0x100: "display_clock_setting"}


@dataclasses.dataclass(frozen=True)
class CpuTimes:
    """One reading of the machine's and this process's CPU time, in seconds."""

    clock: float
    busy: float
    """All CPUs' busy time since boot."""
    steal: float
    own: float
    """This process's user + system time (all its threads)."""
    cpus: int


def _ticks() -> float:
    return float(os.sysconf("SC_CLK_TCK"))


def read_cpu_times(proc: pathlib.Path = pathlib.Path("/proc"), clock: Callable[[], float] = time.monotonic,
                   also_own: Sequence[int] = ()) -> CpuTimes | None:
    """The CPU times now (None where ``/proc`` cannot tell: not Linux). ``also_own``: processes whose CPU time is
    the run's own too (the sibling processes of a run on several devices), as far as they still run."""
    try:
        lines = (proc / "stat").read_text().splitlines()
        own_fields = (proc / "self" / "stat").read_text().rsplit(")", 1)[1].split()
        hz = _ticks()
        siblings = 0.0
        for pid in also_own:
            try:
                fields = (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
                siblings += (float(fields[11]) + float(fields[12])) / hz
            except (OSError, ValueError, IndexError):
                continue  # (ended: its time is no longer anyone's)
        total = next((line.split()[1:] for line in lines if line.startswith("cpu ")), None)
        if total is None:
            return None
        values = [float(v) for v in total]
        cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
        steal = values[_STEAL_FIELD] if len(values) > _STEAL_FIELD else 0.0
        own = (float(own_fields[11]) + float(own_fields[12])) / hz + siblings  # utime, stime (fields 14, 15 of stat)
    except (OSError, ValueError, IndexError):  # not Linux, or a /proc this reader does not know: unknown
        return None
    return CpuTimes(clock(), sum(values[i] for i in _BUSY_FIELDS if i < len(values)) / hz, steal / hz, own,
                    max(cpus, 1))


def sibling_pids(proc: pathlib.Path = pathlib.Path("/proc")) -> tuple[int, ...]:
    """The other processes with this process's parent (``/proc/<pid>/stat`` field 4), e.g. the other devices' processes
    of a run on several; empty where ``/proc`` cannot tell."""
    me, parent, found = os.getpid(), os.getppid(), []
    try:
        entries = [p for p in proc.iterdir() if p.name.isdigit() and int(p.name) != me]
    except OSError:
        return ()
    for entry in entries:
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return tuple(found)


def _load_average(proc: pathlib.Path) -> float | None:
    try:
        return float((proc / "loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _threads(proc: pathlib.Path) -> int | None:
    try:
        for line in (proc / "self" / "status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def cpu_mhz(sys_cpu: str = "/sys/devices/system/cpu") -> list[float]:
    """Each CPU's current frequency (MHz) where cpufreq exposes it; empty in most virtual machines."""
    found = []
    for path in sorted(glob.glob(f"{sys_cpu}/cpu[0-9]*/cpufreq/scaling_cur_freq")):
        try:
            found.append(float(pathlib.Path(path).read_text()) / 1000.0)
        except (OSError, ValueError):
            continue
    return found


class HostSampler:
    """Reads the host at the start and the end of the timed passes (two readings: nothing runs in between). What
    cannot be read (not Linux, an unknown ``/proc``) is None in the record."""

    def __init__(self, proc: pathlib.Path = pathlib.Path("/proc"), sys_cpu: str = "/sys/devices/system/cpu",
                 clock: Callable[[], float] = time.monotonic, siblings: bool = False):
        """``siblings``: this process is one device of a run on several (``jobs.harness.fanout``): the processes
        that share its parent are the run's own, not other load."""
        self._proc, self._sys_cpu, self._clock = proc, sys_cpu, clock
        self._siblings: tuple[int, ...] = sibling_pids(proc) if siblings else ()
        self._start: CpuTimes | None = None
        self._t0 = 0.0
        self._load0: float | None = None
        self._mhz0: list[float] = []

    def start(self) -> None:
        self._t0 = self._clock()
        self._start = read_cpu_times(self._proc, self._clock, self._siblings)
        self._load0 = _load_average(self._proc)
        self._mhz0 = cpu_mhz(self._sys_cpu)

    def stop(self) -> records.HostNoise:
        end = read_cpu_times(self._proc, self._clock, self._siblings)
        seconds = self._clock() - self._t0
        mhz = self._mhz0 + cpu_mhz(self._sys_cpu)
        common = {"load_1m": (self._load0, _load_average(self._proc)),
                  "cpu_mhz": (min(mhz), max(mhz)) if mhz else None, "threads": _threads(self._proc)}
        if self._start is None or end is None:
            return records.HostNoise(seconds, os.cpu_count() or 1, None, None, **common)
        other = (end.busy - self._start.busy) - (end.own - self._start.own)
        return records.HostNoise(seconds, end.cpus, other, end.steal - self._start.steal, **common)


def throttle_names(bits: int) -> tuple[str, ...]:
    """The names of the NVML clock-event reason bits that mean the clocks were held down."""
    return tuple(name for bit, name in sorted(THROTTLE_REASONS.items()) if bits & bit)


class NvmlNoise:
    """Other processes and throttle reasons of one GPU, read through NVML before and after the timed passes."""

    def __init__(self, nvml: Any, handle: Any, source: str, own_pid: int | None = None):
        self._nvml, self._handle, self._source = nvml, handle, source
        self._own = os.getpid() if own_pid is None else own_pid
        self._pids: set[int] = set()
        self._reasons: set[str] = set()
        self._util: float | None = None
        self._error: str | None = None

    def _read(self) -> None:
        try:
            for p in self._nvml.nvmlDeviceGetComputeRunningProcesses(self._handle):
                if p.pid != self._own:
                    self._pids.add(int(p.pid))
            read = getattr(self._nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
                self._nvml.nvmlDeviceGetCurrentClocksThrottleReasons  # the older name
            bits = int(read(self._handle))
            self._reasons.update(throttle_names(bits))
        except Exception as e:  # noqa: BLE001 - pynvml.NVMLError and its subclasses: recorded, never fatal
            self._error = self._error or f"{type(e).__name__}: {e}"

    def start(self) -> None:
        try:
            self._util = float(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)
        except Exception as e:  # noqa: BLE001
            self._error = f"{type(e).__name__}: {e}"
        self._read()

    def stop(self) -> records.DeviceNoise:
        self._read()
        return records.DeviceNoise("gpu", self._source, tuple(sorted(self._pids)), self._util, tuple(sorted(self._reasons)),
                           self._error)




class DeviceWatch(Protocol):
    """Reads an accelerator before (``start``) and after (``stop``) the timed window."""

    def start(self) -> None: ...

    def stop(self) -> records.DeviceNoise: ...


class Unreadable:
    """A device that could not be watched: the record says why."""

    def __init__(self, kind: str, source: str, reason: str):
        self._noise = records.DeviceNoise(kind, source, error=reason)

    def start(self) -> None:
        pass

    def stop(self) -> records.DeviceNoise:
        return self._noise


class NpuSmiNoise:
    """One Ascend chip through ``npu-smi info``: its AI Core utilization before the run, and the other processes
    on it before and after."""

    def __init__(self, device_id: int, physical_id: int | None, exe: str | None = None,
                 own_pid: int | None = None):
        self._device_id, self._physical_id, self._exe = device_id, physical_id, exe
        self._own = os.getpid() if own_pid is None else own_pid
        self._pids: set[int] = set()
        self._util: float | None = None
        self._error: str | None = None
        self._source = "npu-smi info"

    def _read(self, first: bool) -> None:
        try:
            info = npu_smi.parse_info(npu_smi.run_info(self._exe))
        except Exception as e:  # noqa: BLE001 - npu-smi missing, failing or printing what we cannot read: recorded
            self._error = self._error or (str(e) if isinstance(e, errors.BadInput) else f"{type(e).__name__}: {e}")
            return
        chip, how = npu_smi.find_chip(info.chips, self._device_id, self._physical_id)
        if chip is None:
            self._error = self._error or f"npu-smi info: {how}"
            return
        self._source = f"npu-smi info, NPU {chip.npu} chip {chip.chip} ({how})"
        if first:
            self._util = chip.aicore_percent
        self._pids |= {pid for npu, c, pid in info.processes
                       if npu == chip.npu and (c is None or c == chip.chip) and pid != self._own}

    def start(self) -> None:
        self._read(first=True)

    def stop(self) -> records.DeviceNoise:
        self._read(first=False)
        return records.DeviceNoise("npu", self._source, tuple(sorted(self._pids)), self._util, None, self._error)


def watch_device(device: str, backend_info: Mapping[str, Any], environ: Mapping[str, str] = os.environ,
                 nvml: Any = None, npu_smi_exe: str | None = None) -> DeviceWatch | None:
    """The watcher for the accelerator ``device`` runs on (None on the CPU, or for a stand-in device).
    ``backend_info``: the backend's ``describe()`` (the ACL device and its physical id); ``nvml``: the ``pynvml``
    module (default: imported; without it the record says so)."""
    kind = device.partition(":")[0]
    if kind in ("cuda", "tensorrt"):
        index, uuid, how = power.nvml_target(device, environ)
        source = f"NVML GPU {uuid or index} ({how})"
        try:
            nvml = nvml if nvml is not None else power.import_nvml()
            nvml.nvmlInit()
            handle = nvml.nvmlDeviceGetHandleByUUID(uuid) if uuid is not None else nvml.nvmlDeviceGetHandleByIndex(index)
        except Exception as e:  # noqa: BLE001 - PowerUnavailable (no pynvml) or NVMLError: recorded, never fatal
            return Unreadable("gpu", source, f"{type(e).__name__}: {e}")
        return NvmlNoise(nvml, handle, source)
    if kind in ("npu", "cann"):
        return NpuSmiNoise(*npu_smi.chip_ids(device, backend_info, environ), npu_smi_exe)
    return None
