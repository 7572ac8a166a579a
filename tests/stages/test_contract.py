"""The typed seams: stage parameters as the one contract, plan-time refusal, and every written document read back."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from controller import cli, runner
from controller import plan as plan_mod
from controller import spec as spec_mod
from controller.kubernetes import manifests
from controller.kubernetes import settings as k8s_settings
from jobs import params
from jobs import store as store_mod
from jobs.artifacts import records
from tests.support.paths import REPO_ROOT
from tests.support.sweeps import make_sweep

EXAMPLES = sorted(p for p in (REPO_ROOT / "examples").glob("*.yaml") if not p.name.endswith(".local.yaml"))


def _plans() -> list[plan_mod.Plan]:
    return [plan_mod.make_plan(spec_mod.load(e), "s3://bucket/prefix") for e in EXAMPLES]


# -- stage parameters: one object, every view ----------------------------------------------------------

@pytest.mark.parametrize("step", [s for p in _plans() for s in p.steps], ids=lambda s: f"{s.stage}-{s.key}")
def test_a_steps_command_parses_back_into_the_same_parameters(step):
    # the stage's own parser is built from the same fields that wrote the command
    argv = step.command()
    assert argv[:2] == ["-m", f"jobs.stages.{step.stage}"]
    assert type(step.params).parse(argv[2:]) == step.params


@pytest.mark.parametrize("cls", params.STAGES.values(), ids=lambda c: c.stage)
def test_every_field_has_a_flag_with_help_and_a_type(cls):
    parser = cls.build_parser()
    flags = {a.dest: a for a in parser._actions}
    for f in dataclasses.fields(cls):
        assert f.name in flags and f.metadata["help"], f.name
    assert parser.prog == f"python -m jobs.stages.{cls.stage}"


def test_renaming_a_flag_is_one_change_that_reaches_command_parser_and_job(monkeypatch):
    (plan,) = [p for p in _plans() if p.sweep == "seed-ascend310p"]
    step = next(s for s in plan.steps if s.stage == "infer")
    field = next(f for f in dataclasses.fields(params.InferParams) if f.name == "batch_size")
    monkeypatch.setattr(field, "metadata", {**field.metadata, "flag": "--images-per-batch"})
    assert "--images-per-batch" in step.command() and "--batch-size" not in step.command()
    assert params.InferParams.parse(step.command()[2:]) == step.params
    job = manifests.job(plan.sweep, step, k8s_settings.KubernetesSettings())
    assert "--images-per-batch" in job["spec"]["template"]["spec"]["containers"][0]["args"]


def test_the_job_builder_reads_typed_fields_for_shards():
    (plan,) = [p for p in _plans() if p.sweep == "local-demo"]
    shard = next(s for s in plan.steps if s.stage == "preprocess" and s.params.shard == 1)
    job = manifests.job(plan.sweep, shard, k8s_settings.KubernetesSettings())
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--shard") + 1] == "$(JOB_COMPLETION_INDEX)"
    assert job["spec"]["completions"] == shard.params.num_shards
    assert job["metadata"]["labels"][manifests.STEP_LABEL] == shard.group != shard.key


def test_the_key_ignores_locations_but_not_content():
    p = params.InferParams(engine="s3://a/e", data="s3://a/d", batch_size=8, out="s3://a/o")
    moved = dataclasses.replace(p, engine="file:///e", data="file:///d", out="file:///o")
    assert p.key_fields() == moved.key_fields()
    assert p.key_fields() != dataclasses.replace(p, batch_size=4).key_fields()
    assert p.upstream() == ["s3://a/e", "s3://a/d"]
    export = params.ExportParams(model="ghostnet_1.0x", weights="/a/w.pth", checksum="md5:" + "0" * 32, out="x")
    assert "weights" not in export.key_fields() and "checksum" in export.key_fields()


# -- plan-time refusal ---------------------------------------------------------------------------------

@pytest.mark.parametrize("target, path, message", [
    ({"device": "cpus"}, "targets[0].device", "expected one of cpu, cuda[:N], tensorrt[:N], cann[:N]"),
    ({"backend_options": {"intra_op_thread": 2}}, "targets[0].backend_options.intra_op_thread",
     "unknown option (did you mean 'intra_op_threads'?)"),
    ({"convert_options": {"offline_levl": "all"}}, "targets[0].convert_options.offline_levl",
     "unknown option (did you mean 'offline_level'?)"),
    ({"convert_options": {"offline_level": "max"}}, "targets[0].convert_options.offline_level",
     "expected one of basic, extended, all"),
    ({"input_mode": "int8"}, "targets[0].input_mode", "expected one of float32, uint8"),
    ({"precision": "fp64"}, "targets[0].precision", "expected one of fp32, tf32, fp16, int8"),
    ({"precision": "fp16"}, "targets[0].precision", "expected one of fp32 on cpu, got 'fp16'"),
    ({"device": "cuda:0", "precision": "int8"}, "targets[0].precision", "int8 needs a calibrated engine"),
    ({"backend": "tensorrt"}, "targets[0].backend", "expected one of acl, null, onnxruntime"),
    ({"backend": "acl", "engine": "atc", "accelerator": "Ascend310P3", "device": "gpu:0"}, "targets[0].device",
     "expected npu or npu:N for backend acl"),
    ({"backend": "null", "backend_options": {"images_per_s": 0}}, "targets[0].backend_options.images_per_s",
     "expected a number > 0"),
])
def test_plan_and_run_refuse_what_a_stage_would_refuse_before_anything_starts(tmp_path, capsys, target, path,
                                                                               message):
    spec_path = make_sweep(tmp_path, targets=[{"name": "t", "batch_sizes": [4], **target}])
    store = tmp_path / "store"
    for command in (["plan", str(spec_path), "--store", str(store)], ["run", str(spec_path), "--store", str(store)]):
        assert cli.main(command) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"{path}: " in err and message in err, err
    assert not store.exists()  # nothing written, no step started


# -- every document ghostbench writes, read back by ghostbench -----------------------------------------

@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    spec_path = make_sweep(tmp, targets=[{"name": "null", "backend": "null", "batch_sizes": [2, 4]}])
    assert cli.main(["run", str(spec_path), "--store", str(tmp / "store")]) in (0, 4)
    return spec_mod.load(spec_path), store_mod.open_store(str(tmp / "store"))


def test_the_stored_spec_plans_again_to_the_same_plan(finished_sweep):
    spec, store = finished_sweep
    d = runner.sweep_dir(spec.name)
    stored = spec_mod.parse(yaml.safe_load(store.read_text(f"{d}/spec.yaml")), "spec.yaml")
    assert stored == dataclasses.replace(spec, store=store.uri)  # the store it ran in, resolved
    assert plan_mod.make_plan(stored) == plan_mod.make_plan(spec, store.uri)


def test_spec_yaml_written_by_a_sweep_plans_from_the_command_line(finished_sweep, capsys):
    spec, store = finished_sweep
    path = store.local_path(f"{runner.sweep_dir(spec.name)}/spec.yaml")
    assert cli.main(["plan", str(path)]) == 0  # a sweep's stored spec.yaml is a sweep file `plan` takes
    assert "done" in capsys.readouterr().out


def test_plan_json_and_status_json_read_back(finished_sweep):
    spec, store = finished_sweep
    d = runner.sweep_dir(spec.name)
    plan = plan_mod.Plan.from_dict(json.loads(store.read_text(f"{d}/plan.json")))
    assert plan == plan_mod.make_plan(spec, store.uri)
    status = runner.read_status(store, spec.name)
    assert status.state == "succeeded" and list(status.steps) == [s.key for s in plan.steps]
    text = store.read_text(f"{d}/status.json")
    assert json.dumps(runner.SweepStatus.from_dict(json.loads(text)).to_dict(), indent=1) + "\n" == text


def test_summary_accuracy_and_report_read_back_into_their_types(finished_sweep):
    spec, store = finished_sweep
    plan = plan_mod.make_plan(spec, store.uri)
    for step in plan.steps:
        if step.stage == "infer":
            text = store.read_text(f"{step.out}/{records.SUMMARY}")
            summary = records.InferSummary.from_json(text)
            assert summary.to_json() == text  # one writer, one reader: nothing lost either way
            assert summary.batch_size == step.params.batch_size and summary.compute.count > 0
    (ev,) = [s for s in plan.steps if s.stage == "eval"]
    text = store.read_text(f"{ev.out}/report.json")
    report = records.Report.from_json(text)
    assert report.to_json() == text and len(report.runs) == 2
    accuracies = [name for name in store.list(ev.out) if name.endswith(records.ACCURACY)]
    assert len(accuracies) == 2
    for name in accuracies:
        acc = json.loads(store.read_text(name))
        assert records.SeedAccuracy.from_dict(acc).to_dict() == acc


def test_manifest_params_read_back_into_the_stage_parameters(finished_sweep):
    from jobs.artifacts import commit

    spec, store = finished_sweep
    for step in plan_mod.make_plan(spec, store.uri).steps:
        manifest = commit.read_manifest(store.child(step.out))
        recorded = {k: v for k, v in manifest["params"].items() if k in {f.name for f in dataclasses.fields(
            type(step.params))}}
        assert type(step.params).from_dict(recorded) == step.params, step.title


def test_engine_record_reads_back(tmp_path):
    # the convert stage's record is read by the infer stage: it reads back into its type, losing nothing
    from jobs.artifacts import commit
    from jobs.stages import convert
    from tests.support import tiny_model

    with commit.Output(store_mod.open_store(tmp_path / "export"), "export", {}) as out:
        tiny_model.write(out.dir / "model.onnx", "float32")
    assert convert.main(["--model", str(tmp_path / "export"), "--batch-size", "4", "--out", str(tmp_path / "engine"),
                         "--quiet"]) == 0
    written = json.loads((tmp_path / "engine" / records.ENGINE_RECORD).read_text())
    typed = records.EngineRecord.from_dict(written)
    assert typed.to_dict() == written and typed.batch_size == 4 and typed.file == "engine.onnx"
    assert typed.details["precision"] == "fp32" and typed.details["built_for"] == "cpu"


def test_a_one_based_labels_file_is_refused_by_plan_and_run_before_any_step(tmp_path, capsys):
    spec_path = make_sweep(tmp_path, targets=[{"name": "null", "backend": "null", "batch_sizes": [2]}])
    labels = tmp_path / "images" / "val_label.txt"
    lines = labels.read_text().splitlines()
    labels.write_text("".join(f"{line.split()[0]} {1000 if i == 2 else 1}\n" for i, line in enumerate(lines)))
    store = tmp_path / "store"
    for command in ("plan", "run"):
        assert cli.main([command, str(spec_path), "--store", str(store)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"{labels}:3: label 1000" in err and "0-based" in err
    assert not store.exists()
