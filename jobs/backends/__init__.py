"""Inference backends behind one interface, chosen by name from an explicit registry.

Each backend lives in its own folder (``config.py`` for its options, ``backend.py`` for the
implementation) and is imported only when asked for, so a pod installs only what it runs.
"""

from __future__ import annotations

import importlib

from jobs import errors
from jobs.backends.base import Backend

# name -> ("module:class", the extra that installs what it needs)
REGISTRY: dict[str, tuple[str, str]] = {
    "onnxruntime": ("jobs.backends.onnxruntime.backend:OnnxRuntimeBackend", "infer"),
    "null": ("jobs.backends.null.backend:NullBackend", ""),
    # aclruntime is imported when the backend opens (it ships with ais_bench, not on PyPI).
    "acl": ("jobs.backends.acl.backend:AclBackend", ""),
}

# Backends the design has a seam for but this version does not implement yet. Sweep files may
# name them (so that plans can be made and checked); running them fails clearly. None at the moment.
PLANNED: dict[str, str] = {}


def names() -> list[str]:
    return sorted(REGISTRY)


def known(name: str) -> bool:
    return name in REGISTRY or name in PLANNED


def get(name: str) -> type[Backend]:
    """The backend class registered as ``name``; a missing library is reported with its install hint."""
    if name in PLANNED:
        raise errors.BadInput(f"backend {name!r}: {PLANNED[name]}")
    try:
        target, extra = REGISTRY[name]
    except KeyError:
        raise errors.BadInput(f"backend {name!r} is not known; expected one of {', '.join(names())}") from None
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        hint = f"pip install 'ghostbench[{extra}]'" if extra else "reinstall ghostbench"
        raise errors.MissingDependency(f"backend {name!r} cannot load here ({e}); install it with: {hint}") from None
    return getattr(module, class_name)
