"""Kubernetes Job manifests for plan steps: pure functions, no API calls (``controller.kubernetes.api`` makes those).

One ``batch/v1`` Job per step runs the step's command, ``python -m jobs.stages.<stage> ...``, in the image
for its stage. The preprocessing shards of one output root are one Indexed Job (completions = shards):
pod I runs ``--shard $(JOB_COMPLETION_INDEX)``, which Kubernetes expands from the pod's completion
index; the stage still takes ``--shard`` as a plain argument.

Everything cluster-specific comes from ``controller.kubernetes.settings.KubernetesSettings``;
accelerator facts (the device-plugin resource, node labels, the default image) from ``jobs.devices``.
The Jobs as users see them: ``docs/kubernetes.md``.
"""

from __future__ import annotations

import hashlib
import json
import re
import typing
import urllib.parse
from typing import Any

import yaml

import jobs
from controller import plan as plan_mod
from controller.kubernetes import device_resources, jobstatus
from controller.kubernetes import settings as settings_mod
from jobs import devices, errors, params
from jobs.devices import cpu

# Label and annotation keys set on every Job and pod.
LABEL_PREFIX = "ghostbench.io/"
SWEEP_LABEL = LABEL_PREFIX + "sweep"
"""The sweep a Job belongs to: the executor watches, and ``ghostbench cancel`` deletes, by it."""
STEP_LABEL = LABEL_PREFIX + "step"
"""The step key (for an Indexed Job: the key of the shards' shared output root)."""
TITLE_ANNOTATION = LABEL_PREFIX + "title"
SPEC_ANNOTATION = LABEL_PREFIX + "spec-sha256"
"""Hash of the container's image, command and arguments: an adopted Job must run the same command."""
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
"""Set by the Job controller on each pod of an Indexed Job (Kubernetes 1.21+)."""
CONTAINER = "stage"
"""Name of the one container of a step's pod."""
INDEX_ENV = "JOB_COMPLETION_INDEX"

KUBERNETES_VERSIONS = ("1.26.0", "1.37.0")
"""The oldest and newest Kubernetes versions the Jobs are made for (and validated against in the tests):
1.26 is the first with ``podFailurePolicy`` on by default."""
MAX_NAME = 56
"""Job names stay at most 56 characters: DNS-1123 labels (<= 63) even with an Indexed Job's
``-<index>`` pod hostname suffix."""
EXIT_CODES_NOT_RETRIED = (errors.EXIT_BAD_INPUT, errors.EXIT_MISSING_DEPENDENCY)
"""Bad input (2) or a missing library (3) fails the Job at once: a retry cannot help."""

ASCEND_DRIVER_LIBRARY_PATH = ("/usr/local/Ascend/driver/lib64:/usr/local/Ascend/driver/lib64/common:"
                              "/usr/local/Ascend/driver/lib64/driver")

# -- steps and Jobs --------------------------------------------------------------------------------

def shard_index(step: plan_mod.Step) -> int | None:
    """The completion index of a preprocessing shard, None for a step that is its own Job."""
    return step.params.shard if isinstance(step.params, params.PreprocessParams) else None


def job_key(step: plan_mod.Step) -> str:
    """The key a Job is named by (``Step.group``: shards share their output root's key)."""
    return step.group


def _dns_part(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-")


def job_name(sweep: str, step: plan_mod.Step) -> str:
    """``<sweep>-<stage>-<key>``: deterministic, a DNS-1123 label of at most ``MAX_NAME`` characters.
    A sweep name too long for that is cut and given a hash of the whole name, so names stay distinct."""
    tail = f"-{_dns_part(step.stage)}-{job_key(step)}"
    head = _dns_part(sweep) or "sweep"
    room = MAX_NAME - len(tail)
    if len(head) > room:
        digest = hashlib.sha256(sweep.encode()).hexdigest()[:6]
        head = head[:room - 7].rstrip("-") + "-" + digest
    return head + tail


def device_class(step: plan_mod.Step) -> str:
    """What limits how many such Jobs run at once: the accelerator's catalogue name, or ``cpu``."""
    return step.accelerator or "cpu"


def image_key(step: plan_mod.Step, settings: settings_mod.KubernetesSettings) -> str:
    if step.accelerator and step.stage == "infer":
        return devices.get(step.accelerator).image
    if isinstance(step.params, params.ConvertParams) and step.params.target in settings.engine_images:
        return settings.engine_images[step.params.target]
    return settings.stage_images.get(step.stage, "cpu")


def labels(sweep: str, step: plan_mod.Step, settings: settings_mod.KubernetesSettings) -> dict[str, str]:
    """The recommended ``app.kubernetes.io/*`` labels, the sweep and the step (all valid label values)."""
    out = {
        "app.kubernetes.io/name": "ghostbench",
        "app.kubernetes.io/instance": settings.instance or sweep,
        "app.kubernetes.io/component": step.stage,
        "app.kubernetes.io/part-of": "ghostbench",
        "app.kubernetes.io/managed-by": "ghostbench",
        "app.kubernetes.io/version": jobs.__version__,
        SWEEP_LABEL: sweep,
        STEP_LABEL: job_key(step),
    }
    context = {"target": step.target, "input-mode": step.input_mode}
    context.update(step.params.job_labels())
    for key in ("target", "batch-size", "input-mode"):  # the labels users select Jobs by
        if context.get(key) is not None:
            out[LABEL_PREFIX + key] = str(context[key])
    if step.accelerator:
        out[LABEL_PREFIX + "accelerator"] = step.accelerator
    for extra in _entries(step, settings.pod_labels):  # (settings refuse the keys above)
        out.update(extra)
    return out


def _entries(step: plan_mod.Step, by_key: dict[str, Any]) -> list[Any]:
    """The step's entries of a settings field keyed by stage or accelerator: its stage's, then its accelerator's
    (which wins where both give the same thing)."""
    return [by_key[k] for k in (step.stage, step.accelerator) if k and k in by_key]


def device_resource(step: plan_mod.Step, settings: settings_mod.KubernetesSettings
                    ) -> device_resources.DeviceResource | None:
    """What the step's pod requests of its accelerator (None: no accelerator)."""
    if not step.accelerator:
        return None
    chips = len(step.params.devices) if isinstance(step.params, params.InferParams) and step.params.devices else 1
    try:
        return device_resources.resolve(step.accelerator, settings.device_resources, chips)
    except errors.BadInput as e:
        raise settings_mod.SettingsError(f"settings: {e} (target {step.target})") from e


def local_inputs(step: plan_mod.Step) -> list[str]:
    """What the step reads from a path of the machine that plans it (no scheme, or ``file://``): a pod sees such a
    path only where the same path is mounted, which these Jobs never do."""
    return [uri for uri in step.params.sources() if urllib.parse.urlparse(uri).scheme in ("", "file")]


def selector(sweep: str) -> str:
    """Label selector of a sweep's step Jobs."""
    return f"{SWEEP_LABEL}={sweep}"


def _args(step: plan_mod.Step) -> list[str]:
    """The step's command; a shard's ``--shard`` is its pod's completion index, which Kubernetes expands."""
    if shard_index(step) is None:
        return step.command()
    return step.params.command(overrides={"shard": f"$({INDEX_ENV})"})


def _title(step: plan_mod.Step) -> str:
    if shard_index(step) is None:
        return step.title
    assert isinstance(step.params, params.PreprocessParams)
    return re.sub(r"\s*shard \d+/\d+$", "", step.title) + f" ({step.params.num_shards} shards)"


def _resources(step: plan_mod.Step, settings: settings_mod.KubernetesSettings) -> dict[str, dict[str, str]]:
    res = settings.resources.get(step.stage, {})
    out = {kind: {k: str(v) for k, v in res.get(kind, {}).items()} for kind in ("requests", "limits")}
    device = device_resource(step, settings)
    if device is not None:  # extended resources: request = limit
        out["requests"][device.name] = out["limits"][device.name] = str(device.count)
    return {k: v for k, v in out.items() if v}


def _env(step: plan_mod.Step, settings: settings_mod.KubernetesSettings) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "HOME", "value": settings.home},
        {"name": "TMPDIR", "value": "/tmp"},
    ]
    if "cpu" in _resources(step, settings).get("limits", {}):
        # The container's CPU limit in whole CPUs (rounded up) through the downward API: jobs.devices.cpu sizes the
        # thread pools to it, since neither ONNX Runtime nor torch sees a CPU limit (only the node's cores).
        env.append({"name": cpu.CPU_LIMIT_ENV, "valueFrom": {"resourceFieldRef": {
            "containerName": CONTAINER, "resource": "limits.cpu", "divisor": "1"}}})
    if shard_index(step) is not None:  # also set by the Job controller; declared so $(...) expands by itself
        env.append({"name": INDEX_ENV, "valueFrom": {"fieldRef": {
            "fieldPath": f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"}}})
    if settings.store_secret:
        for name in sorted(settings.store_secret_keys):
            env.append({"name": name, "valueFrom": {"secretKeyRef": {
                "name": settings.store_secret, "key": settings.store_secret_keys[name]}}})
    if _driver_mounts(step, settings):
        env.append({"name": "LD_LIBRARY_PATH", "value": ASCEND_DRIVER_LIBRARY_PATH})
    device = device_resource(step, settings)
    if device is not None and step.stage == "infer":  # (the chip Volcano chose, where it chooses)
        env += device_resources.visible_devices_env(device, settings.scheduler_name)
    return env


def _driver_mounts(step: plan_mod.Step, settings: settings_mod.KubernetesSettings) -> bool:
    return settings.driver_mounts and bool(step.accelerator) and devices.get(step.accelerator).kind == "npu"


def _volumes(step: plan_mod.Step, settings: settings_mod.KubernetesSettings) -> tuple[list[dict], list[dict]]:
    volumes: list[dict[str, Any]] = [
        {"name": "tmp", "emptyDir": {"sizeLimit": str(settings.scratch_size_limit)}},
        {"name": "home", "emptyDir": {"sizeLimit": "1Gi"}},
    ]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}, {"name": "home", "mountPath": settings.home}]
    if _driver_mounts(step, settings):
        for i, path in enumerate(settings.driver_host_paths):
            volumes.append({"name": f"ascend-driver-{i}", "hostPath": {"path": path}})
            mounts.append({"name": f"ascend-driver-{i}", "mountPath": path, "readOnly": True})
    return volumes, mounts


def _pod_spec(step: plan_mod.Step, settings: settings_mod.KubernetesSettings) -> dict[str, Any]:
    volumes, mounts = _volumes(step, settings)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": settings.images[image_key(step, settings)],
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["python"],
        "args": _args(step),
        "env": _env(step, settings),
    }
    if settings.store_config_map:
        container["envFrom"] = [{"configMapRef": {"name": settings.store_config_map, "optional": True}}]
    container["resources"] = _resources(step, settings)
    container["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    container["volumeMounts"] = mounts
    pod_security: dict[str, Any] = {
        "runAsNonRoot": True,
        "runAsUser": settings.run_as_user,
        "runAsGroup": settings.run_as_group,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if settings.supplemental_groups:
        pod_security["supplementalGroups"] = list(settings.supplemental_groups)
    spec: dict[str, Any] = {
        "restartPolicy": "Never",  # retries are new pods, counted by backoffLimit (podFailurePolicy needs it)
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security,
        "containers": [container],
        "volumes": volumes,
    }
    if settings.service_account:
        spec["serviceAccountName"] = settings.service_account
    priority = _entries(step, settings.priority_class_name)
    if priority:
        spec["priorityClassName"] = priority[-1]
    affinity = _entries(step, settings.affinity)
    if affinity:
        spec["affinity"] = affinity[-1]
    if settings.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": n} for n in settings.image_pull_secrets]
    node_selector = dict(settings.node_selector)
    tolerations = [dict(t) for t in settings.tolerations]
    if step.accelerator:
        acc = devices.get(step.accelerator)
        node_selector.update(acc.node_selector)
        tolerations.append({"key": acc.resource, "operator": "Exists", "effect": "NoSchedule"})
        if settings.scheduler_name:
            spec["schedulerName"] = settings.scheduler_name
    if node_selector:
        spec["nodeSelector"] = node_selector
    if tolerations:
        spec["tolerations"] = tolerations
    return spec


def _spec_hash(pod_spec: dict[str, Any]) -> str:
    c = pod_spec["containers"][0]
    material = json.dumps([c["image"], c["command"], c["args"]], separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()[:16]


PER_INDEX_SINCE = (1, 33)
"""The Kubernetes version from which ``per_index_backoff: auto`` uses ``backoffLimitPerIndex`` (GA in 1.33; beta,
on by default, since 1.29)."""


def per_index(settings: settings_mod.KubernetesSettings, server: tuple[int, int] | None) -> bool:
    """Whether preprocessing Indexed Jobs retry each shard on its own, for an API server of version ``server``
    (None: unknown, as old as the oldest supported)."""
    if settings.per_index_backoff != "auto":
        return settings.per_index_backoff == "on"
    return server is not None and server >= PER_INDEX_SINCE


def job(sweep: str, step: plan_mod.Step, settings: settings_mod.KubernetesSettings,
        per_index_backoff: bool = False) -> dict[str, Any]:
    """The ``batch/v1`` Job that runs ``step`` (for a shard: the Indexed Job of all its sibling shards).
    ``per_index_backoff`` (``per_index``): a shard's Indexed Job retries and fails each index on its own."""
    pod_labels = labels(sweep, step, settings)
    pod_spec = _pod_spec(step, settings)
    index = shard_index(step)
    extra_annotations: dict[str, str] = {}
    for extra in _entries(step, settings.pod_annotations):
        extra_annotations.update(extra)
    annotations = {**extra_annotations, TITLE_ANNOTATION: _title(step), SPEC_ANNOTATION: _spec_hash(pod_spec)}
    pod_annotations = {**extra_annotations, **(settings.scheduler_annotations if step.accelerator else {})}
    template: dict[str, Any] = {"metadata": {"labels": dict(pod_labels)}, "spec": pod_spec}
    if pod_annotations:
        template["metadata"]["annotations"] = pod_annotations
    spec: dict[str, Any] = {}
    each_index = index is not None and per_index_backoff
    if index is not None:
        assert isinstance(step.params, params.PreprocessParams)
        shards = step.params.num_shards
        spec.update(completionMode="Indexed", completions=shards,
                    parallelism=min(shards, settings.preprocess_parallelism))
    if each_index:  # each shard its own retries; its bad input (exit 2) fails it alone; the others go on
        spec["backoffLimitPerIndex"] = settings.backoff_limit
        if settings.max_failed_shards:
            spec["maxFailedIndexes"] = settings.max_failed_shards
    else:
        spec["backoffLimit"] = settings.backoff_limit
    spec.update(
        activeDeadlineSeconds=settings.active_deadline_seconds.get(step.stage, 3600),
        ttlSecondsAfterFinished=settings.ttl_seconds_after_finished,
        podFailurePolicy={"rules": [
            # onPodConditions: [] because the OpenAPI schema of Kubernetes 1.26-1.28 marks it required
            {"action": "FailIndex" if each_index else "FailJob",
             "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": list(EXIT_CODES_NOT_RETRIED)},
             "onPodConditions": []},
            # a pod evicted or preempted (node drain, preemption) is retried without counting as a failure
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        ]},
        template=template,
    )
    job_labels = {**pod_labels, **({jobstatus.KUEUE_QUEUE_LABEL: settings.queue_name} if settings.queue_name else {})}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(sweep, step), "namespace": settings.namespace, "labels": job_labels,
                     "annotations": annotations},
        "spec": spec,
    }


def jobs_for(plan: plan_mod.Plan, settings: settings_mod.KubernetesSettings,
             steps: typing.Iterable[plan_mod.Step] | None = None, per_index_backoff: bool = False
             ) -> list[dict[str, Any]]:
    """The Jobs that run ``steps`` (default: all of the plan's), one per Job name, in plan order (the
    shards of one output root share one Indexed Job)."""
    out: dict[str, dict[str, Any]] = {}
    for step in plan.steps if steps is None else steps:
        name = job_name(plan.sweep, step)
        if name not in out:
            out[name] = job(plan.sweep, step, settings, per_index_backoff)
    return list(out.values())


def dump(objs: typing.Iterable[dict[str, Any]]) -> str:
    """A YAML stream, one document per object, keys in the order they were built."""
    return yaml.safe_dump_all(list(objs), sort_keys=False, default_flow_style=False, width=120)

