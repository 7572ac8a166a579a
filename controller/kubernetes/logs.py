"""A step pod's log, kept in the store next to the step's output (where the local executor keeps its logs)."""

from __future__ import annotations

from typing import Any

from controller.kubernetes import api as k8s_api
from controller.kubernetes import manifests
from controller.kubernetes import settings as k8s_settings
from jobs import store as store_mod


def copy(api: k8s_api.Api, store: store_mod.Store, log: str, job: str, pod: dict[str, Any] | None,
         settings: k8s_settings.KubernetesSettings) -> tuple[str, str]:
    """The pod's log (at most ``settings.log_limit_bytes``), also written to ``log`` in the store under a header
    naming the Job and pod, and why it could not be kept ("" when it was). A lost log never fails a step: the
    caller says it on the console, and it is said in status.json and in the stored log."""
    name = (pod.get("metadata") or {}).get("name", "") if pod is not None else ""
    text, missing = "", ""
    if pod is None:
        missing = (f"no pod of Job {job} was left to read it from (deleted first: the Job's "
                   "ttlSecondsAfterFinished, a kubectl delete, or its node went away)")
    else:
        try:
            text = api.read_pod_log(name, manifests.CONTAINER, limit_bytes=settings.log_limit_bytes)
        except k8s_api.ApiError as e:
            missing = f"reading the log of pod {name} failed: {e}"
    header = f"# Job {job}, pod {name or '(none)'}, namespace {settings.namespace}\n"
    try:
        store.write_text(log, header + (f"# the log could not be kept: {missing}\n" if missing else text))
    except Exception as e:  # noqa: BLE001 - the log is a convenience; the outcome must still be reported
        missing = missing or f"writing it to the store failed: {e}"
    return text, missing
