"""What the accuracy figures rest on, stated by the report: the images left out (skip_bad) with their reasons,
and how many distinct labels the evaluated images carry; the demo's images spread over many classes."""

from __future__ import annotations

import json

import pytest
import yaml

from controller import cli
from jobs import errors
from jobs import store as store_mod
from jobs.artifacts import records
from jobs.results import tables
from jobs.tools import fake_imagenet

REFERENCE = records.Reference(top1=70.0, top5=90.0, gate=1.0, kind="imagenet")


def skip_bad_sweep(tmp_path):
    images = tmp_path / "images"
    names = fake_imagenet.make_image_set(images, count=8, seed=4)
    fake_imagenet.write_labels(images, names[:1] + names[2:], [0, 1, 2, 0, 1, 2, 0])  # shard 0: one unlabelled
    (images / names[5]).write_bytes(b"not a jpeg")  # shard 1: one undecodable
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({
        "name": "s", "store": "store",
        "dataset": {"images": "images", "labels": "images/val_label.txt", "shards": 2, "skip_bad": True},
        "targets": [{"name": "null", "backend": "null", "batch_sizes": [2]}],
        "reference": {"top1": 0.0, "top5": 0.0},
        "timing": {"warmup": 0, "min_batches": 1, "min_seconds": 0},
    }))
    return path, names


def test_skip_bad_sweep_reports_the_left_out_images_with_their_reasons(tmp_path, capsys):
    path, names = skip_bad_sweep(tmp_path)
    assert cli.main(["run", str(path)]) == 0
    err = capsys.readouterr().err
    sweep = tmp_path / "store" / "sweeps" / "s"

    doc = json.loads((sweep / "report.json").read_text())
    assert doc["left_out"]["total"] == 2
    assert doc["left_out"]["counts"] == {"unlabelled": 1, "undecodable": 1}
    assert [e["name"] for e in doc["left_out"]["examples"]] == [names[1], names[5]]  # shard 0 first
    assert all(e["reason"] for e in doc["left_out"]["examples"])
    assert doc["runs"][0]["num_images"] == 6
    assert doc["distinct_labels"] == 3
    assert records.Report.from_dict(doc).to_dict() == doc

    md = (sweep / "report.md").read_text()
    (line,) = [x for x in md.splitlines() if x.startswith("**Left out:**")]
    assert "2 images of the dataset left out (skip_bad): 1 unlabelled, 1 undecodable" in line
    assert names[5] in line and names[1] in line and "no label" in line
    assert "The evaluated images carry 3 distinct labels." in md

    (console,) = [x for x in err.splitlines() if "left out" in x and x.startswith("sweep s:")]
    assert "2 images of the dataset left out (skip_bad): 1 unlabelled, 1 undecodable" in console


def test_labelled_images_missing_from_the_folder_fail_the_gate_unless_the_sweep_intends_it(tmp_path, capsys):
    """An incomplete copy of the images: accuracy was silently taken over the rest."""
    images = tmp_path / "images"
    names = fake_imagenet.make_image_set(images, count=4, seed=4)
    gone = [fake_imagenet.image_name(i) for i in (4, 5, 6)]
    fake_imagenet.write_labels(images, names + gone, [0, 1, 2, 0, 1, 2, 0])
    doc = {"name": "s", "store": "store", "dataset": {"images": "images", "labels": "images/val_label.txt", "shards": 2},
           "targets": [{"name": "null", "backend": "null", "batch_sizes": [2]}], "reference": {"top1": 0.0, "top5": 0.0},
           "timing": {"warmup": 0, "min_batches": 1, "min_seconds": 0}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert cli.main(["run", str(path)]) == errors.EXIT_GATE_FAILED
    err = capsys.readouterr().err
    report = json.loads((tmp_path / "store" / "sweeps" / "s" / "report.json").read_text())
    assert report["left_out"]["counts"] == {"missing": 3} and not report["all_pass"]
    assert [e["name"] for e in report["left_out"]["examples"]] == gone
    assert [r["gate_pass"] for r in report["runs"]] == [False] and report["runs"][0]["num_images"] == 4
    assert records.Report.from_dict(report).to_dict() == report
    (console,) = [x for x in err.splitlines() if "missing from the image folder" in x]
    assert f"sweep s: 3 labelled images missing from the image folder; e.g. {gone[0]} (labelled, not in" in console
    assert "sweep s: the dataset lacks 3 image(s) the labels file names: every run fails the accuracy gate" in err
    assert "  null bs2: top-1 " in err and ", 3 labelled images missing from the dataset" in err  # why, per run
    md = (tmp_path / "store" / "sweeps" / "s" / "report.md").read_text()
    assert "**Every run fails the accuracy gate:** the dataset lacks images the labels file names" in md
    assert "| FAIL (images missing) |" in md
    assert cli.main(["report", "s", "--store", str(tmp_path / "store"), "--check-gate"]) == errors.EXIT_GATE_FAILED
    assert "accuracy gate FAILED: null bs2: " in (e := capsys.readouterr().err) and "3 labelled images missing" in e

    doc["dataset"]["allow_missing"] = True  # a partial set, on purpose: only eval runs again
    path.write_text(yaml.safe_dump(doc))
    assert cli.main(["run", str(path)]) == 0
    report = json.loads((tmp_path / "store" / "sweeps" / "s" / "report.json").read_text())
    assert report["all_pass"] and report["allow_missing"] and report["left_out"]["counts"] == {"missing": 3}
    md = (tmp_path / "store" / "sweeps" / "s" / "report.md").read_text()
    assert "Accuracy is over the images present, as the sweep intends (`dataset.allow_missing`)." in md


def run_row() -> records.ReportRun:
    return records.ReportRun(run="r", target="t", backend="null", device="cpu", input_mode="float32", batch_size=1,
                             num_images=10, throughput=1.0, compute_mean_ms=1.0, compute_p99_ms=1.0,
                             end_to_end_images_per_second=1.0, passes=1, accuracy={"1": 70.0, "5": 90.0},
                             gate_pass=True)


def test_report_round_trip_with_left_out_and_distinct_labels():
    left = records.LeftOut(counts={"undecodable": 3}, examples=({"name": "a.JPEG", "reason": "truncated"},))
    report = records.Report(model="ghostnet_1.0x", reference=REFERENCE, runs=(run_row(),), left_out=left,
                            distinct_labels=7)
    assert records.Report.from_json(report.to_json()) == report
    d = report.to_dict()
    assert d["left_out"] == {"total": 3, "counts": {"undecodable": 3},
                             "examples": [{"name": "a.JPEG", "reason": "truncated"}]}
    md = tables.to_markdown(report)
    assert "**Left out:** 3 images of the dataset left out (skip_bad): 3 undecodable; e.g. a.JPEG (truncated), ..." \
        in md
    assert "The evaluated images carry 7 distinct labels." in md


def test_report_without_left_out_images_has_no_such_key():
    report = records.Report(model="ghostnet_1.0x", reference=REFERENCE, runs=(run_row(),))
    d = report.to_dict()
    assert "left_out" not in d and "distinct_labels" not in d
    assert records.Report.from_dict(d) == report
    assert "Left out" not in tables.to_markdown(report) and "distinct label" not in tables.to_markdown(report)


def test_demo_images_spread_over_many_classes_of_the_reference_model(tmp_path):
    pytest.importorskip("torch")
    from controller import demo
    from jobs import models

    store = store_mod.open_store(tmp_path / "store")
    inputs = demo.prepare_inputs(store, 48, offline=True)
    assert not inputs["official"]
    root = tmp_path / "store" / inputs["labels"].split("/store/", 1)[1]
    lines = root.read_text().splitlines()
    labels = [int(x.split()[1]) for x in lines]
    names = [x.split()[0] for x in lines]
    assert len(labels) == 48 and len(set(labels)) >= 20
    assert inputs["distinct_labels"] == len(set(labels))
    # the labels are the committed weights' own top-1 (what the sweep's agreement is measured against)
    images_dir = root.parent / "images"
    weights_path = root.parent / "weights.pth"
    assert demo._reference_labels(weights_path, images_dir, names, models.get(demo.MODEL)) == labels
    # made once: a second call reuses them
    assert demo.prepare_inputs(store, 48, offline=True) == inputs
