"""What a ``batch/v1`` Job object says about itself: pure reads of its metadata, spec and status.

The field names and condition types are Kubernetes' (``JobStatus``, ``JobCondition``): ``Complete`` and
``Failed`` end a Job; ``completedIndexes`` and ``failedIndexes`` (with ``backoffLimitPerIndex``, GA in
Kubernetes 1.33) say which indexes of an Indexed Job ended; ``spec.suspend`` holds a Job back (Kueue
creates Jobs suspended and resumes them when its queue admits them).
"""

from __future__ import annotations

from typing import Any

COMPLETE, FAILED = "Complete", "Failed"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
"""The label that hands a Job to Kueue's LocalQueue of that name (Kueue's documented API)."""


def conditions(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Condition type -> condition, for the conditions whose status is ``True``."""
    return {c.get("type", ""): c for c in (job.get("status") or {}).get("conditions") or []
            if c.get("status") == "True"}


def finished(job: dict[str, Any]) -> bool:
    found = conditions(job)
    return COMPLETE in found or FAILED in found


def suspended(job: dict[str, Any]) -> bool:
    """Whether the Job is held back (``spec.suspend``) and not finished: no pod of it runs until it is resumed."""
    return bool((job.get("spec") or {}).get("suspend")) and not finished(job)


def queue_name(job: dict[str, Any]) -> str:
    """The Kueue LocalQueue the Job was handed to, "" when none."""
    return str(((job.get("metadata") or {}).get("labels") or {}).get(KUEUE_QUEUE_LABEL, ""))


def why_suspended(job: dict[str, Any]) -> str:
    """One line: where a suspended Job waits."""
    queue, name_ = queue_name(job), name(job)
    if queue:
        return f"queued in Kueue LocalQueue {queue!r} (its Job {name_} is suspended until admitted)"
    return f"its Job {name_} is suspended (spec.suspend) until something resumes it"


def parse_indexes(text: str | None) -> set[int]:
    """``completedIndexes`` or ``failedIndexes`` (``"0-2,5"``) as a set of indexes."""
    out: set[int] = set()
    for part in (text or "").split(","):
        if not part.strip():
            continue
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def completed_indexes(job: dict[str, Any]) -> set[int]:
    return parse_indexes((job.get("status") or {}).get("completedIndexes"))


def failed_indexes(job: dict[str, Any]) -> set[int]:
    """Indexes that failed for good while the Job may go on (``backoffLimitPerIndex``); empty without it."""
    return parse_indexes((job.get("status") or {}).get("failedIndexes"))


def uid(job: dict[str, Any]) -> str:
    return str((job.get("metadata") or {}).get("uid", ""))


def name(job: dict[str, Any]) -> str:
    return str((job.get("metadata") or {}).get("name", ""))


def exit_code(pod: dict[str, Any], container: str) -> int | None:
    """The exit code of ``container`` in a pod that ended, None when it has not terminated."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == container:
            terminated = (status.get("state") or {}).get("terminated") or {}
            if "exitCode" in terminated:
                return int(terminated["exitCode"])
    return None
