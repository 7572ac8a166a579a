"""CPU threads in a pod: ``jobs.devices.cpu.available_cpus`` reads the container's CPU limit (downward API, cgroup v2,
cgroup v1) instead of the node's core count, on fixture files; the export stage and the Job manifests use it."""

from __future__ import annotations

import json
import pathlib

import pytest

from controller.kubernetes import manifests
from controller.kubernetes import settings as k8s_settings
from jobs import errors
from jobs.devices import cpu
from tests.support.manifests import SETTINGS, golden_steps

NODE_CORES = 64  # a large node: what sched_getaffinity says inside a pod without a cpuset


def cgroup_v2(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    path = tmp_path / "v2" / "cpu.max"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def cgroup_v1(tmp_path: pathlib.Path, quota: str, period: str = "100000\n") -> pathlib.Path:
    d = tmp_path / "v1"
    d.mkdir(parents=True, exist_ok=True)
    (d / "cpu.cfs_quota_us").write_text(quota)
    (d / "cpu.cfs_period_us").write_text(period)
    return d


def budget(tmp_path, environ=None, cpu_max=None, cfs_dir=None, affinity=NODE_CORES) -> cpu.CpuBudget:
    return cpu.available_cpus(environ or {}, cpu_max=cpu_max or tmp_path / "absent" / "cpu.max",
                              cfs_dir=cfs_dir or tmp_path / "absent", affinity=affinity)


# -- parsing ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("400000 100000\n", (400000, 100000)),
    ("max 100000\n", None),
    ("50000 100000", (50000, 100000)),
])
def test_parse_cpu_max(text, expected):
    assert cpu.parse_cpu_max(text) == expected


@pytest.mark.parametrize("text", ["", "400000", "four 100000", "0 100000", "400000 0", "1 2 3"])
def test_parse_cpu_max_refuses_what_the_kernel_never_writes(text):
    with pytest.raises(ValueError):
        cpu.parse_cpu_max(text)


@pytest.mark.parametrize("quota, period, expected", [
    ("-1\n", "100000\n", None), ("400000\n", "100000\n", (400000, 100000)), ("150000", "100000", (150000, 100000)),
])
def test_parse_cfs(quota, period, expected):
    assert cpu.parse_cfs(quota, period) == expected


@pytest.mark.parametrize("quota, period", [("x", "100000"), ("0", "100000"), ("100000", "0")])
def test_parse_cfs_refuses_garbage(quota, period):
    with pytest.raises(ValueError):
        cpu.parse_cfs(quota, period)


@pytest.mark.parametrize("quota, period, expected", [(400000, 100000, 4), (150000, 100000, 2), (50000, 100000, 1),
                                                     (1000, 100000, 1)])
def test_quota_rounds_up_to_whole_cpus(quota, period, expected):
    assert cpu.quota_cpus(quota, period) == expected


@pytest.mark.parametrize("value, expected", [("4", 4), (" 16\n", 16)])
def test_parse_cpu_limit(value, expected):
    assert cpu.parse_cpu_limit(value) == expected


@pytest.mark.parametrize("value", ["0", "500m", "1.5", "-2", "four"])
def test_parse_cpu_limit_refuses_anything_but_whole_cpus(value):
    with pytest.raises(ValueError):
        cpu.parse_cpu_limit(value)


# -- the budget ---------------------------------------------------------------------------------------

def test_cgroup_v2_limit_beats_the_nodes_cores(tmp_path):
    """The reported fault: 4 CPUs of quota on a 64-core node is 4 threads, not 64."""
    b = budget(tmp_path, cpu_max=cgroup_v2(tmp_path, "400000 100000\n"))
    assert b == cpu.CpuBudget(4, "cgroup v2 cpu.max 400000/100000")


def test_cgroup_v1_limit(tmp_path):
    b = budget(tmp_path, cfs_dir=cgroup_v1(tmp_path, "400000\n"))
    assert b == cpu.CpuBudget(4, "cgroup v1 cfs_quota 400000/100000")


def test_a_fraction_of_a_cpu_is_one_thread(tmp_path):
    assert budget(tmp_path, cpu_max=cgroup_v2(tmp_path, "50000 100000")).count == 1


def test_no_quota_is_the_affinity(tmp_path):
    b = budget(tmp_path, cpu_max=cgroup_v2(tmp_path, "max 100000\n"), cfs_dir=cgroup_v1(tmp_path, "-1\n"))
    assert b == cpu.CpuBudget(NODE_CORES, "sched_getaffinity")


def test_no_cgroup_files_is_the_affinity(tmp_path):
    assert budget(tmp_path, affinity=6) == cpu.CpuBudget(6, "sched_getaffinity")


def test_a_cpuset_smaller_than_the_quota_wins(tmp_path):
    b = budget(tmp_path, cpu_max=cgroup_v2(tmp_path, "800000 100000"), affinity=2)
    assert b == cpu.CpuBudget(2, "sched_getaffinity")


def test_downward_api_is_read_first(tmp_path):
    b = budget(tmp_path, {cpu.CPU_LIMIT_ENV: "4"}, cpu_max=cgroup_v2(tmp_path, "400000 100000"))
    assert b == cpu.CpuBudget(4, "downward API limits.cpu (CPU_LIMIT=4)")


def test_downward_api_without_a_limit_is_the_nodes_allocatable_and_a_quota_still_bounds_it(tmp_path):
    # without limits.cpu the downward API gives the node's allocatable CPUs: one bound among the others
    b = budget(tmp_path, {cpu.CPU_LIMIT_ENV: "62"}, cpu_max=cgroup_v2(tmp_path, "300000 100000"))
    assert b == cpu.CpuBudget(3, "cgroup v2 cpu.max 300000/100000")


def test_malformed_cpu_limit_is_one_line(tmp_path):
    with pytest.raises(errors.BadInput, match=r"^CPU_LIMIT='500m': expected a whole number of CPUs") as e:
        budget(tmp_path, {cpu.CPU_LIMIT_ENV: "500m"})
    assert "\n" not in str(e.value) and isinstance(e.value.__cause__, ValueError)


def test_an_unparseable_cgroup_file_is_skipped(tmp_path, caplog):
    b = budget(tmp_path, cpu_max=cgroup_v2(tmp_path, "garbage"), cfs_dir=cgroup_v1(tmp_path, "200000"), affinity=8)
    assert b == cpu.CpuBudget(2, "cgroup v1 cfs_quota 200000/100000")
    assert "ignoring" in caplog.text


def test_this_machine(monkeypatch):
    monkeypatch.delenv(cpu.CPU_LIMIT_ENV, raising=False)
    b = cpu.available_cpus()
    assert 1 <= b.count and b.source


# -- the Job: the container's CPU limit through the downward API ----------------------------------------

CPU_LIMIT_VAR = {"name": cpu.CPU_LIMIT_ENV, "valueFrom": {"resourceFieldRef": {
    "containerName": manifests.CONTAINER, "resource": "limits.cpu", "divisor": "1"}}}


def _container(step_name: str, settings: dict) -> dict:
    job = manifests.job("sweep", golden_steps()[step_name], k8s_settings.parse_settings(settings))
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("step", ["infer-cpu", "infer-ascend310p3"])
def test_a_container_with_a_cpu_limit_gets_it_from_the_downward_api(step):
    container = _container(step, SETTINGS)
    assert container["resources"]["limits"]["cpu"] == "4"
    assert CPU_LIMIT_VAR in container["env"] and container["name"] == manifests.CONTAINER


def test_a_container_without_a_cpu_limit_gets_no_cpu_limit_variable():
    # the downward API would give the node's allocatable CPUs: nothing to tell
    container = _container("export", SETTINGS)
    assert "cpu" not in container["resources"].get("limits", {})
    assert all(v["name"] != cpu.CPU_LIMIT_ENV for v in container["env"])


def test_a_cpu_limit_from_the_settings_is_exposed_too():
    settings = {**SETTINGS, "resources": {"export": {"requests": {"cpu": 4}, "limits": {"cpu": 4, "memory": "8Gi"}}}}
    assert CPU_LIMIT_VAR in _container("export", settings)["env"]


# -- the export stage ----------------------------------------------------------------------------------

@pytest.fixture
def torch_threads():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    yield torch
    torch.set_num_threads(before)


@pytest.mark.slow
def test_export_runs_and_records_the_pods_threads(tmp_path, demo_weights, torch_threads, monkeypatch):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from jobs.stages import export

    monkeypatch.setenv(cpu.CPU_LIMIT_ENV, "1")
    path, checksum = demo_weights
    assert export.main(["--model", "ghostnet_1.0x", "--weights", str(path), "--checksum", checksum,
                        "--parity-batch", "2", "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert torch_threads.get_num_threads() == 1
    record = json.loads((tmp_path / "out" / export.RECORD_FILE).read_text())
    assert record["threads"] == {"count": 1, "source": "downward API limits.cpu (CPU_LIMIT=1)"}
