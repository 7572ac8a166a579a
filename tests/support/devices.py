"""Workers for ``jobs.harness.fanout`` tests (module-level, so that a spawned process can import them), and
``npu-smi info`` tables of multi-chip cards: an Atlas 300I (one NPU id, four Ascend 310 chips) and an Atlas 300I Duo
(one NPU id, two Ascend 310P3 chips, each its own device id)."""

from __future__ import annotations

import os
import pathlib
import threading

from jobs import errors

NPU_SMI_ATLAS_300I = """\
+------------------------------------------------------------------------------+
| npu-smi 20.2.0                       Version: 20.2.0                         |
+-------------------+-----------------+----------------------------------------+
| NPU     Name      | Health          | Power(W)          Temp(C)              |
| Chip    Device    | Bus-Id          | AICore(%)         Memory-Usage(MB)     |
+===================+=================+========================================+
| 1       310       | OK              | 12.8              45                   |
| 0       0         | 0000:05:00.0    | 0                 2621 / 8192          |
+===================+=================+========================================+
| 1       310       | OK              | 12.8              46                   |
| 1       1         | 0000:06:00.0    | 0                 2621 / 8192          |
+===================+=================+========================================+
| 1       310       | OK              | 12.8              44                   |
| 2       2         | 0000:07:00.0    | 0                 2621 / 8192          |
+===================+=================+========================================+
| 1       310       | OK              | 12.8              47                   |
| 3       3         | 0000:08:00.0    | 0                 2621 / 8192          |
+===================+=================+========================================+
"""

NPU_SMI_DUO = """\
+--------------------------------------------------------------------------------------------------------+
| npu-smi 23.0.rc3                                 Version: 23.0.rc3                                     |
+-------------------------------+-----------------+------------------------------------------------------+
| NPU     Name                  | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |
| Chip    Device                | Bus-Id          | AICore(%)    Memory-Usage(MB)                        |
+===============================+=================+======================================================+
| 8       310P3                 | OK              | NA           45                0     / 0             |
| 0       0                     | 0000:82:00.0    | 0            1694 / 44280                            |
+===============================+=================+======================================================+
| 8       310P3                 | OK              | NA           44                0     / 0             |
| 1       1                     | 0000:82:00.0    | 0            1583 / 43693                            |
+===============================+=================+======================================================+
"""

NPU_SMI_TWO_DUOS = NPU_SMI_DUO + """\
| 9       310P3                 | OK              | NA           46                0     / 0             |
| 0       2                     | 0000:83:00.0    | 0            1694 / 44280                            |
+===============================+=================+======================================================+
| 9       310P3                 | OK              | NA           43                0     / 0             |
| 1       3                     | 0000:83:00.0    | 0            1583 / 43693                            |
+===============================+=================+======================================================+
"""
"""Two Atlas 300I Duo cards on one node: NPU ids 8 and 9, device ids 0-1 and 2-3."""


def passes_gate(index, gate, value):
    """Passes the gate twice (two repetitions) and returns what it saw."""
    gate()
    gate()
    return {"index": index, "value": value, "together": gate.together, "waits": gate.waits}


def fails_before_gate(index, gate, bad):
    """Index ``bad`` fails before its first gate (bad input); the others wait there."""
    if index == bad:
        raise errors.BadInput(f"worker {index} cannot start")
    gate()
    return {"index": index, "together": gate.together}


def skips_gate(index, gate):
    """Index 0 waits at the gate, index 1 never comes: index 0 starts alone when the gate times out."""
    if index == 0:
        gate()
    return {"index": index, "together": gate.together if index == 0 else True}


def dies_before_gate(index, gate, bad, mark):
    """Index ``bad``'s process dies without a word (as one killed would); the others wait at the gate and, if it
    ever lets them through, write ``mark`` (a path): a run whose gate was aborted writes nothing."""
    if index == bad:
        os._exit(9)
    gate()
    pathlib.Path(mark).write_text(f"worker {index} went on after the gate")
    return {"index": index}


def prints_pid_and_waits(index, gate):
    """Prints its process id on stdout, then waits for ever (until it is ended from outside)."""
    print(os.getpid(), flush=True)
    threading.Event().wait()
