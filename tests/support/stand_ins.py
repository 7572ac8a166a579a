"""Stand-in executables for device tools: ``write_tool`` puts a Python script on disk as an executable, and
``NPU_SMI_INFO`` is ``npu-smi info`` as the Ascend driver prints it for one Ascend 310P3."""

from __future__ import annotations

import pathlib
import stat
import sys

NPU_SMI_INFO = """\
+--------------------------------------------------------------------------------------------------------+
| npu-smi 23.0.rc2                                 Version: 23.0.rc2                                     |
+-------------------------------+-----------------+------------------------------------------------------+
| NPU     Name                  | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |
| Chip    Device                | Bus-Id          | AICore(%)    Memory-Usage(MB)                        |
+===============================+=================+======================================================+
| 0       310P3                 | OK              | NA           47                0     / 0             |
| 0       0                     | 0000:3B:00.0    | 0            1684 / 21527                            |
+===============================+=================+======================================================+
"""


def write_tool(path: pathlib.Path, script: str) -> pathlib.Path:
    """An executable ``path`` that runs ``script`` with this interpreter; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{sys.executable}\n{script}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path
