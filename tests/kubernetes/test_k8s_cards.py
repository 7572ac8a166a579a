"""A target on the chips of a card: one pod requests them all (``huawei.com/Ascend310: 4``) and, under Volcano,
finds them in ASCEND_VISIBLE_DEVICES from the pod annotation; a slice cannot be several devices."""

from __future__ import annotations

import dataclasses

import pytest

from controller.kubernetes import device_resources, manifests
from controller.kubernetes import settings as k8s_settings
from jobs import errors, params
from jobs.devices import npu_smi
from tests.support.manifests import SETTINGS, golden_steps


def _step(accelerator: str, devices: tuple[str, ...], backend: str = "acl"):
    step = golden_steps()["infer-ascend310p3"]
    return dataclasses.replace(step, accelerator=accelerator, params=dataclasses.replace(
        step.params, backend=backend, device=devices[0], devices=devices))


def _job(step, **settings):
    return manifests.job("s", step, k8s_settings.parse_settings({**SETTINGS, **settings}))


def _container(job):
    return job["spec"]["template"]["spec"]["containers"][0]


def test_the_pod_of_a_card_requests_its_four_chips_and_fans_out_over_them():
    step = _step("Ascend310", tuple(f"npu:{i}" for i in range(4)))
    c = _container(_job(step, scheduler_name="volcano"))
    assert c["resources"]["requests"]["huawei.com/Ascend310"] == c["resources"]["limits"]["huawei.com/Ascend310"] == "4"
    env = [e for e in c["env"] if e["name"] == npu_smi.VISIBLE_DEVICES_ENV]
    assert env[0]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.annotations['huawei.com/Ascend310']"
    assert npu_smi.parse_visible_devices("Ascend310-4,Ascend310-5,Ascend310-6,Ascend310-7") == [4, 5, 6, 7]
    args = c["args"]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--devices"] == ["npu:0", "npu:1", "npu:2", "npu:3"]


def test_a_duo_pod_requests_two_310p_chips_and_one_device_one():
    duo = _container(_job(_step("Ascend310P3", ("npu:0", "npu:1"))))
    assert duo["resources"]["limits"]["huawei.com/Ascend310P"] == "2"
    one = _container(_job(golden_steps()["infer-ascend310p3"]))
    assert one["resources"]["limits"]["huawei.com/Ascend310P"] == "1"


def test_several_gpus_of_a_node():
    c = _container(_job(_step("nvidia-t4", ("cuda:0", "cuda:1"), backend="onnxruntime")))
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "2"


def test_a_slice_is_never_several_devices():
    step = _step("Ascend310P3", ("npu:0", "npu:1"))
    with pytest.raises(errors.BadInput, match=r"device_resources\.Ascend310P3\.name: huawei\.com/Ascend310P-2c "
                                              r"\(static-vnpu\) is part of one chip, but targets\[\]\.devices runs on 2 "
                                              r"devices of Ascend310P3.* \(target ascend310p\)$"):
        _job(step, device_resources={"Ascend310P3": {"name": "huawei.com/Ascend310P-2c"}})


def test_a_sweep_the_settings_cannot_run_is_refused_before_any_job(tmp_path, cluster, capsys):
    # a vNPU for a target on a card's two chips: `ghostbench run` says so in one line, exit 2, and creates nothing
    from controller import cli
    from tests.support.cluster import write_settings
    from tests.support.sweeps import make_sweep

    spec = make_sweep(tmp_path, targets=[{"name": "duo", "backend": "null", "devices": ["none:0", "none:1"],
                                          "card": "atlas-300i-duo", "batch_sizes": [4]}])
    settings = write_settings(tmp_path, device_resources={"Ascend310P3": {"name": "huawei.com/Ascend310P-2c"}})
    assert cli.main(["run", str(spec), "--executor", "kubernetes", "--settings", str(settings)]) == errors.EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert "device_resources.Ascend310P3.name: huawei.com/Ascend310P-2c (static-vnpu) is part of one chip" in err[-1]
    assert cluster.creates == {} and not (tmp_path / "store" / "sweeps" / "s" / "status.json").exists()


def test_resolve_counts_whole_devices_per_device():
    assert device_resources.resolve("Ascend310", {}, 4) == device_resources.DeviceResource(
        "huawei.com/Ascend310", 4, device_resources.WHOLE)
    assert device_resources.resolve("Ascend310", {}).count == 1
    assert isinstance(_step("Ascend310", ("npu:0", "npu:1")).params, params.InferParams)
