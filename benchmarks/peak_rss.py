"""``python -m benchmarks.peak_rss OUT MODULE [ARG ...]``: run a module as ``python -m`` would, then write its peak RSS.

The peak is ``VmHWM`` from ``/proc/self/status`` (KiB) after the module returns: the high-water
mark of this process's own address space. ``ru_maxrss`` of a child is not used because on Linux
it also carries the RSS of the process it was forked from (a benchmark runner holding ONNX
Runtime and torch) when that was larger.
"""

from __future__ import annotations

import pathlib
import runpy
import sys


def vm_hwm_kib() -> int:
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def main() -> int:
    out, module, *args = sys.argv[1:]
    sys.argv = [module, *args]
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    pathlib.Path(out).write_text(f"{vm_hwm_kib()}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
