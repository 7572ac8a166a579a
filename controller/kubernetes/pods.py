"""Why a step's pods do not run: the pods of each active Job, read as ``kubectl describe`` reads them.

A pod stays ``Pending`` for ever (until its Job's ``activeDeadlineSeconds``, hours) when

- its container cannot be created and will not be by itself (``CANNOT_START``: the image cannot be
  pulled, its name is invalid, a Secret or ConfigMap key it needs is missing): its container status
  says ``state.waiting.reason`` and ``message``; the executor fails the step after
  ``pod_start_timeout_seconds`` of that;
- the scheduler finds no node for it: the ``PodScheduled`` condition is False with reason
  ``Unschedulable`` and the scheduler's message ("0/3 nodes are available: 3 Insufficient
  huawei.com/Ascend310P."); the resources it names as insufficient are the ones that are short. The
  executor reports it and fails the step only after ``unschedulable_timeout_seconds`` (0: never, since
  on a shared cluster a queue frees up).

The pods of a Job are listed by the Job's own ``spec.selector`` (``batch.kubernetes.io/controller-uid``,
or ``controller-uid`` before Kubernetes 1.27), as kubectl does. How long a pod has been stuck counts from
when this controller first saw it stuck (its clock), so a restarted controller starts counting again.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from controller.executors import base
from controller.kubernetes import api as k8s_api
from controller.kubernetes import manifests

T = TypeVar("T")

CANNOT_START = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                          "CreateContainerConfigError", "CreateContainerError"})
"""Container waiting reasons that do not pass by themselves (ContainerCreating and PodInitializing do)."""
UNSCHEDULABLE = "Unschedulable"
_INSUFFICIENT_RE = re.compile(r"Insufficient (\S+?)[.,]?(?=\s|$)")


def selector(job: dict[str, Any]) -> str:
    """The label selector of the Job's pods: its ``spec.selector.matchLabels`` (the API server sets it)."""
    labels = ((job.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if labels:
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return f"controller-uid={(job.get('metadata') or {}).get('uid', '')}"


def short_resources(message: str) -> list[str]:
    """The resources a scheduler's message names as insufficient, in order, once each."""
    return list(dict.fromkeys(_INSUFFICIENT_RE.findall(message or "")))


def duration(seconds: float) -> str:
    """``45s``, ``5m10s``, ``2h03m``."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


@dataclasses.dataclass(frozen=True)
class Stuck:
    """A pod that does not run, and why."""

    pod: str
    uid: str
    reason: str
    """A container waiting reason in CANNOT_START, or UNSCHEDULABLE."""
    message: str
    """The kubelet's or the scheduler's message."""
    seconds: float = 0.0
    """How long this controller has seen it so."""

    @property
    def unschedulable(self) -> bool:
        return self.reason == UNSCHEDULABLE

    def why(self) -> str:
        """``ImagePullBackOff: Back-off pulling image "x"``; ``Unschedulable: short of huawei.com/Ascend310P (...)``."""
        message = " ".join(self.message.split())  # one line, whatever the kubelet or the scheduler wrote
        if self.unschedulable:
            short = short_resources(message)
            return f"{UNSCHEDULABLE}: " + (f"short of {', '.join(short)} ({message})" if short
                                          else f"no node fits ({message})")
        return f"{self.reason}: {message}" if message else self.reason

    def line(self) -> str:
        return f"{self.why()}; pod {self.pod}, {duration(self.seconds)} so far"

    def failure(self) -> str:
        """One line: why its step fails."""
        setting = "unschedulable_timeout_seconds" if self.unschedulable else "pod_start_timeout_seconds"
        return f"pod {self.pod} did not run for {duration(self.seconds)} ({setting}): {self.why()}"

    def fix(self) -> str:
        if self.unschedulable:
            return "free or add what is short (or raise the timeout), then rerun"
        return "fix the image (settings images) or what the container needs (a Secret, a ConfigMap), then rerun"


def stuck(pod: dict[str, Any]) -> Stuck | None:
    """Why ``pod`` does not run (None: it runs, ran, or is on its way)."""
    status = pod.get("status") or {}
    if status.get("phase") not in (None, "Pending"):
        return None
    meta = pod.get("metadata") or {}
    name, uid = str(meta.get("name", "")), str(meta.get("uid", ""))
    for c in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (c.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in CANNOT_START:
            return Stuck(name, uid, waiting["reason"], str(waiting.get("message") or ""))
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False" \
                and condition.get("reason") == UNSCHEDULABLE:
            return Stuck(name, uid, UNSCHEDULABLE, str(condition.get("message") or ""))
    return None


class Since:
    """When each stuck pod was first seen stuck (by kind: cannot start, unschedulable), in ``clock``'s time."""

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._first: dict[tuple[str, bool], float] = {}

    def seen(self, s: Stuck) -> Stuck:
        now = self._clock()
        return dataclasses.replace(s, seconds=now - self._first.setdefault((s.uid, s.unschedulable), now))


def by_index(pods: list[dict[str, Any]], indexed: bool, since: Since) -> dict[int, Stuck]:
    """Completion index (0 for a Job that is not Indexed) -> its newest stuck pod."""
    found: dict[int, Stuck] = {}
    newest_first = sorted(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "", reverse=True)
    for pod in newest_first:
        s = stuck(pod)
        if s is None:
            continue
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        labels = (pod.get("metadata") or {}).get("labels") or {}
        key = manifests.COMPLETION_INDEX_ANNOTATION  # also a label since Kubernetes 1.28
        index = int(annotations.get(key) or labels.get(key) or 0) if indexed else 0
        if index not in found:
            found[index] = since.seen(s)
    return found


def timed_out(s: Stuck, pod_start_timeout: int, unschedulable_timeout: int) -> bool:
    """Whether ``s`` has been stuck longer than its kind's timeout (0: no timeout)."""
    limit = unschedulable_timeout if s.unschedulable else pod_start_timeout
    return limit > 0 and s.seconds >= limit


@dataclasses.dataclass(frozen=True)
class Active(Generic[T]):
    """A Job being waited on: ``job`` (the caller's handle), its pods' selector, its unreported steps."""

    job: T
    selector: str
    indexed: bool
    steps: dict[int, str]
    """Completion index (0: not Indexed) -> step key."""


class Checker(Generic[T]):
    """Reads the pods of the active Jobs every ``every_s`` (of ``clock``): ``waiting`` (step key -> why it does
    not run) and the Jobs whose pod is stuck past its timeout."""

    def __init__(self, list_pods: Callable[[str], list[dict[str, Any]]], clock: Callable[[], float], every_s: float,
                 pod_start_timeout: int, unschedulable_timeout: int):
        self._list_pods = list_pods
        self._clock = clock
        self._every_s = every_s
        self._timeouts = (pod_start_timeout, unschedulable_timeout)
        self._checked = clock()  # (the first check after every_s: a pod just created is not stuck)
        self._since = Since(clock)
        self.waiting: dict[str, base.Waiting] = {}

    def check(self, active: list[Active[T]]) -> list[tuple[T, Stuck]]:
        """The Jobs to fail, each with its pod stuck past its timeout (none between two checks). Raises
        ``Forbidden`` (a Role without ``list`` on pods) and ``CredentialsRejected``; other ApiErrors skip a
        Job until the next check (a server that does not answer is the watch's to report)."""
        now = self._clock()
        if now - self._checked < self._every_s:
            return []
        self._checked = now
        notes: dict[str, base.Waiting] = {}
        expired: list[tuple[T, Stuck]] = []
        for a in active:
            try:
                found = by_index(self._list_pods(a.selector), a.indexed, self._since)
            except k8s_api.ApiError:
                continue
            late = next((s for s in found.values() if timed_out(s, *self._timeouts)), None)
            if late is not None:
                expired.append((a.job, late))
                continue
            notes.update({key: base.Waiting(found[i].why(), found[i].line()) for i, key in a.steps.items()
                          if i in found})
        self.waiting = notes
        return expired
