"""A child process that ends with the process that started it (Linux ``PR_SET_PDEATHSIG``, prctl(2)).

A stage started by a controller, and each device process of a run on several, must not outlive what started it:
killed with SIGKILL, a parent runs no clean-up, and an orphan would go on holding a device or a core.
"""

from __future__ import annotations

import os
import signal

from jobs.devices import kernel


def die_with(parent: int) -> None:
    """Have the kernel send this process SIGTERM when ``parent`` (pid) ends, and end it now if ``parent`` is gone
    already (it died before the request: nobody would signal). Nothing outside Linux."""
    if not kernel.prctl(kernel.PR_SET_PDEATHSIG, int(signal.SIGTERM)):
        return
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)
