"""Ordinary cluster faults end a sweep soon with one line naming the cause (issue 21 items 1-3), against
the fake API server (tests/support/k8s_fake.py): pods that never start (image pull back-off, no node),
429 and 5xx answers, and 403 Forbidden. Fake time throughout: the executor's and the API's clock and sleep."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("kubernetes", reason="the Kubernetes tests need the client: pip install 'ghostbench[kubernetes]'")

from controller import cli, runner
from controller.kubernetes import api as k8s_api
from controller.kubernetes import executor as k8s_executor
from controller.kubernetes import manifests, pods
from controller.kubernetes import settings as k8s_settings
from jobs import store as store_mod
from tests.support.cluster import NAMESPACE, load_plan, write_settings
from tests.support.sweeps import make_sweep

ASCEND_SHORT = "0/3 nodes are available: 3 Insufficient huawei.com/Ascend310P. preemption: 0/3 nodes are available: " \
    "3 No preemption victims found for incoming pod."


class FakeTime:
    """A clock that moves only when slept on, or when told to."""

    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _executor(tmp_path, cluster, plan, time, **settings):
    settings = k8s_settings.load_settings(write_settings(tmp_path, **settings))
    api = k8s_api.Api.for_host(cluster.url, NAMESPACE, deadline_s=settings.api_deadline_seconds, sleep=time.sleep,
                               clock=time)
    return k8s_executor.KubernetesExecutor(store_mod.open_store(tmp_path / "store"), sweep=plan.sweep,
                                           settings=settings, api=api, sleep=time.sleep, clock=time,
                                           notify=lambda text: None, pod_check_s=30), api


def _pending(cluster, name):
    """Until the Job's pod exists (Pending, with its status set)."""
    cluster.wait_for(lambda c: any(p["metadata"]["labels"].get("batch.kubernetes.io/job-name") == name
                                   for p in c.pods.values()))


# -- 1. pods that never start ----------------------------------------------------------------------------


def test_pod_status_reading():
    waiting = {"metadata": {"name": "p", "uid": "u"}, "status": {"phase": "Pending", "containerStatuses": [
        {"name": "stage", "state": {"waiting": {"reason": "InvalidImageName",
                                                "message": 'Failed to apply default image tag "Bad:": invalid'}}}]}}
    assert pods.stuck(waiting).why() == 'InvalidImageName: Failed to apply default image tag "Bad:": invalid'
    creating = {"status": {"phase": "Pending", "containerStatuses": [{"state": {"waiting": {
        "reason": "ContainerCreating"}}}]}}
    assert pods.stuck(creating) is None  # passes by itself
    unschedulable = {"metadata": {"name": "p"}, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": ASCEND_SHORT}]}}
    assert pods.stuck(unschedulable).why().startswith("Unschedulable: short of huawei.com/Ascend310P (0/3 nodes")
    assert pods.short_resources("0/5 nodes are available: 2 Insufficient cpu, 3 Insufficient memory.") == \
        ["cpu", "memory"]
    assert pods.selector({"spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}}}) == \
        "batch.kubernetes.io/controller-uid=u1"
    assert pods.duration(45) == "45s" and pods.duration(310) == "5m10s" and pods.duration(7380) == "2h03m"
    two_lines = {"metadata": {"name": "p"}, "status": {"phase": "Pending", "containerStatuses": [{"state": {"waiting": {
        "reason": "CreateContainerConfigError", "message": 'secret "s3" not found\n  (namespace bench)'}}}]}}
    assert pods.stuck(two_lines).why() == 'CreateContainerConfigError: secret "s3" not found (namespace bench)'


def test_image_pull_back_off_is_shown_then_fails_the_sweep_after_pod_start_timeout(tmp_path, cluster):
    spec_path = make_sweep(tmp_path)
    plan = load_plan(spec_path)
    message = 'Back-off pulling image "ghostbench/cpu:0.1.O"'
    cluster.stall(lambda job: job["metadata"]["labels"].get("app.kubernetes.io/component") == "eval",
                  waiting=("ImagePullBackOff", message))
    time = FakeTime()
    executor, api = _executor(tmp_path, cluster, plan, time, pod_start_timeout_seconds=300)
    eval_job = next(manifests.job_name(plan.sweep, s) for s in plan.steps if s.stage == "eval")
    events, waiting_seen = [], []

    def on_change(statuses, event):
        events.append(event)
        waiting_seen.extend(s.waiting for s in statuses.values() if s.waiting)
        if eval_job in cluster.creates and any(s.state == "running" and s.stage == "eval" for s in statuses.values()):
            time.now += 60  # a minute passes per turn of the loop while eval waits (once its pod is Pending)

    try:
        result = runner.run(plan, executor.store, executor, on_change=on_change, poll_s=0.05)
    finally:
        executor.close()
        api.close()
    assert not result.ok
    failed = [s for s in result.statuses.values() if s.state == "failed"]
    assert [s.stage for s in failed] == ["eval"]
    reason = failed[0].reason
    assert "\n" not in reason and "ImagePullBackOff" in reason and message in reason
    assert "pod_start_timeout_seconds" in reason and "its Job is deleted" in reason
    assert cluster.deletes[eval_job] == 1
    # meanwhile: a progress line and status.json named the cause
    assert any(e.startswith("waiting eval: ImagePullBackOff: " + message) for e in events)
    assert any(message in w and "so far" in w for w in waiting_seen)
    status = json.loads((tmp_path / "store" / "sweeps" / "s" / "status.json").read_text())
    assert status["state"] == "failed" and any("ImagePullBackOff" in s["reason"] for s in status["steps"].values())


def test_unschedulable_pod_names_the_short_resource_and_waits_unless_told_otherwise(tmp_path, cluster):
    plan = load_plan(make_sweep(tmp_path))
    step = next(s for s in plan.steps if s.stage == "eval")  # (its pod never runs: no inputs needed)
    name = manifests.job_name(plan.sweep, step)
    cluster.stall(lambda job: True, unschedulable=ASCEND_SHORT)
    time = FakeTime()
    executor, api = _executor(tmp_path, cluster, plan, time)  # default: never fail an unschedulable pod
    try:
        executor.start(step)
        _pending(cluster, name)
        for _ in range(4):
            time.now += 3 * 3600
            assert executor.wait(0) == []
        note = executor.waiting()[step.key]
        assert note.why.startswith("Unschedulable: short of huawei.com/Ascend310P (0/3 nodes are available")
        assert note.line.endswith("9h00m so far")
    finally:
        executor.close()
        api.close()
    assert cluster.job(name) is not None  # still queued

    cluster.deletes.clear()
    executor, api = _executor(tmp_path, cluster, plan, time, unschedulable_timeout_seconds=3600)
    try:
        executor.start(step)  # adopts the queued Job
        time.now += 60
        assert executor.wait(0) == []
        time.now += 3600
        ended = executor.wait(0)
    finally:
        executor.close()
        api.close()
    assert [s.key for s, _ in ended] == [step.key]
    reason = ended[0][1].reason
    assert "did not run for 1h00m (unschedulable_timeout_seconds): Unschedulable: short of huawei.com/Ascend310P" \
        in reason and "\n" not in reason
    assert cluster.deletes[name] == 1


def test_status_command_shows_why_a_running_step_waits(tmp_path, capsys, monkeypatch):
    from controller import lease

    monkeypatch.setattr(lease, "holder_gone", lambda store, folder: None)  # its controller is alive
    plan = load_plan(make_sweep(tmp_path))
    store = store_mod.open_store(tmp_path / "store")
    statuses = {s.key: runner.StepStatus("running", s.title, s.stage, s.out, s.log) for s in plan.steps}
    key = plan.steps[-1].key
    statuses[key].waiting = "Unschedulable: short of huawei.com/Ascend310P (...); pod p, 5m00s so far"
    runner.write_status(plan, store, statuses, "running")
    cli.main(["status", f"{tmp_path / 'store'}:{plan.sweep}"])
    line = next(x for x in capsys.readouterr().out.splitlines() if key in x)
    assert "(waiting: Unschedulable: short of huawei.com/Ascend310P" in line


# -- 2. 429 and 5xx ---------------------------------------------------------------------------------------


def test_429_on_create_is_retried_after_retry_after(tmp_path, cluster):
    plan = load_plan(make_sweep(tmp_path))
    cluster.fault(429, "POST", "/jobs", times=1, retry_after="7")
    time = FakeTime()
    executor, api = _executor(tmp_path, cluster, plan, time)
    try:
        result = runner.run(plan, executor.store, executor, poll_s=0.05)
    finally:
        executor.close()
        api.close()
    assert result.ok and cluster.faulted == 1
    assert time.slept[0] == 7.0 and api.retries == 1  # the server's Retry-After, in fake time
    assert set(cluster.creates.values()) == {1}


def test_5xx_until_the_deadline_fails_the_create_and_no_other_shard_creates_its_job(tmp_path, cluster):
    plan = load_plan(make_sweep(tmp_path))
    time = FakeTime()
    cluster.fault(503, "POST", "/jobs", times=8)  # (the tries in 60 s: then the server recovers)
    executor, api = _executor(tmp_path, cluster, plan, time, api_deadline_seconds=60)
    shard0, shard1 = [s for s in plan.steps if s.stage == "preprocess"][:2]
    try:
        executor.start(shard0)  # 503 for 60 s (fake): fails
        executor.start(shard1)  # the server answers again: yet this shard must not create the Job shard 0 could not
        ended = dict(executor.wait(0) + executor.wait(0))
    finally:
        executor.close()
        api.close()
    assert time.slept == [0.5, 1, 2, 4, 8, 16, 28.5]  # backoff, up to the deadline
    assert set(ended) == {shard0, shard1}
    for outcome in ended.values():
        assert "503" in outcome.reason and "no other answer for 60s" in outcome.reason
    assert cluster.creates == {}  # nothing runs (and commits) a shard reported failed


def test_5xx_on_list_is_retried_by_cancel(tmp_path, cluster, capsys):
    spec_path = make_sweep(tmp_path)
    settings = write_settings(tmp_path)
    cluster.fault(500, "GET", "/jobs", times=2)
    assert cli.main(["cancel", str(spec_path), "--settings", str(settings)]) == 0
    assert cluster.faulted == 2


# -- 3. 403 Forbidden -------------------------------------------------------------------------------------


@pytest.mark.parametrize("verb,resource", [("list", "jobs"), ("create", "jobs"), ("list", "pods")])
def test_forbidden_stops_at_once_with_one_line_and_leaves_nothing_running(tmp_path, cluster, capsys, verb,
                                                                          resource):
    spec_path = make_sweep(tmp_path)
    settings = write_settings(tmp_path, api_deadline_seconds=600)  # (a retry would outlast the test)
    if resource == "jobs":
        cluster.hold(lambda job: True)  # no pod runs: the Jobs created would run for nothing
    cluster.deny(verb, resource)  # (pods: listed for the log of the first step that ends)
    assert cli.main(["run", str(spec_path), "--executor", "kubernetes", "--settings", str(settings)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    group = ".batch" if resource == "jobs" else ""
    assert err[-1].startswith("ghostbench run: error: the API server at ")
    assert f'forbids service account "ghostbench" of namespace "ghostbench-test" to {verb} {resource}{group} ' \
        f'in namespace "{NAMESPACE}"' in err[-1]
    assert "docs/kubernetes.md#rbac" in err[-1]
    # what this run created and was still running was deleted
    assert all(k8s_executor.finished(cluster.job(n)) for n in cluster.job_names())
    if resource == "jobs":
        assert cluster.job_names() == []
        if verb != "create":
            assert cluster.creates and any("for nothing" in line for line in err)


def test_forbidden_in_cancel_is_one_line_exit_2(tmp_path, cluster, capsys):
    cluster.deny("list", "jobs")
    assert cli.main(["cancel", "s", "--settings", str(write_settings(tmp_path))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "to list jobs.batch" in err[0] and "403 Forbidden" in err[0]
