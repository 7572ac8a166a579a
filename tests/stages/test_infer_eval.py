"""infer and eval on a tiny ONNX model and a few fake images: the harness, not the network."""

import json

import numpy as np
import pytest

from jobs import store
from jobs.artifacts import commit, shards
from jobs.artifacts import records
from jobs.stages import eval as eval_stage
from tests.support import tiny_model
from tests.support.harness import N_IMAGES, make_engine, make_poisoned_engine, read_predictions, run_infer


def test_onnxruntime_predictions_match_numpy_and_padding_is_dropped(harness_work):
    engine = make_engine(harness_work, "float32", 4)
    code, out = run_infer(harness_work, "infer-f32-4", "--engine", engine, "--data",
                          str(harness_work / "data-float32"), "--batch-size", "4", "--min-batches", "1",
                          "--min-seconds", "0")
    assert code == 0
    rows = read_predictions(out)
    ds = shards.open_dataset(str(harness_work / "data-float32"))
    assert [r["name"] for r in rows] == ds.names and len(rows) == N_IMAGES  # 3 batches, 2 padded rows dropped
    batches = [b[:n].copy() for b, n in ds.iter_batches(N_IMAGES)]
    expected = tiny_model.reference_logits(batches[0])
    assert [int(r["top1"]) for r in rows] == expected.argmax(axis=1).tolist()
    top5 = np.argsort(-expected, axis=1, kind="stable")[:, :5]
    assert [[int(r[f"top{k}"]) for k in range(1, 6)] for r in rows] == top5.tolist()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_batches"] == 3 and summary["padded_images"] == 2
    assert summary["batch_size"] == 4 and summary["input_mode"] == "float32"
    for key in ("NPU_compute_time", "H2D_latency", "D2H_latency"):
        assert set(summary[key]) == {"min", "max", "mean", "median", "percentile(99%)", "count"}
    assert summary["throughput"] == pytest.approx(4000.0 / summary["NPU_compute_time"]["mean"])
    assert summary["NPU_compute_time"]["count"] == 3  # one pass: 3 batches, the padded one included


def test_uint8_data_with_uint8_engine(harness_work):
    engine = make_engine(harness_work, "uint8", 8)
    code, out = run_infer(harness_work, "infer-u8-8", "--engine", engine, "--data",
                          str(harness_work / "data-uint8"), "--batch-size", "8", "--min-batches", "1",
                          "--min-seconds", "0")
    assert code == 0
    rows = read_predictions(out)
    ds = shards.open_dataset(str(harness_work / "data-uint8"))
    batch = next(iter(ds.iter_batches(N_IMAGES)))[0]
    assert [int(r["top1"]) for r in rows] == tiny_model.reference_logits(batch).argmax(axis=1).tolist()


def test_short_pass_runs_extra_timed_passes(harness_work):
    code, out = run_infer(harness_work, "infer-null-4", "--backend", "null", "--data",
                          str(harness_work / "data-float32"), "--batch-size", "4", "--min-batches", "7",
                          "--min-seconds", "0", "--warmup", "0")
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passes"] == 3                       # 3 batches a pass; 7 needs 3 passes
    assert summary["NPU_compute_time"]["count"] == 9
    assert len(read_predictions(out)) == N_IMAGES       # predictions from the first pass only


def test_overlapped_and_serial_passes_write_the_same_predictions(harness_work, monkeypatch):
    engine = make_engine(harness_work, "float32", 2)
    outputs = {}
    for overlapped in (True, False):
        code, out = run_infer(harness_work, f"infer-overlap-{overlapped}", "--engine", engine, "--data",
                              str(harness_work / "data-float32"), "--batch-size", "2", "--min-batches", "1",
                              "--min-seconds", "0", overlap=overlapped)
        assert code == 0
        outputs[overlapped] = (out / "predictions.csv").read_text()
        e2e = json.loads((out / "summary.json").read_text())["end_to_end"]
        assert 0 < e2e["compute_seconds"] <= e2e["seconds"] and 0 < e2e["efficiency"] <= 1
        assert e2e["bytes_read_per_image"] == pytest.approx(3 * 224 * 224 * 4, rel=0.01)
    assert outputs[True] == outputs[False] and outputs[True].count("\n") == N_IMAGES + 1


def test_null_backend_stands_in_for_a_device_of_given_speed(harness_work):
    code, out = run_infer(harness_work, "infer-null-sim", "--backend", "null", "--option", "images_per_s=2000",
                          "--data", str(harness_work / "data-float32"), "--batch-size", "5",
                          "--min-batches", "1", "--min-seconds", "0")
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["NPU_compute_time"]["min"] >= 5 / 2000 * 1e3  # each batch waited at least batch / rate
    assert summary["backend_info"]["simulated_images_per_s"] == 2000
    assert summary["end_to_end"]["overlapped"] is True  # a device: the host's work overlaps it


def test_a_backend_computing_on_the_host_runs_serially_by_default(harness_work):
    engine = make_engine(harness_work, "float32", 2)
    code, out = run_infer(harness_work, "infer-auto", "--engine", engine, "--data",
                          str(harness_work / "data-float32"), "--batch-size", "2", "--min-batches", "1",
                          "--min-seconds", "0")
    assert code == 0
    assert json.loads((out / "summary.json").read_text())["end_to_end"]["overlapped"] is False


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "8"], "the engine was built for batch size 4"),
    (["--batch-size", "0"], "--batch-size: expected a number >= 1, got 0"),
    (["--batch-size", "4", "--backend", "tensorflow"], "backend 'tensorflow' is not known"),
    (["--batch-size", "4", "--backend", "acl"], "device: expected npu or npu:N for backend acl, got 'cpu'"),
    (["--batch-size", "4", "--device", "gpu"], "device: expected one of cpu, cuda[:N], tensorrt[:N], cann[:N] for backend onnxruntime, got 'gpu'"),
    (["--batch-size", "4", "--option", "threads"], "--option 'threads': expected KEY=VALUE"),
    (["--batch-size", "4", "--backend", "null", "--option", "images_per_s=0"],
     "option images_per_s: expected a number > 0, got 0"),
    (["--batch-size", "4", "--backend", "null", "--option", "logits=sorted"],
     "option logits: expected one of ramp, tied, nonfinite, got 'sorted'"),
])
def test_bad_infer_arguments_exit_2_with_one_line(harness_work, capsys, args, message):
    engine = make_engine(harness_work, "float32", 4)
    code, out = run_infer(harness_work, "infer-bad", "--engine", engine, "--data",
                          str(harness_work / "data-float32"), *args)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err
    assert commit.read_manifest(store.open_store(out)) is None


def test_uint8_data_with_float_engine_is_bad_input(harness_work, capsys):
    engine = make_engine(harness_work, "float32", 4)
    code, _ = run_infer(harness_work, "infer-mismatch", "--engine", engine, "--data",
                        str(harness_work / "data-uint8"), "--batch-size", "4")
    assert code == 2
    assert "takes float32 but the data" in capsys.readouterr().err


def test_uncommitted_engine_is_bad_input(harness_work, capsys):
    code, _ = run_infer(harness_work, "infer-x", "--engine", str(harness_work / "nothing-here"), "--data",
                        str(harness_work / "data-float32"), "--batch-size", "4")
    assert code == 2
    assert "--engine" in capsys.readouterr().err


def test_rerun_of_committed_infer_does_nothing(harness_work):
    code, out = run_infer(harness_work, "infer-null-rerun", "--backend", "null", "--data",
                          str(harness_work / "data-float32"), "--batch-size", "2", "--min-batches", "1",
                          "--min-seconds", "0")
    assert code == 0
    before = (out / commit.MANIFEST).read_bytes()
    code, _ = run_infer(harness_work, "infer-null-rerun", "--backend", "null", "--data",
                        str(harness_work / "data-float32"), "--batch-size", "2", "--min-batches", "1",
                        "--min-seconds", "0")  # the same parameters
    assert code == 0 and (out / commit.MANIFEST).read_bytes() == before


def test_eval_writes_seed_accuracy_and_reports(harness_work):
    runs = []
    for bs in (2, 4):
        code, out = run_infer(harness_work, f"infer-eval-null-{bs}", "--backend", "null", "--data",
                              str(harness_work / "data-float32"), "--batch-size", str(bs),
                              "--min-batches", "1", "--min-seconds", "0", "--target-name", "nulltarget")
        assert code == 0
        runs += ["--run", str(out)]
    out = harness_work / "eval"
    assert eval_stage.main([*runs, "--data", str(harness_work / "data-float32"), "--out", str(out), "--quiet",
                            "--reference-top1", "20", "--reference-top5", "50", "--gate", "1"]) == 0
    # The null backend always predicts classes 0..4; labels are i % 7 over 10 images.
    labels = [i % 7 for i in range(N_IMAGES)]
    top1 = 100.0 * sum(label == 0 for label in labels) / N_IMAGES
    top5 = 100.0 * sum(label < 5 for label in labels) / N_IMAGES
    acc = json.loads((out / "runs" / "nulltarget" / "bs4" / "accuracy.json").read_text())
    values = {v["key"]: v["value"] for v in acc["value"]}
    assert values["Number of images"] == str(N_IMAGES)
    assert values["Top1 accuracy"] == f"{top1:.2f}%" and values["Top5 accuracy"] == f"{top5:.2f}%"
    report = json.loads((out / "report.json").read_text())
    assert [r["batch_size"] for r in report["runs"]] == [2, 4]
    assert report["all_pass"] == (top1 >= 19 and top5 >= 49)
    md = (out / "report.md").read_text()
    assert "| Batch size | nulltarget |" in md and ("FAIL" in md) != report["all_pass"]
    assert (out / "report.csv").read_text().splitlines()[0].startswith("target,backend,device,input_mode")


def test_tied_logits_rank_the_lowest_classes_first_end_to_end(harness_work):
    # issue 20.1: a model whose logits are all equal ranked classes 984-988 and scored top-5 0%
    code, out = run_infer(harness_work, "infer-null-tied", "--backend", "null", "--option", "logits=tied",
                          "--data", str(harness_work / "data-float32"), "--batch-size", "4",
                          "--min-batches", "1", "--min-seconds", "0", "--target-name", "tied")
    assert code == 0
    assert {tuple(int(r[f"top{k}"]) for k in range(1, 6)) for r in read_predictions(out)} == {(0, 1, 2, 3, 4)}
    ev = harness_work / "eval-tied"
    assert eval_stage.main(["--run", str(out), "--data", str(harness_work / "data-float32"), "--out", str(ev),
                            "--quiet", "--reference-top1", "20", "--reference-top5", "80", "--gate", "1"]) == 0
    labels = [i % 7 for i in range(N_IMAGES)]  # the harness images' labels
    report = json.loads((ev / "report.json").read_text())
    assert report["runs"][0]["accuracy"]["5"] == 100.0 * sum(label < 5 for label in labels) / N_IMAGES == 80.0
    assert report["all_pass"]


def test_nonfinite_logits_are_counted_kept_and_fail_the_gate(harness_work, caplog):
    # issue 20.2: NaN and inf logits were ranked and scored without a word, and a run passed its gate
    code, run = run_infer(harness_work, "infer-poisoned", "--engine", make_poisoned_engine(harness_work, 4), "--data",
                          str(harness_work / "data-float32"), "--batch-size", "4", "--min-batches", "1",
                          "--min-seconds", "0", "--target-name", "poisoned")
    assert code == 0  # the evidence is committed: predictions.csv and summary.json keep the values
    bad = records.InferSummary.from_json((run / records.SUMMARY).read_text()).nonfinite
    assert bad.images == N_IMAGES and bad.nan == N_IMAGES and bad.posinf + bad.neginf == N_IMAGES
    assert bad.examples == tuple(r["name"] for r in read_predictions(run))[:records.NONFINITE_EXAMPLES]
    assert f"infer: {N_IMAGES} of {N_IMAGES} images have non-finite logits" in caplog.text
    assert all(r["top5"] != "2" for r in read_predictions(run))  # NaN (class 2) ranks last
    ev = harness_work / "eval-poisoned"
    assert eval_stage.main(["--run", str(run), "--data", str(harness_work / "data-float32"), "--out", str(ev),
                            "--quiet", "--reference-top1", "0", "--reference-top5", "0", "--gate", "1"]) == 0
    report = records.Report.from_json((ev / "report.json").read_text())
    assert report.runs[0].nonfinite == N_IMAGES and not report.runs[0].gate_pass and not report.all_pass
    md = (ev / "report.md").read_text()
    assert "| FAIL (non-finite logits) |" in md and f"poisoned bs4 ({N_IMAGES} of {N_IMAGES} images)" in md
    csv_lines = (ev / "report.csv").read_text().splitlines()
    assert csv_lines[0].endswith(",gate_pass,nonfinite") and csv_lines[1].endswith(f",False,{N_IMAGES}")


def test_summaries_and_reports_without_a_nonfinite_count_still_load(harness_work):
    code, run = run_infer(harness_work, "infer-null-old", "--backend", "null", "--data",
                          str(harness_work / "data-float32"), "--batch-size", "4", "--min-batches", "1",
                          "--min-seconds", "0")
    assert code == 0
    doc = json.loads((run / records.SUMMARY).read_text())
    assert doc["nonfinite"] == {"images": 0, "values": 0, "nan": 0, "posinf": 0, "neginf": 0, "examples": []}
    del doc["nonfinite"]
    assert records.InferSummary.from_dict(doc).nonfinite == records.NonFinite()
    row = records.ReportRun(run="r", target="t", backend="null", device="cpu", input_mode=None, batch_size=1,
                            num_images=1, throughput=1.0, compute_mean_ms=1.0, compute_p99_ms=1.0,
                            end_to_end_images_per_second=1.0, passes=1, accuracy={"1": 0.0}, gate_pass=True)
    old = row.to_dict()
    del old["nonfinite"]
    assert records.ReportRun.from_dict(old) == row and row.nonfinite == 0
