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


def check(name: str, device: str, options: Mapping[str, Any]) -> Any:
    """The backend's config for ``device`` and ``options``, checked without a device or the backend's library.

    Raises ``BadInput`` for an unknown backend, ``errors.OptionError`` for a wrong device or option.
    """
    config = REGISTRY.config(name)
    if config is None:
        registry.check_option_names(options, ())
        return None
    return config.check(device, options)
