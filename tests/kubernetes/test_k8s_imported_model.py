"""The Jobs of an imported model's sweep (issue 23): the ONNX file's URI, its checksum and its card travel in the
export, preprocess and eval Jobs' args, parse back into each step's parameters, and the ATC Job runs in the ATC
image. Built with ``manifests.jobs_for`` (pure; no golden file: the seed's goldens stay GhostNet's)."""

from __future__ import annotations

import json

from controller import plan as plan_mod
from controller import spec as spec_mod
from controller.kubernetes import manifests
from controller.kubernetes import settings as k8s_settings
from jobs import params

URI = "s3://models/resnet50.onnx"
CHECKSUM = "sha256:" + "ab" * 32
SWEEP = {"name": "imported", "store": "s3://bkt/gb",
         "model": {"name": "resnet50", "onnx": URI, "checksum": CHECKSUM, "preprocessing": "inceptionv3",
                   "num_classes": 1001, "label_offset": 1, "published": {"top1": 77.0, "top5": 93.0}},
         "dataset": {"images": "s3://bkt/val", "labels": "s3://bkt/val/val_label.txt", "shards": 2},
         "targets": [{"name": "ort", "input_mode": "uint8", "batch_sizes": [4]},
                     {"name": "npu", "backend": "acl", "device": "npu:0", "engine": "atc", "accelerator": "Ascend310P3",
                      "input_mode": "uint8", "batch_sizes": [8]}]}
PARAMS = {"export": params.ExportParams, "preprocess": params.PreprocessParams, "convert": params.ConvertParams,
          "infer": params.InferParams, "eval": params.EvalParams}


def jobs_by_step() -> list[tuple[plan_mod.Step, list[str], str]]:
    """(step, the container's args after ``-m jobs.stages.<stage>``, image) for each Job of the sweep."""
    plan = plan_mod.make_plan(spec_mod.parse(SWEEP, "imported.yaml"))
    settings = k8s_settings.KubernetesSettings()
    by_name = {j["metadata"]["name"]: j for j in manifests.jobs_for(plan, settings)}
    out = []
    for step in plan.steps:
        container = by_name[manifests.job_name(plan.sweep, step)]["spec"]["template"]["spec"]["containers"][0]
        assert container["args"][:2] == ["-m", f"jobs.stages.{step.stage}"]
        out.append((step, container["args"][2:], container["image"]))
    return out


def cards(args: list[str]) -> dict:
    return {k: json.loads(v) for k, _, v in (args[i + 1].partition("=") for i, a in enumerate(args) if a == "--card")}


def test_the_export_jobs_import_the_onnx_file_with_its_card():
    exports = [(s, a) for s, a, _ in jobs_by_step() if s.stage == "export"]
    assert sorted(s.input_mode for s, _ in exports) == ["float32", "uint8"]
    for step, args in exports:
        assert args[args.index("--onnx") + 1] == URI and args[args.index("--checksum") + 1] == CHECKSUM
        assert "--weights" not in args and args[args.index("--model") + 1] == "resnet50"
        assert cards(args) == {"num_classes": 1001, "label_offset": 1, "resize": 342, "crop": 299,
                               "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                               "interpolation": "bilinear"}
        assert params.ExportParams.parse(args) == step.params  # the Job runs exactly the planned step


def test_preprocess_and_eval_jobs_carry_the_card_the_label_offset_and_the_source():
    steps = jobs_by_step()
    (pre_step, pre, _), = [(s, a, i) for s, a, i in steps if s.stage == "preprocess" and s.params.shard == 0]
    assert cards(pre)["crop"] == 299 and cards(pre)["resize"] == 342
    shard0 = [a.replace("$(JOB_COMPLETION_INDEX)", "0") for a in pre]  # the pod's index, as Kubernetes fills it
    assert params.PreprocessParams.parse(shard0) == pre_step.params
    (ev_step, ev, _), = [(s, a, i) for s, a, i in steps if s.stage == "eval"]
    assert ev[ev.index("--num-classes") + 1] == "1001" and ev[ev.index("--label-offset") + 1] == "1"
    assert ev[ev.index("--model-source") + 1] == f"imported ONNX file {URI} ({CHECKSUM})"
    assert (ev[ev.index("--reference-top1") + 1], ev[ev.index("--reference-top5") + 1]) == ("77.0", "93.0")
    assert params.EvalParams.parse(ev) == ev_step.params


def test_the_atc_job_converts_the_float32_import_in_the_atc_image():
    (step, args, image), = [(s, a, i) for s, a, i in jobs_by_step() if s.stage == "convert" and s.target == "npu"]
    assert image.split("/")[-1].startswith("atc:") and args[args.index("--target") + 1] == "atc"
    exports = {s.key: s for s, _, _ in jobs_by_step() if s.stage == "export"}
    (dep,) = step.deps
    assert exports[dep].input_mode == "float32" and "--option" in args and "aipp=true" in args
    assert args[args.index("--model") + 1] == exports[dep].params.out
