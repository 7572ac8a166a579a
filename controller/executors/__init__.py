"""Executors run a plan's steps somewhere: local subprocesses, or Kubernetes Jobs.

Both run the same step command; the scheduling (dependencies, failures) is shared in
``controller.runner``, so an executor only starts steps and reports when they end.
"""

from __future__ import annotations

import importlib

from controller.executors.base import Executor
from jobs import errors

REGISTRY = {
    "local": "controller.executors.local:LocalExecutor",
    "kubernetes": "controller.executors.kubernetes:KubernetesExecutor",
}


def names() -> list[str]:
    return sorted(REGISTRY)


def get(name: str) -> type[Executor]:
    try:
        module_name, _, cls = REGISTRY[name].partition(":")
    except KeyError:
        raise errors.BadInput(f"executor {name!r} is not known; expected one of {', '.join(names())}") from None
    return getattr(importlib.import_module(module_name), cls)
