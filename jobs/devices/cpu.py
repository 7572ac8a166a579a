"""How many CPUs this process may really use: the container's CPU limit, not the node's core count.

ONNX Runtime and PyTorch size their thread pools from the cores the process may run on
(``sched_getaffinity``), which a container's CPU limit does not restrict: a pod limited to 4 CPUs on a
64-core node starts 64 threads, and the kernel's CFS quota then throttles them in every period
(microsoft/onnxruntime#29510). ``available_cpus()`` takes the smallest of these bounds:

1. ``CPU_LIMIT`` (``CPU_LIMIT_ENV``): the container's ``limits.cpu`` in whole CPUs, rounded up, as the
   Kubernetes downward API exposes it (``resourceFieldRef: {containerName: stage, resource: limits.cpu,
   divisor: "1"}``); ``controller.kubernetes.manifests`` sets it on every step container that has a CPU limit. It is
   set by Kubernetes, never by hand; without a limit the downward API would give the node's allocatable
   CPUs, which is why it is one bound among the others and not taken alone.
2. cgroup v2: ``/sys/fs/cgroup/cpu.max`` (``"400000 100000"``: quota and period in microseconds; ``max``:
   no quota) -> ceil(quota / period).
3. cgroup v1: ``/sys/fs/cgroup/cpu/cpu.cfs_quota_us`` and ``cpu.cfs_period_us`` (quota ``-1``: none).
4. ``os.sched_getaffinity(0)``: the cores the process may run on (a cpuset narrows it), else
   ``os.cpu_count()``.

The budget's ``source`` names the bound that won (the first of them on a tie), e.g. ``cgroup v2 cpu.max
400000/100000``. Users: the export stage (``torch.set_num_threads`` and its parity session) and the
ONNX Runtime backend, whose ``intra_op_threads: 0`` (ONNX Runtime's "choose for me") becomes
``available_cpus().count`` for the CPU execution provider. Parsing is pure (``parse_cpu_max``,
``parse_cfs``, ``parse_cpu_limit``) and the paths are parameters, so tests use fixture files.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import pathlib
from collections.abc import Mapping

from jobs import errors

log = logging.getLogger("ghostbench")

CPU_LIMIT_ENV = "CPU_LIMIT"
"""The downward API's ``limits.cpu`` (divisor 1) of the step container, set by ``controller.kubernetes.manifests``."""
CGROUP_V2_CPU_MAX = pathlib.Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_CPU_DIR = pathlib.Path("/sys/fs/cgroup/cpu")


@dataclasses.dataclass(frozen=True)
class CpuBudget:
    """How many threads to run: ``count`` CPUs, and the bound that said so."""

    count: int
    """Whole CPUs, at least 1."""
    source: str
    """``downward API limits.cpu (CPU_LIMIT=4)``, ``cgroup v2 cpu.max 400000/100000``, ``cgroup v1 cfs_quota
    400000/100000``, ``sched_getaffinity`` or ``os.cpu_count``."""

    def to_dict(self) -> dict[str, object]:
        return {"count": self.count, "source": self.source}


def quota_cpus(quota: int, period: int) -> int:
    """Whole CPUs a CFS quota allows: ceil(quota / period), at least 1 (half a CPU still runs one thread)."""
    return max(1, math.ceil(quota / period))


def parse_cpu_max(text: str) -> tuple[int, int] | None:
    """``(quota, period)`` from cgroup v2's ``cpu.max`` (``"400000 100000"``); None for ``"max ..."`` (no quota).
    ``ValueError`` for anything else."""
    parts = text.split()
    if len(parts) != 2 or not parts[1].isdigit() or not (parts[0] == "max" or parts[0].isdigit()):
        raise ValueError(f"expected 'QUOTA PERIOD' or 'max PERIOD', got {text.strip()!r}")
    if parts[0] == "max":
        return None
    quota, period = int(parts[0]), int(parts[1])
    if quota <= 0 or period <= 0:
        raise ValueError(f"expected a positive quota and period, got {text.strip()!r}")
    return quota, period


def parse_cfs(quota_text: str, period_text: str) -> tuple[int, int] | None:
    """``(quota, period)`` from cgroup v1's ``cpu.cfs_quota_us`` and ``cpu.cfs_period_us``; None for quota -1
    (no quota). ``ValueError`` for anything else."""
    quota, period = int(quota_text.strip()), int(period_text.strip())
    if quota < 0:
        return None
    if quota == 0 or period <= 0:
        raise ValueError(f"expected a positive quota and period, got {quota}/{period}")
    return quota, period


def parse_cpu_limit(value: str) -> int:
    """Whole CPUs from the downward API's ``limits.cpu`` with divisor 1 (Kubernetes rounds it up: ``"4"``).
    ``ValueError`` for anything but an integer >= 1."""
    text = value.strip()
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"expected a whole number of CPUs >= 1, got {value!r}")
    return int(text)


def _read(path: pathlib.Path) -> str | None:
    try:
        return path.read_text()
    except OSError:  # no such file (another cgroup version, not Linux) or not readable
        return None


def _affinity() -> tuple[int, str]:
    try:
        return len(os.sched_getaffinity(0)), "sched_getaffinity"
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1, "os.cpu_count"


def available_cpus(environ: Mapping[str, str] | None = None, cpu_max: pathlib.Path = CGROUP_V2_CPU_MAX,
                   cfs_dir: pathlib.Path = CGROUP_V1_CPU_DIR, affinity: int | None = None) -> CpuBudget:
    """The CPUs this process may use: the smallest of the bounds in the module's docstring.

    ``environ`` (default ``os.environ``) is where ``CPU_LIMIT`` is read; ``cpu_max`` and ``cfs_dir`` are the
    cgroup v2 file and the cgroup v1 directory; ``affinity`` overrides the affinity count (tests).
    A malformed ``CPU_LIMIT`` is ``errors.BadInput`` (one line); a cgroup file that cannot be parsed is
    logged and skipped. For the ONNX Runtime backend: ``intra_op_threads: 0`` should become ``count`` for
    the CPU execution provider (ONNX Runtime's own default would start one thread per core of the node).
    """
    environ = os.environ if environ is None else environ
    bounds: list[tuple[int, str]] = []
    raw = environ.get(CPU_LIMIT_ENV)
    if raw is not None and raw.strip():
        try:
            bounds.append((parse_cpu_limit(raw), f"downward API limits.cpu ({CPU_LIMIT_ENV}={raw.strip()})"))
        except ValueError as e:
            raise errors.BadInput(f"{CPU_LIMIT_ENV}={raw!r}: {e} (the downward API's limits.cpu with divisor "
                                  "1; unset it outside Kubernetes)") from e
    text = _read(cpu_max)
    if text is not None:
        try:
            q = parse_cpu_max(text)
        except ValueError as e:
            log.warning("cpu: ignoring %s: %s", cpu_max, e)
        else:
            if q is not None:
                bounds.append((quota_cpus(*q), f"cgroup v2 cpu.max {q[0]}/{q[1]}"))
    quota_text, period_text = _read(cfs_dir / "cpu.cfs_quota_us"), _read(cfs_dir / "cpu.cfs_period_us")
    if quota_text is not None and period_text is not None:
        try:
            q = parse_cfs(quota_text, period_text)
        except ValueError as e:
            log.warning("cpu: ignoring %s: %s", cfs_dir / "cpu.cfs_quota_us", e)
        else:
            if q is not None:
                bounds.append((quota_cpus(*q), f"cgroup v1 cfs_quota {q[0]}/{q[1]}"))
    bounds.append((affinity, "sched_getaffinity") if affinity is not None else _affinity())
    count, source = min(bounds, key=lambda b: b[0])  # min keeps the first of equals
    return CpuBudget(count=max(1, count), source=source)
