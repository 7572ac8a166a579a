"""Linux's per-process controls ghostbench asks the kernel for (prctl(2), ``<linux/prctl.h>``).

- ``PR_SET_PDEATHSIG``: a stage or device process ends with the process that started it
  (``jobs.harness.lifetime``);
- ``PR_SET_TIMERSLACK``: the null backend's stand-in device ends its waits on time (``jobs.backends.null``).

Outside Linux, or where the C library has no ``prctl``, each request is a no-op that returns False.
"""

from __future__ import annotations

import ctypes
import sys

PR_SET_PDEATHSIG = 1
PR_SET_TIMERSLACK = 29
PR_GET_TIMERSLACK = 30


def prctl(option: int, arg: int) -> bool:
    """``prctl(option, arg, 0, 0, 0)`` for the calling thread; whether the kernel took it (False: not Linux, no
    ``prctl`` in the C library, or the kernel refused)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        call = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    call.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    call.restype = ctypes.c_int
    return call(option, arg, 0, 0, 0) != -1
