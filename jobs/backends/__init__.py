"""Inference backends behind one interface, chosen by name from an explicit registry.

Each backend lives in its own folder (``config.py`` for its options, checked without a device;
``backend.py`` for the implementation, imported only when asked for, so a pod installs only what it runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobs import registry
from jobs.backends.base import Backend

REGISTRY: registry.Registry[type[Backend]] = registry.Registry("backend", {
    "onnxruntime": registry.Plugin("jobs.backends.onnxruntime.backend:OnnxRuntimeBackend",
                                   "jobs.backends.onnxruntime.config:OnnxRuntimeConfig", extra="infer"),
    "null": registry.Plugin("jobs.backends.null.backend:NullBackend", "jobs.backends.null.config:NullConfig"),
    # aclruntime is imported when the backend opens (it ships with ais_bench, not on PyPI).
    "acl": registry.Plugin("jobs.backends.acl.backend:AclBackend", "jobs.backends.acl.config:AclConfig"),
})


def check(name: str, device: str, options: Mapping[str, Any], precision: str = "fp32") -> Any:
    """The backend's config for ``device``, ``options`` and ``precision``, checked without a device or the
    backend's library.

    Raises ``BadInput`` for an unknown backend, ``errors.OptionError`` for a wrong device, option or
    precision (``option`` None: the device; ``"precision"``: the precision).
    """
    config = REGISTRY.config(name)
    assert config is not None  # every backend has a config class
    return config.check(device, options, precision)
