"""Job manifests: golden files, Kubernetes schema validation, names, labels, secrets, settings.

The golden files in tests/golden/manifests/ change only on purpose:

    python -m tests.kubernetes.test_manifests --regenerate

(never in CI: the tests compare, they do not write).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import pathlib
import re
import subprocess
import sys

import pytest
import yaml

from controller import cli
from controller import plan as plan_mod
from controller import spec as spec_mod
from controller.kubernetes import manifests
from controller.kubernetes import settings as k8s_settings
from jobs import devices
from tests.support.manifests import PER_INDEX_GOLDENS, SETTINGS_VOLCANO_DRIVER, golden_documents, golden_steps
from tests.support.paths import GOLDEN_MANIFESTS, REPO_ROOT

EXAMPLES = sorted(p for p in (REPO_ROOT / "examples").glob("*.yaml") if not p.name.endswith(".local.yaml"))
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@pytest.mark.parametrize("name", sorted(golden_documents()))
def test_golden(name):
    path = GOLDEN_MANIFESTS / name
    assert path.exists(), f"{path} is missing: python -m tests.kubernetes.test_manifests --regenerate"
    assert golden_documents()[name] == path.read_text(), (
        f"{name} differs from what manifests.py renders; if the change is intended: "
        "python -m tests.kubernetes.test_manifests --regenerate, and review the diff")


def test_golden_files_are_all_generated():
    assert sorted(p.name for p in GOLDEN_MANIFESTS.glob("*.yaml")) == sorted(golden_documents())


def test_golden_manifests_show_the_essentials():
    docs = {name: yaml.safe_load(text) for name, text in golden_documents().items()}
    ascend = devices.get("Ascend310P3")
    npu = docs["infer-ascend310p3.yaml"]["spec"]["template"]["spec"]
    res = npu["containers"][0]["resources"]
    assert res["requests"][ascend.resource] == res["limits"][ascend.resource] == "1"
    assert npu["nodeSelector"] == ascend.node_selector and "schedulerName" not in npu
    assert not any("hostPath" in v for v in npu["volumes"])
    driver = docs["infer-ascend310p3-volcano-driver-mounts.yaml"]["spec"]["template"]
    assert driver["spec"]["schedulerName"] == "volcano"
    assert driver["metadata"]["annotations"] == {"scheduling.volcano.sh/queue-name": "npu"}
    assert {v["hostPath"]["path"] for v in driver["spec"]["volumes"] if "hostPath" in v} == set(
        k8s_settings.ASCEND_DRIVER_PATHS)
    assert all(m.get("readOnly") for m in driver["spec"]["containers"][0]["volumeMounts"] if "ascend" in m["name"])
    cpu = docs["infer-cpu.yaml"]["spec"]["template"]["spec"]
    assert "nodeSelector" not in cpu and "tolerations" not in cpu
    assert cpu["containers"][0]["resources"]["requests"] == cpu["containers"][0]["resources"]["limits"]
    assert docs["convert-atc.yaml"]["spec"]["template"]["spec"]["containers"][0]["image"].endswith("/atc:0.1.0")
    pre = docs["preprocess.yaml"]["spec"]
    assert (pre["completionMode"], pre["completions"], pre["parallelism"]) == ("Indexed", 8, 4)
    args = pre["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--shard") + 1] == "$(JOB_COMPLETION_INDEX)"
    for job in docs.values():
        spec = job["spec"]
        pod = spec["template"]["spec"]
        container = pod["containers"][0]
        assert container["command"] == ["python"] and container["args"][:2] == ["-m", f"jobs.stages.{job['metadata']['labels']['app.kubernetes.io/component']}"]
        assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["seccompProfile"] == {
            "type": "RuntimeDefault"}
        assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                                "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
        assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/tmp", "/home/ghostbench"}
        fail_job, ignore = spec["podFailurePolicy"]["rules"]
        per_index = "backoffLimitPerIndex" in spec  # (a shard's bad input fails its index alone)
        assert fail_job["action"] == ("FailIndex" if per_index else "FailJob") and 2 in fail_job["onExitCodes"]["values"]
        assert ignore == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
        assert spec["backoffLimitPerIndex" if per_index else "backoffLimit"] >= 0
        assert spec["activeDeadlineSeconds"] > 0 and spec["ttlSecondsAfterFinished"] > 0


def test_all_shards_of_a_root_are_one_indexed_job():
    spec = spec_mod.load(REPO_ROOT / "examples" / "seed-ascend310p.yaml")
    plan = plan_mod.make_plan(spec)
    settings = k8s_settings.KubernetesSettings()
    shards = [s for s in plan.steps if s.stage == "preprocess"]
    assert len(shards) == spec.dataset.shards > 1
    jobs = [manifests.job(plan.sweep, s, settings) for s in shards]
    assert all(j == jobs[0] for j in jobs)  # whichever shard builds it
    assert [manifests.shard_index(s) for s in shards] == list(range(spec.dataset.shards))
    assert sum(j["metadata"]["name"].split("-")[-2] == "preprocess" for j in manifests.jobs_for(plan, settings)) == 1


@pytest.fixture(scope="module")
def rendered_examples(tmp_path_factory) -> list[tuple[pathlib.Path, dict]]:
    """``ghostbench manifests`` for every example sweep, with the default and with feature-rich settings:
    (file, settings) pairs."""
    tmp_path = tmp_path_factory.mktemp("manifests")
    files = []
    for i, settings in enumerate(({}, SETTINGS_VOLCANO_DRIVER)):
        settings_file = tmp_path / f"settings-{i}.yaml"
        settings_file.write_text(yaml.safe_dump(settings))
        for example in EXAMPLES:
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
                assert cli.main(["manifests", str(example), "--settings", str(settings_file)]) == 0
            path = tmp_path / f"{example.stem}-{i}.yaml"
            path.write_text(out.getvalue())
            files.append((path, settings))
    return files


def test_every_manifest_validates_strictly_for_the_oldest_and_newest_kubernetes(rendered_examples):
    pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (the test extra)")
    newer = [str(GOLDEN_MANIFESTS / name) for name in PER_INDEX_GOLDENS]
    files = [*(str(p) for p in sorted(GOLDEN_MANIFESTS.glob("*.yaml")) if str(p) not in newer),
             *(str(path) for path, _ in rendered_examples)]
    since = ".".join(map(str, manifests.PER_INDEX_SINCE)) + ".0"
    runs = [(version, files) for version in manifests.KUBERNETES_VERSIONS] + [(since, newer)]
    # one process per version, at the same time
    procs = [subprocess.Popen([sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", "-k", version,
                               *names], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for version, names in runs]
    for proc in procs:
        output = proc.communicate()[0]
        assert proc.returncode == 0 and not output.strip(), output


def test_names_labels_and_secrets_of_every_example_job(rendered_examples):
    for path, settings in rendered_examples:
        for job in yaml.safe_load_all(path.read_text()):
            name = job["metadata"]["name"]
            assert len(name) <= manifests.MAX_NAME <= 63 and DNS_LABEL.match(name), name
            labels = job["metadata"]["labels"]
            assert {f"app.kubernetes.io/{k}" for k in ("name", "instance", "component", "part-of", "managed-by",
                                                       "version")} <= set(labels)
            assert labels[manifests.SWEEP_LABEL] and labels[manifests.STEP_LABEL]
            assert job["spec"]["template"]["metadata"]["labels"] == labels
            for value in labels.values():
                assert len(value) <= 63 and re.match(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", value)
            container = job["spec"]["template"]["spec"]["containers"][0]
            for var in container["env"]:  # credentials only by reference, never as values
                assert "value" not in var or not re.search(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY", var["name"]), var
            refs = {v["name"]: v["valueFrom"]["secretKeyRef"] for v in container["env"]
                    if "secretKeyRef" in v.get("valueFrom", {})}
            if "store_secret" in settings:
                assert set(refs) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
            else:
                assert not refs


def test_job_names_are_deterministic_dns_labels_even_for_long_sweep_names():
    step = golden_steps()["preprocess"]
    long_a, long_b = "a" * 39 + "x", "a" * 39 + "y"  # 40 characters, the longest sweep name
    names = {manifests.job_name(s, step) for s in (long_a, long_b)}
    assert len(names) == 2
    for name in names:
        assert len(name) <= manifests.MAX_NAME and DNS_LABEL.match(name)
        assert len(f"{name}-{7}") <= 63  # an Indexed Job's pod hostname
    assert manifests.job_name(long_a, step) == manifests.job_name(long_a, step)
    assert manifests.job_name("v1.2.sweep", step) == "v1-2-sweep-preprocess-2222222222222222"


@pytest.mark.parametrize("data, message", [
    ({"namepsace": "x"}, "namepsace: unknown field (did you mean 'namespace'?)"),
    ({"namespace": "Not_DNS"}, "namespace: expected a DNS-1123 label"),
    ({"resources": {"infer": {"requests": {"cpu": "four"}}}}, "resources.infer.requests.cpu: expected a resource quantity"),
    ({"resources": {"train": {}}}, "resources.train: expected a stage"),
    ({"max_running": {"tpu": 1}}, "max_running.tpu: expected cpu or an accelerator"),
    ({"max_running": {"cpu": 0}}, "max_running.cpu: expected an integer >= 1"),
    ({"run_as_user": 0}, "run_as_user: expected a non-root UID"),
    ({"stage_images": {"eval": "gpu"}}, "images.gpu: expected an image reference"),
    ({"backoff_limit": "2"}, "backoff_limit: expected an integer >= 0"),
    ({"driver_mounts": "yes"}, "driver_mounts: expected true or false"),
    ({"tolerations": {"key": "x"}}, "tolerations: expected a list"),
    ({"image_pull_policy": "Sometimes"}, "image_pull_policy: expected one of Always, IfNotPresent, Never"),
    # a Job deleted as it finishes takes its pods' logs with it, before the controller reads them
    ({"ttl_seconds_after_finished": 0}, "ttl_seconds_after_finished: expected at least 3600 seconds"),
    ({"ttl_seconds_after_finished": 3599}, "ttl_seconds_after_finished: expected at least 3600 seconds"),
    ({"api_deadline_seconds": 7200, "ttl_seconds_after_finished": 3600},
     "ttl_seconds_after_finished: expected at least 7200 seconds"),
])
def test_settings_errors_name_the_field(data, message):
    with pytest.raises(k8s_settings.SettingsError, match=re.escape(message)):
        k8s_settings.parse_settings(data, "settings.yaml")


def test_settings_file(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump({"namespace": "bench", "resources": {"infer": {"requests": {"cpu": 8},
                                                                                   "limits": {"cpu": 8}}}}))
    settings = k8s_settings.load_settings(path, namespace="other")
    assert settings.namespace == "other" and settings.resources["infer"]["requests"]["cpu"] == "8"
    with pytest.raises(k8s_settings.SettingsError, match="no such settings file"):
        k8s_settings.load_settings(tmp_path / "missing.yaml")


def test_a_deadline_left_out_keeps_its_stage_default():
    # {export: 600} once gave infer (4 h by default) the 1 h fallback of manifests.job
    settings = k8s_settings.parse_settings({"active_deadline_seconds": {"export": 600}})
    defaults = k8s_settings.KubernetesSettings().active_deadline_seconds
    assert settings.active_deadline_seconds == {**defaults, "export": 600}
    job = manifests.job("s", golden_steps()["infer-cpu"], settings)
    assert job["spec"]["activeDeadlineSeconds"] == defaults["infer"] == 4 * 3600


def test_resources_and_images_left_out_keep_their_defaults():
    # {infer: ...} once left export, convert, preprocess and eval with no requests at all, and {cpu: ...} left an
    # accelerator step without an image (a KeyError building its Job)
    settings = k8s_settings.parse_settings({"resources": {"infer": {"requests": {"cpu": "8"}}},
                                            "images": {"cpu": "registry.example/ghostbench/cpu:1"}})
    defaults = k8s_settings.KubernetesSettings()
    assert settings.resources == {**defaults.resources, "infer": {"requests": {"cpu": "8"}}}
    assert settings.images == {**defaults.images, "cpu": "registry.example/ghostbench/cpu:1"}
    steps = golden_steps()
    assert manifests.job("s", steps["infer-cpu"], settings)["spec"]["template"]["spec"]["containers"][0][
        "resources"] == {"requests": {"cpu": "8"}}
    export = next(s for s in steps.values() if s.stage == "export")
    assert manifests.job("s", export, settings)["spec"]["template"]["spec"]["containers"][0]["resources"][
        "requests"] == {k: str(v) for k, v in defaults.resources["export"]["requests"].items()}
    npu = next(s for s in steps.values() if s.accelerator)
    assert manifests.job("s", npu, settings)["spec"]["template"]["spec"]["containers"][0]["image"] == \
        defaults.images[manifests.image_key(npu, settings)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.kubernetes.test_manifests",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--regenerate", action="store_true", help="rewrite tests/golden/manifests/*.yaml")
    args = parser.parse_args(argv)
    if not args.regenerate:
        parser.print_help()
        return 2
    GOLDEN_MANIFESTS.mkdir(parents=True, exist_ok=True)
    docs = golden_documents()
    for stale in {p.name for p in GOLDEN_MANIFESTS.glob("*.yaml")} - set(docs):
        (GOLDEN_MANIFESTS / stale).unlink()
    for name, text in docs.items():
        (GOLDEN_MANIFESTS / name).write_text(text)
        print(f"wrote {GOLDEN_MANIFESTS.relative_to(REPO_ROOT) / name}", file=sys.stderr)
    print(json.dumps(sorted(docs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
