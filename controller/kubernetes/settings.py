"""Where and how a sweep's Jobs run: ``KubernetesSettings``, loaded from YAML and validated.

Everything cluster-specific (namespace, images, the store's ConfigMap and Secret, scheduler, tolerations,
resources, limits, deadlines) is a field here, read from a YAML file (``ghostbench run --settings FILE``;
the Helm chart renders one from its values, and ``tests/packaging/test_chart.py`` checks that the chart's
defaults are these). Every error names the field, what is allowed and what was given. What the API
server accepts as names, labels and keys is checked here too (``is_label_value``, ``is_qualified_key``).
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import typing
from collections.abc import Callable
from typing import Any

import yaml

import jobs
from controller.kubernetes import device_resources, objects
from jobs import devices, errors, params, registry

ASCEND_DRIVER_PATHS = ("/usr/local/Ascend/driver", "/usr/local/dcmi", "/usr/local/bin/npu-smi",
                       "/etc/ascend_install.info")
"""Host paths an Ascend pod needs when the node has no Ascend Docker Runtime to inject them."""

MIN_TTL_SECONDS = 3600
"""The shortest ``ttl_seconds_after_finished`` accepted (the chart's schema has the same minimum). The controller
reads a Job's pod log (and a failed pod's exit code) once the watch tells it the Job ended; a Job that Kubernetes
deletes first takes its pods and their logs with it. The controller may hear late: while the API server does
not answer (it keeps trying for ``api_deadline_seconds``, 600 s by default: the TTL must be at least that too),
and while its own pod is restarted after a crash or an eviction (container back-off up to 5 minutes, scheduling,
an image pull). One hour covers both with room to spare; 0 (delete at once) lost 5 of 8 logs in a test sweep."""

_QUANTITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# The API server's rules for label values and label/annotation keys (apimachinery IsValidLabelValue,
# IsQualifiedName); kubernetes-validate does not check them.
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_NAME_PART_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = "a label value (at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter " \
    "or digit)"
_KEY = "([prefix/]name: a DNS subdomain prefix, a name of at most 63 letters, digits, '-', '_' and '.' starting " \
    "and ending with a letter or digit)"


def is_label_value(value: str) -> bool:
    """Whether the API server takes ``value`` as a label value."""
    return len(value) <= 63 and bool(_LABEL_VALUE_RE.fullmatch(value))


def is_qualified_key(key: str) -> bool:
    """Whether the API server takes ``key`` as a label or annotation key: ``[prefix/]name``."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN_RE.fullmatch(prefix)):
        return False
    return len(name) <= 63 and bool(_NAME_PART_RE.fullmatch(name))


class Quantity(str):
    """A Kubernetes resource quantity (``500m``, ``2``, ``4Gi``); a YAML number is accepted too."""


def _default_images() -> dict[str, str]:
    tag = jobs.__version__
    return {"cpu": f"ghostbench/cpu:{tag}", "atc": f"ghostbench/atc:{tag}",
            "ascend-infer": f"ghostbench/ascend-infer:{tag}", "gpu-infer": f"ghostbench/gpu-infer:{tag}"}


def _default_resources() -> dict[str, dict[str, dict[str, Quantity]]]:
    q = Quantity
    return {
        "export": {"requests": {"cpu": q("2"), "memory": q("4Gi")}, "limits": {"memory": q("8Gi")}},
        "convert": {"requests": {"cpu": q("2"), "memory": q("4Gi")}, "limits": {"memory": q("8Gi")}},
        # peak 65 MiB measured at 1,000 and 10,000 images (docs/performance.md); the rest is headroom
        # for very large images, so that a node packs many shards
        "preprocess": {"requests": {"cpu": q("1"), "memory": q("512Mi")}, "limits": {"memory": q("2Gi")}},
        # requests = limits: a Guaranteed pod, so a CPU inference run is not throttled by its neighbours
        "infer": {"requests": {"cpu": q("4"), "memory": q("4Gi")}, "limits": {"cpu": q("4"), "memory": q("4Gi")}},
        "eval": {"requests": {"cpu": q("500m"), "memory": q("1Gi")}, "limits": {"memory": q("2Gi")}},
    }


@dataclasses.dataclass(frozen=True)
class KubernetesSettings:
    """Where and how a sweep's Jobs run. Loaded from YAML by ``load_settings``; every field is optional."""

    namespace: str = "default"
    """Namespace of the step Jobs (the chart sets its release namespace)."""
    context: str = ""
    """kubeconfig context to use from a terminal (empty: the current one); unused inside a cluster."""
    instance: str = ""
    """Value of the ``app.kubernetes.io/instance`` label (the chart sets its release name; empty: the sweep)."""
    images: dict[str, str] = dataclasses.field(default_factory=_default_images)
    """Image key -> image reference. Keys: ``cpu``, ``atc``, ``ascend-infer``, ``gpu-infer`` (see ``images/``);
    an accelerator's key is its ``image`` in ``jobs.devices``."""
    stage_images: dict[str, str] = dataclasses.field(
        default_factory=lambda: {stage: "cpu" for stage in params.STAGES})
    """Stage -> image key, for steps without an accelerator."""
    engine_images: dict[str, str] = dataclasses.field(default_factory=lambda: {"atc": "atc"})
    """Convert target (``--target``) -> image key, where it needs another image than ``stage_images.convert``."""
    image_pull_policy: str = "IfNotPresent"
    """Always, IfNotPresent or Never."""
    image_pull_secrets: tuple[str, ...] = ()
    """Names of Secrets for pulling from private registries."""
    service_account: str = ""
    """Service account of the step pods (e.g. one bound to a cloud role for S3); empty: the namespace's
    default. Step pods never mount an API token: they do not talk to Kubernetes."""
    store_config_map: str = "ghostbench-store"
    """ConfigMap whose keys become the step pods' environment (``envFrom``): the S3 endpoint and region,
    ``AWS_ENDPOINT_URL_S3``, ``AWS_DEFAULT_REGION``, ... Optional: pods start without it. Empty: none."""
    store_secret: str = ""
    """Secret holding the S3 credentials, read with ``secretKeyRef``; empty: no credentials from a Secret
    (the pods' service account or node role gives access)."""
    store_secret_keys: dict[str, str] = dataclasses.field(default_factory=lambda: {
        "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY"})
    """Environment variable -> key in ``store_secret``."""
    scheduler_name: str = ""
    """Scheduler of the accelerator pods, e.g. ``volcano``; empty: the default scheduler. CPU pods always
    use the default scheduler."""
    scheduler_annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    """Annotations on accelerator pods for that scheduler, e.g. ``scheduling.volcano.sh/queue-name: npu``."""
    node_selector: dict[str, str] = dataclasses.field(default_factory=dict)
    """Node labels every step pod needs (e.g. ``kubernetes.io/arch: amd64``); an accelerator's labels
    from ``jobs.devices`` are added for its pods."""
    tolerations: tuple[dict[str, Any], ...] = ()
    """Tolerations of every step pod. Accelerator pods also tolerate ``<device resource>:NoSchedule``."""
    resources: dict[str, dict[str, dict[str, Quantity]]] = dataclasses.field(default_factory=_default_resources)
    """Stage -> ``requests``/``limits`` -> resource -> quantity. An accelerator step also requests and is
    limited to one whole device of its ``jobs.devices`` resource."""
    max_running: dict[str, int] = dataclasses.field(default_factory=lambda: {"cpu": 8})
    """Device class -> Jobs running at once: ``cpu`` for steps without an accelerator, else the accelerator's
    catalogue name (``Ascend310P3``, ``nvidia-t4``); a class not listed (``cpu`` too) gets
    ``max_running_default``."""
    max_running_default: int = 1
    """Jobs at once for an accelerator class not in ``max_running`` (one device at a time)."""
    preprocess_parallelism: int = 4
    """Pods at once of a preprocessing Indexed Job (its completions are the sweep's shards)."""
    driver_mounts: bool = False
    """Mount the Ascend driver from the host (``driver_host_paths``, read-only hostPath) into NPU pods, for
    nodes without Ascend Docker Runtime. Off by default: hostPath volumes break the Pod Security
    ``baseline``/``restricted`` levels and tie the pod to the node's file layout; with the runtime, the
    device plugin's ``ASCEND_VISIBLE_DEVICES`` is all a pod needs."""
    driver_host_paths: tuple[str, ...] = ASCEND_DRIVER_PATHS
    """Host paths mounted read-only at the same place when ``driver_mounts`` is on."""
    run_as_user: int = 1000
    """UID of the step processes (the images' ``ghostbench`` user; not root)."""
    run_as_group: int = 1000
    """GID of the step processes."""
    supplemental_groups: tuple[int, ...] = ()
    """Extra GIDs, e.g. the ``HwHiAiUser`` group that owns ``/dev/davinci*`` on Ascend nodes."""
    home: str = "/home/ghostbench"
    """HOME of the step processes: an emptyDir, since the root filesystem is read-only."""
    scratch_size_limit: str = "20Gi"
    """Size limit of the emptyDir at /tmp, where stages stage their outputs before committing them."""
    backoff_limit: int = 2
    """Retries of a failed pod (per Job) before the Job fails; exit codes 2 and 3 are never retried."""
    active_deadline_seconds: dict[str, int] = dataclasses.field(default_factory=lambda: {
        "export": 3600, "convert": 3600, "preprocess": 6 * 3600, "infer": 4 * 3600, "eval": 3600})
    """Stage -> seconds a Job may run (pending time included) before Kubernetes fails it; a stage a settings
    file leaves out keeps its default here."""
    ttl_seconds_after_finished: int = 7 * 24 * 3600
    """Seconds a finished Job (and its pods' logs) is kept before Kubernetes deletes it; at least
    ``MIN_TTL_SECONDS`` and ``api_deadline_seconds``, so that the controller can read the logs first."""
    log_tail_lines: int = 20
    """Lines of a failed pod's log kept in the sweep status."""
    log_limit_bytes: int = 4 << 20
    """At most this much of a pod's log is copied into the store next to the step's output."""
    watch_timeout_seconds: int = 300
    """Server-side timeout of one watch request; the executor then resumes from where it was."""
    api_deadline_seconds: int = 600
    """When the API server has not answered for this long, the steps being waited on fail (their Jobs
    may still run: a rerun adopts them). A call answered 429, 5xx or not at all is retried until then."""
    pod_start_timeout_seconds: int = 300
    """A step pod whose container cannot be created for this long (image pull back-off, an invalid image
    name, a missing Secret or ConfigMap key: nothing that passes by itself) fails its step and its Job is
    deleted; 0: never (the Job's ``active_deadline_seconds`` still ends it)."""
    unschedulable_timeout_seconds: int = 0
    """A step pod the scheduler finds no node for (``Unschedulable``, e.g. all NPUs busy) for this long fails
    its step and its Job is deleted. 0 (the default): never, because on a shared cluster a queue frees up;
    the wait and the resource that is short are shown meanwhile, and ``active_deadline_seconds`` bounds it."""
    queue_name: str = ""
    """Kueue LocalQueue of every step Job (the label ``kueue.x-k8s.io/queue-name``); empty: none. Kueue holds
    such a Job suspended until the queue admits it: the step shows ``queued``, and its Job's
    ``active_deadline_seconds`` starts when it is admitted (Kubernetes resets a resumed Job's start time)."""
    priority_class_name: dict[str, str] = dataclasses.field(default_factory=dict)
    """Stage or accelerator (``infer``, ``Ascend310P3``) -> PriorityClass of those pods; an accelerator's entry wins
    over its stage's. Empty: the cluster's default priority."""
    affinity: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """Stage or accelerator -> the pods' ``affinity`` (Kubernetes' Affinity, checked field by field), e.g. NPU pods
    off SoC boards: ``nodeAffinity`` ``servertype NotIn [soc]``. An accelerator's entry wins over its stage's."""
    pod_labels: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    """Stage or accelerator -> extra labels of those Jobs and their pods (e.g. MindCluster's
    ``ring-controller.atlas: ascend-310P`` or ``fault-scheduling: grace``); an accelerator's win over its stage's.
    ghostbench's own keys (``app.kubernetes.io/*``, ``ghostbench.io/*``, Kueue's queue label) are refused."""
    pod_annotations: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    """Stage or accelerator -> extra annotations of those Jobs and their pods."""
    device_resources: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """Accelerator -> ``{name: RESOURCE, count: N}``: the extended resource its pods request instead of the
    catalogue's, for the Ascend Device Plugin's other modes (``controller.kubernetes.device_resources``): mixed
    insertion (``huawei.com/Ascend310P-IPro``), static vNPU (``huawei.com/Ascend310P-2c``), dynamic vNPU
    (``huawei.com/npu-core``, N AI Cores, with Volcano), or a MIG slice (``nvidia.com/mig-1g.10gb``)."""
    per_index_backoff: str = "auto"
    """Preprocessing Indexed Jobs retry each shard on its own (``backoffLimitPerIndex`` = ``backoff_limit``, and
    exit codes 2 and 3 fail only their shard), so that one bad shard does not fail the others: ``on``; ``off``:
    one ``backoffLimit`` for all shards, and the first failed shard fails the Job; ``auto``: on where the API
    server is Kubernetes 1.33 or newer (where the field is GA)."""
    max_failed_shards: int = 0
    """With per-index backoff: once more than this many shards have failed the Job stops (``maxFailedIndexes``);
    0: no limit, every shard runs to its end."""


class SettingsError(errors.BadInput):
    """The settings file is malformed; the message names the field."""


def _check(value: Any, tp: Any, path: str, source: str) -> Any:
    """``value`` as type ``tp`` (str, int, bool, Quantity, Any, dict[str, T], tuple[T, ...]), or SettingsError."""
    def fail(expected: str) -> typing.NoReturn:
        raise SettingsError(f"{source}: {path}: expected {expected}, got {value!r}")

    origin, targs = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if tp is Quantity:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = f"{value:g}" if isinstance(value, float) else str(value)
        if not isinstance(value, str) or not _QUANTITY_RE.match(value):
            fail("a resource quantity such as 500m, 2, 4Gi")
        return Quantity(value)
    if tp is str:
        if not isinstance(value, str):
            fail("a string")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            fail("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            fail("an integer >= 0")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            fail("a mapping")
        return {_check(k, targs[0], f"{path} (key)", source): _check(v, targs[1], f"{path}.{k}", source)
                for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list):
            fail("a list")
        return tuple(_check(v, targs[0], f"{path}[{i}]", source) for i, v in enumerate(value))
    raise TypeError(f"settings field type {tp!r} is not handled")  # a bug in this module


KEYED_DEFAULTS = ("active_deadline_seconds", "resources", "images", "stage_images")
"""Fields keyed by stage or image whose keys a settings file may give only some of: the keys it leaves out keep
their defaults (a stage's resources block as a whole). Left out once: infer's deadline fell to a 1 h fallback,
the other stages lost their resource requests, and an accelerator step found no image."""


def parse_settings(data: Any, source: str = "settings") -> KubernetesSettings:
    """Validate a loaded YAML mapping; every error names the field, what is allowed and what was given."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SettingsError(f"{source}: (top level): expected a mapping, got {data!r}")
    hints = typing.get_type_hints(KubernetesSettings, globalns={**globals(), "Quantity": Quantity})
    allowed = [f.name for f in dataclasses.fields(KubernetesSettings)]
    values = {}
    for key, value in data.items():
        if key not in allowed:
            raise SettingsError(f"{source}: {key}: unknown field{registry.did_you_mean(str(key), allowed)}; "
                                f"allowed: {', '.join(allowed)}")
        values[key] = _check(value, hints[key], key, source)
    defaults = KubernetesSettings()
    for key in KEYED_DEFAULTS:  # a key left out keeps its own default, not some other figure or nothing
        if key in values:
            values[key] = {**getattr(defaults, key), **values[key]}
    settings = KubernetesSettings(**values)
    _validate(settings, source)
    return settings


def _validate(s: KubernetesSettings, source: str) -> None:
    def fail(path: str, expected: str, given: Any) -> typing.NoReturn:
        raise SettingsError(f"{source}: {path}: expected {expected}, got {given!r}")

    if not _DNS_LABEL_RE.match(s.namespace) or len(s.namespace) > 63:
        fail("namespace", "a DNS-1123 label (lower-case letters, digits and '-', at most 63)", s.namespace)
    if not is_label_value(s.instance):  # the app.kubernetes.io/instance label
        fail("instance", _LABEL_VALUE, s.instance)
    _validate_pods(s, fail)
    for key in s.scheduler_annotations:  # annotations of the accelerator pods
        if not is_qualified_key(key):
            fail(f"scheduler_annotations.{key}", f"an annotation key {_KEY}", key)
    for key, value in s.node_selector.items():  # the API server checks a nodeSelector as labels
        if not is_qualified_key(key):
            fail(f"node_selector.{key}", f"a label key {_KEY}", key)
        if not is_label_value(value):
            fail(f"node_selector.{key}", _LABEL_VALUE, value)
    if s.image_pull_policy not in ("Always", "IfNotPresent", "Never"):
        fail("image_pull_policy", "one of Always, IfNotPresent, Never", s.image_pull_policy)
    for stage in s.stage_images:
        if stage not in params.STAGES:
            fail(f"stage_images.{stage}", f"a stage: one of {', '.join(params.STAGES)}", stage)
    keys = set(s.stage_images.values()) | set(s.engine_images.values())
    missing = sorted(k for k in keys | {"cpu"} if k not in s.images)
    if missing:
        fail(f"images.{missing[0]}", "an image reference for every image key in use", None)
    for stage, res in s.resources.items():
        if stage not in params.STAGES:
            fail(f"resources.{stage}", f"a stage: one of {', '.join(params.STAGES)}", stage)
        for kind in res:
            if kind not in ("requests", "limits"):
                fail(f"resources.{stage}.{kind}", "requests or limits", kind)
    for stage in s.active_deadline_seconds:
        if stage not in params.STAGES:
            fail(f"active_deadline_seconds.{stage}", f"a stage: one of {', '.join(params.STAGES)}", stage)
    for cls, n in s.max_running.items():
        if cls != "cpu" and cls not in devices.CATALOGUE:
            fail(f"max_running.{cls}", f"cpu or an accelerator: {', '.join(devices.CATALOGUE)}", cls)
        if n < 1:
            fail(f"max_running.{cls}", "an integer >= 1", n)
    for name in ("max_running_default", "preprocess_parallelism", "log_tail_lines", "watch_timeout_seconds",
                 "api_deadline_seconds"):
        if getattr(s, name) < 1:
            fail(name, "an integer >= 1", getattr(s, name))
    if not _QUANTITY_RE.match(s.scratch_size_limit):
        fail("scratch_size_limit", "a resource quantity such as 20Gi", s.scratch_size_limit)
    min_ttl = max(MIN_TTL_SECONDS, s.api_deadline_seconds)
    if s.ttl_seconds_after_finished < min_ttl:
        fail("ttl_seconds_after_finished", f"at least {min_ttl} seconds (a finished Job must be kept until the "
             "controller has read its pods' logs; MIN_TTL_SECONDS and api_deadline_seconds)",
             s.ttl_seconds_after_finished)
    if s.run_as_user == 0:
        fail("run_as_user", "a non-root UID (not 0)", 0)
    for name, secret_key in s.store_secret_keys.items():
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            fail(f"store_secret_keys.{name}", "an environment variable name", name)
        if not secret_key:
            fail(f"store_secret_keys.{name}", "the key in the Secret", secret_key)
    for i, path in enumerate(s.driver_host_paths):
        if not path.startswith("/"):
            fail(f"driver_host_paths[{i}]", "an absolute path", path)


RESERVED_LABELS = ("app.kubernetes.io/", "ghostbench.io/", "batch.kubernetes.io/", "kueue.x-k8s.io/queue-name",
                   "controller-uid", "job-name")
"""Label keys (and prefixes) ghostbench or the Job controller set: ``pod_labels`` may not set them."""
RESERVED_ANNOTATIONS = ("ghostbench.io/", "batch.kubernetes.io/")


def _validate_pods(s: KubernetesSettings, fail: Callable[[str, str, Any], typing.NoReturn]) -> None:
    """The per-stage and per-accelerator pod fields, the device resources and the queue."""
    keys = f"a stage ({', '.join(params.STAGES)}) or an accelerator ({', '.join(devices.CATALOGUE)})"
    for field in ("priority_class_name", "affinity", "pod_labels", "pod_annotations"):
        for key, value in getattr(s, field).items():
            if key not in params.STAGES and key not in devices.CATALOGUE:
                fail(f"{field}.{key}", keys + registry.did_you_mean(key, [*params.STAGES, *devices.CATALOGUE]), key)
    for key, name in s.priority_class_name.items():
        if len(name) > 253 or not _DNS_SUBDOMAIN_RE.match(name):
            fail(f"priority_class_name.{key}", "a PriorityClass name (a DNS subdomain)", name)
    for key, value in s.affinity.items():
        try:
            objects.check(value, "V1Affinity", f"affinity.{key}")
        except objects.ObjectError as e:
            fail(e.path, e.expected, e.given)
    try:
        objects.check(list(s.tolerations), "List[V1Toleration]", "tolerations")
    except objects.ObjectError as e:
        fail(e.path, e.expected, e.given)
    for field, reserved in (("pod_labels", RESERVED_LABELS), ("pod_annotations", RESERVED_ANNOTATIONS)):
        for key, extra in getattr(s, field).items():
            for k, v in extra.items():
                if not is_qualified_key(k):
                    fail(f"{field}.{key}.{k}", f"a key {_KEY}", k)
                if any(k == r or r.endswith("/") and k.startswith(r) for r in reserved):
                    fail(f"{field}.{key}.{k}", f"a key of your own (ghostbench or Kubernetes sets {k}; the queue is "
                         "queue_name)", k)
                if field == "pod_labels" and not is_label_value(v):
                    fail(f"{field}.{key}.{k}", _LABEL_VALUE, v)
    for acc, entry in s.device_resources.items():
        if acc not in devices.CATALOGUE:
            fail(f"device_resources.{acc}", f"an accelerator: {', '.join(devices.CATALOGUE)}", acc)
        found = device_resources.problem(acc, entry, s.scheduler_name, s.driver_mounts)
        if found is not None:
            fail(f"device_resources.{acc}.{found[0]}", found[1], found[2])
    if not is_label_value(s.queue_name):
        fail("queue_name", "a LocalQueue name (" + _LABEL_VALUE + ")", s.queue_name)
    if s.per_index_backoff not in ("auto", "on", "off"):
        fail("per_index_backoff", "auto, on or off", s.per_index_backoff)


def load_settings(path: str | pathlib.Path | None = None, namespace: str | None = None) -> KubernetesSettings:
    """Settings from a YAML file (None: the defaults), with ``namespace`` overriding the file's."""
    data: Any = {}
    source = "settings"
    if path is not None:
        path = pathlib.Path(path)
        source = str(path)
        try:
            data = yaml.safe_load(path.read_text())
        except FileNotFoundError as e:
            raise SettingsError(f"{path}: no such settings file") from e
        except OSError as e:
            raise SettingsError(f"{path}: cannot read the settings file ({e.strerror})") from e
        except yaml.YAMLError as e:
            raise SettingsError(f"{path}: not valid YAML ({getattr(e, 'problem', None) or e})") from e
    if namespace is not None:
        data = {**(data or {}), "namespace": namespace}
    return parse_settings(data, source)
