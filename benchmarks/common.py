"""What every benchmark shares: a work folder, repetition with median and spread, the machine."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import platform
import statistics
import tempfile
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for pkg in ("numpy", "onnxruntime", "onnx", "torch", "pillow", "opencv-python-headless", "boto3"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "versions": versions}


def repeat(fn: Callable[[], float], times: int) -> dict[str, float]:
    values = [fn() for _ in range(times)]
    return summarize(values)


def summarize(values: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


@contextlib.contextmanager
def workdir(path: str | None) -> Iterator[pathlib.Path]:
    """The given folder (kept: its images, exports and engines are reused next time), or a temporary
    one removed at the end (the memory benchmark alone writes several GB)."""
    if path:
        p = pathlib.Path(path)
        p.mkdir(parents=True, exist_ok=True)
        yield p
        return
    with tempfile.TemporaryDirectory(prefix="ghostbench-bench-") as tmp:
        yield pathlib.Path(tmp)


def write_results(path: pathlib.Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=1) + "\n")


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows])
