"""The Job manifests' golden documents: the representative steps and the settings they are rendered with, and
what ``controller.kubernetes.manifests`` renders for them now (compared with tests/golden/manifests/ by
tests/kubernetes/test_manifests.py; other rooms reuse the steps and the documents)."""

from __future__ import annotations

from controller import plan as plan_mod
from controller.kubernetes import manifests
from controller.kubernetes import settings as k8s_settings
from jobs import params

STORE = "s3://ghostbench-results/ghostnet"
SWEEP = "seed-ascend310p"

SETTINGS = {
    "namespace": "ghostbench",
    "instance": "bench",
    "images": {"cpu": "registry.example/ghostbench/cpu:0.1.0", "atc": "registry.example/ghostbench/atc:0.1.0",
               "ascend-infer": "registry.example/ghostbench/ascend-infer:0.1.0",
               "gpu-infer": "registry.example/ghostbench/gpu-infer:0.1.0"},
    "store_config_map": "bench-ghostbench-store",
    "store_secret": "bench-ghostbench-store",
}
# an Ascend cluster without Ascend Docker Runtime, scheduled by Volcano
SETTINGS_VOLCANO_DRIVER = {
    **SETTINGS,
    "scheduler_name": "volcano",
    "scheduler_annotations": {"scheduling.volcano.sh/queue-name": "npu"},
    "driver_mounts": True,
    "supplemental_groups": [1000],
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "benchmarks", "effect": "NoSchedule"}],
}

# a MindCluster cluster: Volcano for the NPU pods, a Kueue queue for every Job, priorities, NPU pods kept off
# SoC boards, MindCluster's labels on the NPU pods; shards retried one by one, at most 2 failed
SETTINGS_QUEUED = {
    **SETTINGS,
    "scheduler_name": "volcano",
    "queue_name": "benchmarks",
    "priority_class_name": {"preprocess": "batch-low", "Ascend310P3": "npu-high"},
    "affinity": {"Ascend310P3": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "servertype", "operator": "NotIn", "values": ["soc"]}]}]}}}},
    "pod_labels": {"infer": {"team": "perf"}, "Ascend310P3": {"ring-controller.atlas": "ascend-310P",
                                                              "fault-scheduling": "grace"}},
    "pod_annotations": {"preprocess": {"example.com/cost-center": "bench"}},
    "per_index_backoff": "on",
    "max_failed_shards": 2,
}
# dynamic vNPU: 4 of a 310P's 8 AI Cores, cut by Volcano (no ASCEND_VISIBLE_DEVICES field)
SETTINGS_DYNAMIC_VNPU = {
    **SETTINGS,
    "scheduler_name": "volcano",
    "device_resources": {"Ascend310P3": {"name": "huawei.com/npu-core", "count": 4}},
    "pod_labels": {"Ascend310P3": {"vnpu-dvpp": "null", "vnpu-level": "low"}},
}


def _uri(out: str) -> str:
    return f"{STORE}/{out}"


def golden_steps() -> dict[str, plan_mod.Step]:
    """Representative steps with typed parameters, written out (not planned), so that the goldens change only
    with manifests.py and jobs/params.py."""
    export = "artifacts/export/0123456789abcdef"
    engine = "artifacts/convert/1111111111111111"
    data = "artifacts/preprocess/2222222222222222"
    infer_npu, infer_cpu = "artifacts/infer/4444444444444444", "artifacts/infer/5555555555555555"
    return {
        "export": plan_mod.Step("0123456789abcdef", params.ExportParams(
            model="ghostnet_1.0x",
            weights="https://github.com/huawei-noah/CV-Backbones/raw/master/ghostnet_pytorch/models/state_dict_73.98.pth",
            checksum="md5:f7241350b4486bf00accbf9c3a192331", out=_uri(export)), "export float32", export,
            input_mode="float32"),
        "convert-atc": plan_mod.Step("1111111111111111", params.ConvertParams(
            model=_uri(export), target="atc", batch_size=8, options={"soc_version": "Ascend310P3"}, out=_uri(engine)),
            "convert ascend310p bs8 (.om, Ascend310P3)", engine, deps=("0123456789abcdef",), target="ascend310p",
            input_mode="float32"),
        "preprocess": plan_mod.Step("3333333333333333", params.PreprocessParams(
            images="s3://datasets/imagenet/val", labels="s3://datasets/imagenet/val_label.txt", shard=3, num_shards=8,
            out=_uri(data)), "preprocess float32 shard 4/8", f"{data}/shard-00003-of-00008", input_mode="float32"),
        "infer-ascend310p3": plan_mod.Step("4444444444444444", params.InferParams(
            engine=_uri(engine), data=_uri(data), backend="acl", device="npu:0", batch_size=8,
            target_name="ascend310p", out=_uri(infer_npu)), "infer ascend310p bs8", infer_npu,
            deps=("1111111111111111", "3333333333333333"), accelerator="Ascend310P3", target="ascend310p",
            input_mode="float32"),
        "infer-cpu": plan_mod.Step("5555555555555555", params.InferParams(
            engine=_uri("artifacts/convert/6666666666666666"), data=_uri(data), batch_size=8, target_name="ort-cpu",
            out=_uri(infer_cpu)), "infer ort-cpu bs8", infer_cpu, deps=("6666666666666666", "3333333333333333"),
            target="ort-cpu", input_mode="float32"),
        "eval": plan_mod.Step("7777777777777777", params.EvalParams(
            runs=(_uri(infer_npu), _uri(infer_cpu)), data=_uri(data), reference_top1=73.98, reference_top5=91.46,
            out=_uri("artifacts/eval/7777777777777777")), "eval", "artifacts/eval/7777777777777777",
            deps=("4444444444444444", "5555555555555555")),
    }


def golden_documents() -> dict[str, str]:
    """Golden file name -> the YAML that manifests.py renders for it now."""
    steps = golden_steps()
    settings = k8s_settings.parse_settings(SETTINGS)
    out = {f"{name}.yaml": manifests.dump([manifests.job(SWEEP, step, settings)]) for name, step in steps.items()}
    out["infer-ascend310p3-volcano-driver-mounts.yaml"] = manifests.dump([manifests.job(
        SWEEP, steps["infer-ascend310p3"], k8s_settings.parse_settings(SETTINGS_VOLCANO_DRIVER))])
    queued = k8s_settings.parse_settings(SETTINGS_QUEUED)
    out["infer-ascend310p3-kueue-affinity.yaml"] = manifests.dump([manifests.job(
        SWEEP, steps["infer-ascend310p3"], queued)])
    out["infer-ascend310p3-dynamic-vnpu.yaml"] = manifests.dump([manifests.job(
        SWEEP, steps["infer-ascend310p3"], k8s_settings.parse_settings(SETTINGS_DYNAMIC_VNPU))])
    for name in PER_INDEX_GOLDENS:  # (Kubernetes 1.33+: per_index_backoff)
        out[name] = manifests.dump([manifests.job(SWEEP, steps["preprocess"], queued, per_index_backoff=True)])
    return out


PER_INDEX_GOLDENS = ("preprocess-per-index.yaml",)
"""Goldens with fields older Kubernetes versions lack (``backoffLimitPerIndex``): validated from 1.33 on."""
