"""The Kubernetes executor against a test double of the API server (tests/support/k8s_fake.py).

The official ``kubernetes`` client talks HTTP to the fake, which runs each Job's pods as local
processes; the sweeps use the null backend and a file store (the "pods" run on this machine).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import types

import pytest
import yaml

pytest.importorskip("kubernetes", reason="the Kubernetes tests need the client: pip install 'ghostbench[kubernetes]'")

from controller import cli, runner
from controller import plan as plan_mod
from controller import spec as spec_mod
from controller.kubernetes import api as k8s_api
from controller.kubernetes import executor as k8s_executor
from controller.kubernetes import jobstatus, manifests
from controller.kubernetes import settings as k8s_settings
from jobs import params
from jobs import store as store_mod
from jobs.tools import fake_imagenet
from tests.support.cluster import NAMESPACE, SECRET_VALUE, load_plan, write_settings
from tests.support.paths import REPO_ROOT
from tests.support.sweeps import make_sweep


def job_names(plan, stage=None):
    return sorted({manifests.job_name(plan.sweep, s) for s in plan.steps if stage in (None, s.stage)})


def test_sweep_runs_as_jobs(tmp_path, cluster, capsys):
    spec_path = make_sweep(tmp_path)
    settings = write_settings(tmp_path)
    assert cli.main(["run", str(spec_path), "--executor", "kubernetes", "--settings", str(settings)]) == 0
    plan = load_plan(spec_path)
    store_dir = tmp_path / "store"
    status = json.loads((store_dir / "sweeps" / "s" / "status.json").read_text())
    assert status["state"] == "succeeded" and set(status["counts"]) == {"done"}
    assert len(json.loads((store_dir / "sweeps" / "s" / "report.json").read_text())["runs"]) == 3
    # one Job per step, the preprocessing shards of a mode in one Indexed Job; each created once
    assert sorted(cluster.creates) == job_names(plan) and set(cluster.creates.values()) == {1}
    assert len(cluster.creates) == 6
    for name in job_names(plan, "preprocess"):
        job = cluster.job(name)
        assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 2
        assert job["status"]["completedIndexes"] == "0-1"
    # every step's log is copied into the store next to its output
    for step in plan.steps:
        assert "committed" in (store_dir / step.log).read_text()
    # pods got the store settings from the ConfigMap and the credentials from the Secret ...
    envs = list(cluster.pod_env.values())
    assert len(envs) == 8 and all(e["AWS_SECRET_ACCESS_KEY"] == SECRET_VALUE and e["AWS_DEFAULT_REGION"] == "us-test-1"
                                  for e in envs)
    # ... which never appears in a Job
    assert SECRET_VALUE not in json.dumps([cluster.job(n) for n in cluster.job_names()])

    # `ghostbench manifests` prints exactly the Jobs that were submitted
    capsys.readouterr()
    assert cli.main(["manifests", str(spec_path), "--settings", str(settings)]) == 0
    printed = {d["metadata"]["name"]: d for d in yaml.safe_load_all(capsys.readouterr().out)}
    assert sorted(printed) == job_names(plan)
    for name, doc in printed.items():
        assert cluster.job(name)["spec"]["template"] == doc["spec"]["template"]

    # `ghostbench cancel` deletes the sweep's Jobs
    assert cli.main(["cancel", "s", "--settings", str(settings)]) == 0
    assert sorted(capsys.readouterr().out.split()) == job_names(plan)
    assert cluster.job_names() == []


def test_failed_job_blocks_dependents_and_is_recorded_then_rerun(tmp_path, cluster, capsys):
    # The last image (shard 2 of 2) cannot be decoded: the stage exits 2 (bad input), and the pod
    # failure policy fails the Job at once, without retries. One pod at a time: shard 1 finishes first.
    spec_path = make_sweep(tmp_path, corrupt="ILSVRC2012_val_00000012.JPEG")
    settings = write_settings(tmp_path, preprocess_parallelism=1, backoff_limit=3)
    assert cli.main(["run", str(spec_path), "--executor", "kubernetes", "--settings", str(settings)]) == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "preprocess float32 shard 2/2" in err
    status = json.loads((tmp_path / "store" / "sweeps" / "s" / "status.json").read_text())
    by_title = {s["title"]: s for s in status["steps"].values()}
    failed = by_title["preprocess float32 shard 2/2"]
    assert failed["state"] == "failed" and failed["exit_code"] == 2
    assert "failed (PodFailurePolicy)" in failed["reason"] and "exit code 2" in failed["reason"]
    assert "cannot be used" in failed["log_tail"] and "ILSVRC2012_val_00000012.JPEG" in failed["log_tail"]
    assert by_title["preprocess float32 shard 1/2"]["state"] == "done"
    assert by_title["preprocess uint8 shard 1/2"]["state"] == "done"
    assert by_title["preprocess uint8 shard 2/2"]["state"] == "failed"  # the same image set
    for title in ("infer null-f32 bs1", "infer null-f32 bs4", "infer null-u8 bs4", "eval"):
        assert by_title[title]["state"] == "blocked"
    plan = load_plan(spec_path)
    # the dependents of the failures were never submitted
    assert sorted(cluster.creates) == job_names(plan, "preprocess")
    # exit code 2 is not retried: one pod ran for the failing index
    for name in job_names(plan, "preprocess"):
        assert cluster.job(name)["status"]["failed"] == 1
        assert cluster.job(name)["status"]["completedIndexes"] == "0"
    preprocess = job_names(plan, "preprocess")[0]

    # Fixed input: the rerun replaces the failed Job (its output is not in the store) and finishes.
    fake_imagenet.make_image_set(tmp_path / "fixed", count=12, seed=5)
    (tmp_path / "images" / "ILSVRC2012_val_00000012.JPEG").write_bytes(
        (tmp_path / "fixed" / "ILSVRC2012_val_00000012.JPEG").read_bytes())
    assert cli.main(["run", str(spec_path), "--executor", "kubernetes", "--settings", str(settings)]) == 0
    assert cluster.deletes[preprocess] == 1 and cluster.creates[preprocess] == 2


def test_restarted_controller_adopts_running_jobs(tmp_path, cluster, capfd):
    spec_path = make_sweep(tmp_path)
    settings = write_settings(tmp_path)
    plan = load_plan(spec_path)
    infers = job_names(plan, "infer")
    cluster.hold(lambda job: job["metadata"]["labels"].get("app.kubernetes.io/component") == "infer")
    argv = ["run", str(spec_path), "--executor", "kubernetes", "--settings", str(settings)]
    controller = subprocess.Popen([sys.executable, "-m", "controller.cli", *argv], cwd=REPO_ROOT,
                                  start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        cluster.wait_for(lambda c: all(c.creates[n] for n in infers))  # submitted, held before any pod runs
    finally:
        os.killpg(controller.pid, signal.SIGKILL)
        controller.wait()
    status = json.loads((tmp_path / "store" / "sweeps" / "s" / "status.json").read_text())
    assert status["state"] == "running"  # what a killed controller leaves behind

    result: list[int] = []
    restarted = threading.Thread(target=lambda: result.append(cli.main(argv)))
    restarted.start()
    cluster.wait_for(lambda c: all(c.conflicts[n] for n in infers))  # it found them ...
    for name in infers:  # ... and only now do they run
        cluster.release(name)
    restarted.join()
    assert result == [0]
    assert set(cluster.creates.values()) == {1} and sorted(cluster.creates) == job_names(plan)
    assert capfd.readouterr().err.count("adopted running Job") == len(infers)


def test_dropped_watch_and_gone_are_recovered(tmp_path, cluster):
    spec_path = make_sweep(tmp_path)
    spec = spec_mod.load(spec_path)
    store = store_mod.open_store(spec.store)
    plan = plan_mod.make_plan(spec, store.uri)
    cluster.drop_next_watch()  # the first watch is cut before it delivers anything ...
    cluster.expire_next_watch()  # ... the resumed one is told its version is gone
    slept: list[float] = []
    api = k8s_api.Api.for_host(cluster.url, NAMESPACE)
    executor = k8s_executor.KubernetesExecutor(
        store, sweep=plan.sweep, settings=k8s_settings.load_settings(write_settings(tmp_path)), api=api,
        sleep=slept.append, notify=lambda text: None)
    try:
        result = runner.run(plan, store, executor)
    finally:
        executor.close()
        api.close()
    assert result.ok
    assert cluster.dropped == 1 and cluster.expired == 1
    # after the drop: the same version again, after a backoff (fake time), no new list
    assert cluster.watch_versions[1] == cluster.watch_versions[0] and slept == [0.5]
    # after the 410: a new list, and a watch from its newer version
    assert executor.stats["gone"] == 1 and executor.stats["lists"] == 2 and cluster.lists == 2
    assert int(cluster.watch_versions[2]) > int(cluster.watch_versions[0])


class _Unreachable:
    """An API whose server stopped answering after the Job was created."""

    def __init__(self):
        self.created = []

    def create_job(self, body):
        self.created.append(body)
        return {**body, "metadata": {**body["metadata"], "uid": "u1"}, "status": {}}

    def list_jobs(self, selector, retry=True):
        raise k8s_api.ApiError("list Jobs: connection refused")

    def list_pods(self, selector, retry=True):
        raise k8s_api.ApiError("list Pods: connection refused")

    def server_version(self):
        return None

    def interrupt_watches(self):
        pass


def test_api_deadline_fails_the_waiting_steps_in_fake_time(tmp_path):
    now = [0.0]
    slept = []

    def sleep(seconds):  # fake time: sleeping moves the clock
        slept.append(seconds)
        now[0] += seconds

    spec_path = make_sweep(tmp_path)
    plan = load_plan(spec_path)
    step = next(s for s in plan.steps if s.stage == "eval")
    executor = k8s_executor.KubernetesExecutor(
        store_mod.open_store(tmp_path / "store"), sweep=plan.sweep,
        settings=k8s_settings.parse_settings({"api_deadline_seconds": 60}), api=_Unreachable(), sleep=sleep,
        clock=lambda: now[0], notify=lambda text: None)
    executor.start(step)
    ended = executor.wait(timeout=60)  # returns as soon as the watch thread gives up (no real waiting)
    executor.close()
    assert [s.key for s, _ in ended] == [step.key]
    outcome = ended[0][1]
    assert outcome.exit_code is None and "no answer from the API server" in outcome.reason
    assert slept[:8] == [0.5, 1, 2, 4, 8, 16, 30, 30]  # the backoff, in fake time


def test_jobs_at_once_are_bounded_per_device_class(tmp_path):
    plan = load_plan(make_sweep(tmp_path))
    executor = k8s_executor.KubernetesExecutor(
        store_mod.open_store(tmp_path / "store"), sweep=plan.sweep,
        settings=k8s_settings.parse_settings({"max_running": {"cpu": 2, "Ascend310P3": 1}}), api=_Unreachable(),
        notify=lambda text: None)
    shard0, shard1 = [s for s in plan.steps if s.stage == "preprocess"][:2]
    infers = [s for s in plan.steps if s.stage == "infer"]
    assert executor.can_start(infers[0], [shard0, shard1])  # two shards are one Job
    assert not executor.can_start(infers[0], [shard0, infers[1]])
    npu = [plan_mod.Step(f"k{i}", params.InferParams(data="x/data", backend="acl", device="npu:0", batch_size=1,
                                                      out=f"x/k{i}"), f"npu {i}", f"artifacts/infer/k{i}",
                         accelerator="Ascend310P3") for i in range(2)]
    assert executor.can_start(npu[0], [shard0, infers[1]])  # another class
    assert not executor.can_start(npu[1], [npu[0]])
    executor.max_parallel = 2
    assert not executor.can_start(npu[0], [shard0, infers[1]])  # --jobs caps all classes together
    executor.close()


class _PodsGone:
    """An API on which each Job has ended by the time it is created, and its pods are gone (a TTL of 0 deleted
    the Job) or its log cannot be read (``log_error``)."""

    def __init__(self, log_error=None):
        self.log_error = log_error
        self.events = queue.Queue()

    def server_version(self):
        return (1, 33)

    def create_job(self, body, **kwargs):
        name = body["metadata"]["name"]
        job = {**body, "metadata": {**body["metadata"], "uid": f"u-{name}"},
               "status": {"conditions": [{"type": "Complete", "status": "True"}]}}
        self.events.put(types.SimpleNamespace(type="ADDED", object=job, resource_version="2"))
        return job

    def list_jobs(self, selector, **kwargs):
        return [], "1"

    def watch_jobs(self, selector, version, timeout, **kwargs):
        while (event := self.events.get()) is not None:  # None: close()
            yield event

    def get_job(self, name, **kwargs):
        return None

    def list_pods(self, selector, **kwargs):
        if self.log_error is None:
            return []
        return [{"metadata": {"name": f"pod-{i}", "ownerReferences": [{"uid": uid}],
                              "annotations": {manifests.COMPLETION_INDEX_ANNOTATION: str(i)}},
                 "status": {"phase": "Succeeded"}} for uid in self.uids for i in range(2)]

    def read_pod_log(self, name, container, **kwargs):
        raise self.log_error

    def interrupt_watches(self):
        self.events.put(None)


@pytest.mark.parametrize("log_error, why", [
    (None, "no pod of Job"),
    (k8s_api.ApiError("read the log of pod x: 404 Not Found", status=404), "reading the log of pod"),
], ids=["pod-deleted", "log-unreadable"])
def test_a_log_that_could_not_be_kept_is_said_so(tmp_path, log_error, why):
    # Before: the step's log was silently missing from the store (5 of 8 with ttlSecondsAfterFinished: 0).
    spec_path = make_sweep(tmp_path)
    plan = load_plan(spec_path)
    store = store_mod.open_store(tmp_path / "store")
    api = _PodsGone(log_error)
    api.uids = [f"u-{manifests.job_name(plan.sweep, s)}" for s in plan.steps]
    notes = []
    executor = k8s_executor.KubernetesExecutor(store, sweep=plan.sweep, settings=k8s_settings.parse_settings({}),
                                               api=api, notify=notes.append)
    try:
        result = runner.run(plan, store, executor)
    finally:
        executor.close()
    started = [s for s in plan.steps if result.statuses[s.key].started]  # (they commit nothing: they fail)
    assert started
    status = json.loads((tmp_path / "store" / "sweeps" / plan.sweep / "status.json").read_text())
    for step in started:
        missing = status["steps"][step.key]["log_missing"]
        assert why in missing
        assert f"note: the log of {step.title} could not be kept: {missing}" in notes
        assert f"the log could not be kept: {missing}" in (tmp_path / "store" / step.log).read_text()
    assert all(not status["steps"][s.key]["log_missing"] for s in plan.steps if s not in started)


def test_parse_indexes():
    assert jobstatus.parse_indexes("0-2,5,7-8") == {0, 1, 2, 5, 7, 8}
    assert jobstatus.parse_indexes("") == set() and jobstatus.parse_indexes(None) == set()


def test_run_without_kubernetes_configuration_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert cli.main(["run", str(make_sweep(tmp_path)), "--executor", "kubernetes"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no Kubernetes configuration" in err[0]
