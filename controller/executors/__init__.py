"""Executors run a plan's steps somewhere: local subprocesses, or Kubernetes Jobs.

Both run the same step command; the scheduling (dependencies, failures) is shared in
``controller.runner``, so an executor only starts steps and reports when they end.
"""

from __future__ import annotations

from controller.executors.base import Executor
from jobs import registry

REGISTRY: registry.Registry[type[Executor]] = registry.Registry("executor", {
    "local": registry.Plugin("controller.executors.local:LocalExecutor"),
    "kubernetes": registry.Plugin("controller.kubernetes.executor:KubernetesExecutor", extra="kubernetes"),
})
