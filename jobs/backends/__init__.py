"""Inference backends behind one interface, chosen by name from an explicit registry.

Each backend lives in its own folder (``config.py`` for its options, checked without a device;
``backend.py`` for the implementation, imported only when asked for, so a pod installs only what it runs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jobs import errors, registry
from jobs.backends.base import Backend

REGISTRY: registry.Registry[type[Backend]] = registry.Registry("backend", {
    "onnxruntime": registry.Plugin("jobs.backends.onnxruntime.backend:OnnxRuntimeBackend",
                                   "jobs.backends.onnxruntime.config:OnnxRuntimeConfig", extra="infer"),
    "null": registry.Plugin("jobs.backends.null.backend:NullBackend", "jobs.backends.null.config:NullConfig"),
    # aclruntime is imported when the backend opens (it ships with ais_bench, not on PyPI).
    "acl": registry.Plugin("jobs.backends.acl.backend:AclBackend", "jobs.backends.acl.config:AclConfig"),
})


RUNS_ON = {"cpu": "cpu", "cuda": "gpu", "tensorrt": "gpu", "cann": "npu", "npu": "npu"}
"""What a backend's device name (before ``:N``) runs on: ONNX Runtime's ``cpu``, ``cuda``, ``tensorrt`` and
``cann``, acl's ``npu``; ``jobs.devices``' ``kind`` for the accelerators."""


def runs_on(device: str) -> str | None:
    """``cpu``, ``gpu`` or ``npu`` for a device name (``cuda:1``); None for one no backend names so (the null
    backend's stand-ins)."""
    return RUNS_ON.get(device.partition(":")[0])


def check(name: str, device: str, options: Mapping[str, Any], precision: str = "fp32") -> Any:
    """The backend's config for ``device``, ``options`` and ``precision``, checked without a device or the
    backend's library.

    Raises ``BadInput`` for an unknown backend, ``errors.OptionError`` for a wrong device, option or
    precision (``option`` None: the device; ``"precision"``: the precision).
    """
    config = REGISTRY.config(name)
    assert config is not None  # every backend has a config class
    return config.check(device, options, precision)


def check_devices(name: str, devices: Sequence[str], options: Mapping[str, Any], precision: str = "fp32") -> Any:
    """Like ``check``, for a run on several devices of one host at once (``jobs.harness.fanout``): each device
    checked, at least two, none twice, and the backend's config must take several (its ``check_devices``: a backend
    whose devices share the host's cores, ONNX Runtime on the CPU, does not). ``errors.OptionError`` (option None)
    for what is wrong; the config of the first device otherwise."""
    if len(devices) < 2:
        raise errors.OptionError(None, f"expected at least 2 devices for a run on several, got {list(devices)}")
    seen: dict[str, str] = {}
    for d in devices:  # npu:0 and npu:00 are one device
        kind, sep, index = d.partition(":")
        key = f"{kind}:{int(index)}" if sep and index.isdigit() else d
        if key in seen:
            raise errors.OptionError(None, f"expected distinct devices, got {d!r} more than once" if seen[key] == d
                                     else f"expected distinct devices, got {seen[key]!r} and {d!r}, one device")
        seen[key] = d
    configs = [check(name, d, options, precision) for d in devices]
    multi = getattr(REGISTRY.config(name), "check_devices", None)
    if multi is None:
        raise errors.OptionError(None, f"backend {name} runs on one device at a time")
    multi(list(devices))
    return configs[0]
