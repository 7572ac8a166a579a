"""Where a result was measured: date, host, library versions and the ghostbench revision.

Recorded in every ``summary.json`` (``provenance``) beside the backend's own account of the device
(``backend_info``: provider or chip, driver, CUDA/CANN versions where the backend can tell), so a figure
can always be traced to the machine and software that produced it.
"""

from __future__ import annotations

import datetime
import functools
import os
import pathlib
import platform
import subprocess
from typing import Any

import numpy as np

import jobs

_REPO = pathlib.Path(jobs.__file__).resolve().parents[1]  # the checkout holding the jobs package, wherever this module moves


def cpu_model(cpuinfo: pathlib.Path = pathlib.Path("/proc/cpuinfo")) -> str:
    """The host CPU's model name (``/proc/cpuinfo``), else ``platform.processor()``."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "cpu model", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def revision() -> str | None:
    """The git commit ghostbench runs from (``+dirty`` with local changes); None outside a git checkout
    (an installed image: then ``ghostbench_version`` is what identifies it)."""
    if not (_REPO / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(_REPO), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True, stdin=subprocess.DEVNULL).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(_REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True,
                               stdin=subprocess.DEVNULL).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def collect() -> dict[str, Any]:
    """The host side of a measurement (the device side is the backend's ``describe()``)."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "ghostbench_version": jobs.__version__,
        "ghostbench_revision": revision(),
    }
