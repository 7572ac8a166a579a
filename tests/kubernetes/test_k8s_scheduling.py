"""Scheduling as Ascend clusters do: Volcano's chip in ASCEND_VISIBLE_DEVICES, the device plugin's other resource
names (mixed insertion, static and dynamic vNPU, MIG), Kueue queues (a suspended Job is queued, not running),
priorities, affinity, extra labels and annotations, and shards retried one by one (backoffLimitPerIndex)."""

from __future__ import annotations

import json
import re
import threading

import pytest

from controller import cli, runner
from controller.executors import base
from controller.kubernetes import device_resources, manifests
from controller.kubernetes import executor as k8s_executor
from controller.kubernetes import settings as k8s_settings
from jobs import devices
from jobs import store as store_mod
from jobs.devices import npu_smi
from tests.support.cluster import load_plan, write_settings
from tests.support.manifests import SETTINGS, golden_steps
from tests.support.sweeps import make_sweep


def _job(step: str, **settings):
    return manifests.job("s", golden_steps()[step], k8s_settings.parse_settings({**SETTINGS, **settings}))


def _container(job):
    return job["spec"]["template"]["spec"]["containers"][0]


def _visible(job):
    return [e for e in _container(job)["env"] if e["name"] == npu_smi.VISIBLE_DEVICES_ENV]


# -- Volcano and the device plugin's resource names ----------------------------------------------------------------

@pytest.mark.parametrize("accelerator", [a.name for a in devices.CATALOGUE.values() if a.kind == "npu"])
def test_under_volcano_the_container_sees_the_chip_volcano_chose(accelerator):
    step = golden_steps()["infer-ascend310p3"]
    step = type(step)(**{**step.__dict__, "accelerator": accelerator})
    volcano = k8s_settings.parse_settings({**SETTINGS, "scheduler_name": "volcano"})
    resource = devices.get(accelerator).resource
    env = _visible(manifests.job("s", step, volcano))
    assert env == [{"name": "ASCEND_VISIBLE_DEVICES", "valueFrom": {"fieldRef": {
        "fieldPath": f"metadata.annotations['{resource}']"}}}]
    # the default scheduler: the kubelet allocates and Ascend Docker Runtime sets the variable
    assert _visible(manifests.job("s", step, k8s_settings.parse_settings(SETTINGS))) == []


def test_volcano_annotation_values_are_read_as_chip_ids():
    # what Volcano writes in the annotation (and Ascend Docker Runtime's names) are chips the stage can find
    assert npu_smi.parse_visible_devices("Ascend310P-2") == [2]
    assert npu_smi.parse_visible_devices("Ascend310-0,Ascend310-3") == [0, 3]
    assert npu_smi.parse_visible_devices("npu-5") == [5]


@pytest.mark.parametrize("entry, extra, mode, count", [
    ({"name": "huawei.com/Ascend310P-IPro"}, {"driver_mounts": True}, device_resources.MIXED, "1"),
    ({"name": "huawei.com/Ascend310P-2c"}, {"scheduler_name": "volcano"}, device_resources.STATIC_VNPU, "1"),
    ({"name": "huawei.com/Ascend310P-4c.3cpu.ndvpp"}, {}, device_resources.STATIC_VNPU, "1"),
    ({"name": "huawei.com/npu-core", "count": 4}, {"scheduler_name": "volcano"}, device_resources.DYNAMIC_VNPU, "4"),
    ({"name": "huawei.com/npu"}, {"scheduler_name": "volcano"}, device_resources.WHOLE, "1"),
])
def test_other_resource_names_are_requested_with_the_matching_env(entry, extra, mode, count):
    job = _job("infer-ascend310p3", device_resources={"Ascend310P3": entry}, **extra)
    resources = _container(job)["resources"]
    assert resources["requests"][entry["name"]] == resources["limits"][entry["name"]] == count
    assert "huawei.com/Ascend310P" not in resources["limits"] or entry["name"] == "huawei.com/Ascend310P"
    assert device_resources.classify(entry["name"]) == mode
    if mode == device_resources.WHOLE:  # Volcano's chip, from the annotation named after the resource
        assert _visible(job)[0]["valueFrom"]["fieldRef"]["fieldPath"] == f"metadata.annotations['{entry['name']}']"
    else:  # MindCluster: no ASCEND_VISIBLE_DEVICES field for vNPUs; the plugin sets it in mixed insertion
        assert _visible(job) == []
    assert device_resources.resolve("Ascend310P3", {"Ascend310P3": entry}).slice == (
        mode in (device_resources.STATIC_VNPU, device_resources.DYNAMIC_VNPU))


def test_a_gpu_may_be_a_mig_slice():
    settings = k8s_settings.parse_settings({**SETTINGS, "device_resources": {"nvidia-t4": {
        "name": "nvidia.com/mig-1g.10gb"}}})
    assert device_resources.resolve("nvidia-t4", settings.device_resources).slice


@pytest.mark.parametrize("data, message", [
    ({"device_resources": {"Ascend310P3": {"name": "huawei.com/Ascend910"}}},
     "device_resources.Ascend310P3.name: expected huawei.com/Ascend310P for Ascend310P3"),
    ({"device_resources": {"Ascend310P3": {"name": "huawei.com/Ascend910-2c"}}},
     "device_resources.Ascend310P3.name: expected a static vNPU of Ascend310P3"),
    ({"device_resources": {"Ascend310": {"name": "huawei.com/Ascend310P-IPro"}}},
     "expected a mixed-insertion resource only for Ascend310P3"),
    ({"device_resources": {"Ascend310P3": {"name": "huawei.com/Ascend310P-IPro"}}, "driver_mounts": False},
     "device_resources.Ascend310P3.name: expected driver_mounts: true with a mixed-insertion resource"),
    ({"device_resources": {"Ascend310P3": {"name": "huawei.com/Ascend310P-IPro"}}, "driver_mounts": True,
      "scheduler_name": "volcano"}, "expected no Volcano with a mixed-insertion resource"),
    ({"device_resources": {"Ascend310P3": {"name": "huawei.com/npu-core", "count": 8}}},
     "device_resources.Ascend310P3.name: expected with huawei.com/npu-core (dynamic vNPU), scheduler_name: volcano"),
    ({"device_resources": {"Ascend310P3": {"name": "huawei.com/Ascend310P-2c", "count": 2}}},
     "device_resources.Ascend310P3.count: expected 1 (huawei.com/Ascend310P-2c is requested one per device a step runs on"),
    ({"device_resources": {"Ascend310P3": {"name": "huawei.com/npu-core", "count": 0}},
      "scheduler_name": "volcano"}, "device_resources.Ascend310P3.count: expected an integer >= 1"),
    ({"device_resources": {"Ascend310P3": {"name": "nvidia.com/gpu"}}}, "expected an Ascend resource"),
    ({"device_resources": {"nvidia-t4": {"name": "huawei.com/Ascend310P"}}},
     "device_resources.nvidia-t4.name: expected nvidia.com/gpu or a MIG slice"),
    ({"device_resources": {"Ascend310P3": {"resource": "huawei.com/Ascend310P"}}},
     "device_resources.Ascend310P3.resource: expected name or count"),
    ({"device_resources": {"Ascend320": {"name": "huawei.com/Ascend310P"}}},
     "device_resources.Ascend320: expected an accelerator"),
    ({"pod_labels": {"infer": {"app.kubernetes.io/name": "x"}}},
     "pod_labels.infer.app.kubernetes.io/name: expected a key of your own"),
    ({"pod_labels": {"infer": {"kueue.x-k8s.io/queue-name": "q"}}}, "the queue is queue_name"),
    ({"pod_labels": {"infer": {"team": "two words"}}}, "pod_labels.infer.team: expected a label value"),
    ({"pod_labels": {"inference": {"team": "perf"}}}, "pod_labels.inference: expected a stage"),
    ({"pod_annotations": {"eval": {"ghostbench.io/title": "x"}}}, "pod_annotations.eval.ghostbench.io/title"),
    ({"priority_class_name": {"infer": "High_Priority"}}, "priority_class_name.infer: expected a PriorityClass"),
    ({"affinity": {"Ascend310P3": {"nodeAfinity": {}}}},
     "affinity.Ascend310P3.nodeAfinity: expected a field of Affinity: nodeAffinity, podAffinity, podAntiAffinity"),
    ({"affinity": {"infer": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"operator": "NotIn", "values": ["soc"]}]}]}}}}},
     "affinity.infer.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
     ".matchExpressions[0].key: expected a value (required)"),
    ({"tolerations": [{"key": "x", "operator": "Exists", "effect": "NoSchedule", "tolerationSecond": 5}]},
     "tolerations[0].tolerationSecond: expected a field of Toleration"),
    ({"queue_name": "a queue"}, "queue_name: expected a LocalQueue name"),
    ({"per_index_backoff": "yes"}, "per_index_backoff: expected auto, on or off"),
])
def test_scheduling_settings_errors_name_the_field(data, message):
    with pytest.raises(k8s_settings.SettingsError, match=re.escape(message)):
        k8s_settings.parse_settings(data, "settings.yaml")


# -- queues, priority, affinity, labels ---------------------------------------------------------------------------

def test_stage_and_accelerator_entries_reach_their_pods_only():
    extra = {"queue_name": "benchmarks", "priority_class_name": {"infer": "infer-mid", "Ascend310P3": "npu-high"},
             "affinity": {"Ascend310P3": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                 "nodeSelectorTerms": [{"matchExpressions": [
                     {"key": "servertype", "operator": "NotIn", "values": ["soc"]}]}]}}}},
             "pod_labels": {"infer": {"team": "perf", "tier": "infer"}, "Ascend310P3": {"tier": "npu"}},
             "pod_annotations": {"Ascend310P3": {"example.com/note": "npu"}}}
    npu, cpu, export = (_job(name, **extra) for name in ("infer-ascend310p3", "infer-cpu", "export"))
    for job in (npu, cpu, export):  # every Job goes through the queue; pods carry no queue label
        assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "benchmarks"
        assert "kueue.x-k8s.io/queue-name" not in job["spec"]["template"]["metadata"]["labels"]
    pod = npu["spec"]["template"]
    assert pod["spec"]["priorityClassName"] == "npu-high"  # the accelerator's entry wins over its stage's
    assert pod["spec"]["affinity"]["nodeAffinity"]
    assert pod["metadata"]["labels"]["team"] == "perf" and pod["metadata"]["labels"]["tier"] == "npu"
    assert npu["metadata"]["labels"]["tier"] == "npu"
    assert pod["metadata"]["annotations"]["example.com/note"] == "npu" == npu["metadata"]["annotations"][
        "example.com/note"]
    cpu_pod = cpu["spec"]["template"]
    assert cpu_pod["spec"]["priorityClassName"] == "infer-mid" and "affinity" not in cpu_pod["spec"]
    assert cpu_pod["metadata"]["labels"]["tier"] == "infer" and "annotations" not in cpu_pod["metadata"]
    assert "priorityClassName" not in export["spec"]["template"]["spec"]
    assert "team" not in export["metadata"]["labels"]


@pytest.mark.parametrize("setting, server, expected", [
    ("auto", None, False), ("auto", (1, 30), False), ("auto", (1, 33), True), ("auto", (2, 0), True),
    ("on", None, True), ("off", (1, 35), False),
])
def test_per_index_backoff_where_the_cluster_has_it(setting, server, expected):
    settings = k8s_settings.parse_settings({"per_index_backoff": setting})
    assert manifests.per_index(settings, server) is expected


def test_a_per_index_job_retries_each_shard_on_its_own():
    settings = k8s_settings.parse_settings({**SETTINGS, "backoff_limit": 3, "max_failed_shards": 2})
    step = golden_steps()["preprocess"]
    spec = manifests.job("s", step, settings, per_index_backoff=True)["spec"]
    assert spec["backoffLimitPerIndex"] == 3 and spec["maxFailedIndexes"] == 2 and "backoffLimit" not in spec
    assert spec["podFailurePolicy"]["rules"][0]["action"] == "FailIndex"
    # steps that are not shards keep one backoffLimit, whatever the cluster
    infer = manifests.job("s", golden_steps()["infer-cpu"], settings, per_index_backoff=True)["spec"]
    assert infer["backoffLimit"] == 3 and "backoffLimitPerIndex" not in infer
    assert infer["podFailurePolicy"]["rules"][0]["action"] == "FailJob"


# -- on the fake cluster ---------------------------------------------------------------------------------------------

def test_a_bad_shard_fails_alone_where_the_cluster_retries_per_index(tmp_path, cluster, capsys):
    # Kubernetes 1.33: shard 2 of 2 has an image no decoder takes (exit 2, FailIndex); shard 1 still finishes
    cluster.version = (1, 33)
    spec_path = make_sweep(tmp_path, corrupt="ILSVRC2012_val_00000012.JPEG")
    settings = write_settings(tmp_path, preprocess_parallelism=1)
    assert cli.main(["run", str(spec_path), "--executor", "kubernetes", "--settings", str(settings)]) == 1
    plan = load_plan(spec_path)
    names = sorted({manifests.job_name(plan.sweep, s) for s in plan.steps if s.stage == "preprocess"})
    for name in names:
        job = cluster.job(name)
        assert job["spec"]["backoffLimitPerIndex"] == 2
        assert job["status"]["completedIndexes"] == "0" and job["status"]["failedIndexes"] == "1"
        assert job["status"]["failed"] == 1  # FailIndex: exit 2 is not retried
    status = json.loads((tmp_path / "store" / "sweeps" / "s" / "status.json").read_text())
    by_title = {s["title"]: s for s in status["steps"].values()}
    assert by_title["preprocess float32 shard 1/2"]["state"] == "done"
    failed = by_title["preprocess float32 shard 2/2"]
    assert failed["state"] == "failed" and "index 1 failed (backoffLimitPerIndex)" in failed["reason"]
    assert failed["exit_code"] == 2 and "cannot be used" in failed["log_tail"]


def test_a_job_kueue_holds_is_queued_until_admitted(tmp_path, cluster):
    cluster.kueue = True
    spec_path = make_sweep(tmp_path, targets=[{"name": "null-f32", "backend": "null", "batch_sizes": [1]}], shards=1)
    settings = k8s_settings.load_settings(write_settings(tmp_path, queue_name="benchmarks"))
    plan = load_plan(spec_path)
    store = store_mod.open_store(str(tmp_path / "store"))
    executor = k8s_executor.KubernetesExecutor(store, sweep=plan.sweep, settings=settings, notify=lambda text: None)
    queued = threading.Event()
    seen_queued: set[str] = set()

    def on_change(statuses, event):  # lets the admitter go on once the runner has shown a step queued
        for key, st in statuses.items():
            if st.state == runner.QUEUED:
                seen_queued.add(key)
                queued.set()

    def admit_each():
        for step in plan.steps:
            queued.wait(timeout=120)
            queued.clear()
            name = manifests.job_name(plan.sweep, step)
            cluster.wait_for(lambda c: (c.job(name) or {}).get("spec", {}).get("suspend") is True)
            cluster.admit(name)

    admitter = threading.Thread(target=admit_each, daemon=True)
    admitter.start()
    try:
        result = runner.run(plan, store, executor, on_change=on_change, poll_s=0.05)
    finally:
        executor.close()
    admitter.join(timeout=10)
    assert result.ok
    assert seen_queued == {s.key for s in plan.steps}  # each step was queued before it ran
    for name in cluster.job_names():  # every Job went through the queue, suspended at first
        job = cluster.job(name)
        assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "benchmarks"
        assert job["spec"]["suspend"] is False, (name, [manifests.job_name(plan.sweep, s) for s in plan.steps], job["status"])


def test_a_queued_step_is_noted_queued_and_goes_back_to_running():
    st = runner.StepStatus(runner.RUNNING, "infer", "infer", "o", "o.log")
    statuses, running, shown = {"k": st}, {"k": 0.0}, {}
    why = "queued in Kueue LocalQueue 'q' (its Job j is suspended until admitted)"
    line = runner._note_waiting(statuses, running, {"k": base.Waiting(why, why + "; 5s so far", queued=True)}, shown)
    assert st.state == runner.QUEUED and "queued in Kueue LocalQueue 'q'" in line
    assert runner._note_waiting(statuses, running, {}, shown) == ""  # admitted: running again, no new cause
    assert st.state == runner.RUNNING and st.waiting == ""


def test_paths_of_this_machine_are_noted_once_each(tmp_path):
    # a pod sees none of the planning machine's paths: each one a step reads is said once, before its Job starts
    plan = load_plan(make_sweep(tmp_path))
    assert all(manifests.local_inputs(s) == [] for s in golden_steps().values())  # s3:// and https:// inputs
    preprocess = next(s for s in plan.steps if s.stage == "preprocess")
    assert manifests.local_inputs(preprocess) == [str(tmp_path / "images"), str(tmp_path / "images" / "val_label.txt")]
    notes: list[str] = []

    class _Api:
        def server_version(self):
            return None

        def create_job(self, body):
            return {**body, "metadata": {**body["metadata"], "uid": body["metadata"]["name"]}, "status": {}}

        def interrupt_watches(self):
            pass

    executor = k8s_executor.KubernetesExecutor(store_mod.open_store(str(tmp_path / "s3-like")), sweep=plan.sweep,
                                               api=_Api(), notify=notes.append)
    executor._ensure_watching = lambda: None  # (no watch: only what start() says matters here)
    for step in (s for s in plan.steps if s.stage == "preprocess"):
        executor.start(step)
    said = [n for n in notes if "a path on this machine" in n]
    assert len(said) == 2 and all("give an s3:// or https:// URI on a cluster" in n for n in said)
