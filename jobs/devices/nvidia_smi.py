"""What ``nvidia-smi`` says about a GPU: its name, memory, the driver and the CUDA version the driver supports.

Recorded in an infer summary's ``backend_info.device_info`` for runs on ``cuda``/``tensorrt``, so a figure
names the GPU and driver it was measured on. Reading it never fails a run: without ``nvidia-smi`` (or when
it fails) the record says why.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

QUERY = ("index", "name", "memory.total", "driver_version")


def parse_query(text: str) -> list[dict[str, str]]:
    """Rows of ``nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader``."""
    rows = []
    for line in text.strip().splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) == len(QUERY):
            rows.append(dict(zip(QUERY, cells)))
    return rows


def parse_cuda_version(text: str) -> str | None:
    """``CUDA Version: 13.0`` from plain ``nvidia-smi`` output (the newest CUDA the driver supports)."""
    m = re.search(r"CUDA Version:\s*([0-9.]+)", text)
    return m.group(1) if m else None


def device_info(index: int, run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
                timeout_s: float = 20.0) -> dict[str, Any]:
    """The GPU ``index`` as nvidia-smi describes it, or ``{"error": why}``."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return {"error": "nvidia-smi is not on PATH"}
    try:
        q = run([exe, f"--query-gpu={','.join(QUERY)}", "--format=csv,noheader"], capture_output=True, text=True,
                timeout=timeout_s, check=False, stdin=subprocess.DEVNULL)
        plain = run([exe], capture_output=True, text=True, timeout=timeout_s, check=False,
                    stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as e:
        return {"error": f"nvidia-smi could not run ({e})"}
    if q.returncode != 0:
        return {"error": f"nvidia-smi failed (exit {q.returncode}): {(q.stderr or q.stdout).strip()[:200]}"}
    rows = [r for r in parse_query(q.stdout) if r.get("index") == str(index)]
    if not rows:
        return {"error": f"nvidia-smi lists no GPU {index}"}
    return {**rows[0], "cuda_version": parse_cuda_version(plain.stdout), "source": "nvidia-smi"}
