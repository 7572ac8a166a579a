"""The infer stage on several stand-in devices at once (null backend, ``none:N``, on this CPU): each device's own
summary and predictions, the run's summed and wall-clock figures and every device's row, ``--divide-input`` (each
image once, in order), the eval stage over the union, and what the stage refuses."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jobs import errors
from jobs.artifacts import records, shards
from jobs.harness import multidevice
from jobs.stages import eval as eval_stage
from tests.support.harness import N_IMAGES, read_predictions, run_infer

DEVICES = ["none:0", "none:1", "none:2"]


def _devices(*names):
    return [a for d in names for a in ("--devices", d)]


def _run(work, name, *extra):
    return run_infer(work, name, "--backend", "null", "--data", str(work / "data-float32"), "--batch-size", "4",
                     "--option", "images_per_s=4000", "--min-batches", "3", "--min-seconds", "0", *_devices(*DEVICES),
                     *extra)


def test_every_device_runs_every_image_and_the_throughputs_are_summed(harness_work):
    code, out = _run(harness_work, "three", "--repetitions", "2")
    assert code == 0
    summary = records.InferSummary.from_json((out / records.SUMMARY).read_text())
    d = summary.devices
    assert d is not None and d.count == 3 and not d.divide_input and d.started_together
    parts = [records.InferSummary.from_json((out / row.summary).read_text()) for row in d.devices]
    assert [p.device for p in parts] == DEVICES == [row.device for row in d.devices]
    assert all(p.num_images == N_IMAGES and p.devices is None for p in parts)
    assert summary.throughput == pytest.approx(sum(p.throughput for p in parts)) == d.summed_throughput
    assert [row.throughput for row in d.devices] == [p.throughput for p in parts]
    assert summary.repetitions.n == 2
    # a reason keeps its mark first, as one device's (reports and compare mark a run by it), then names its device
    assert summary.validity.reasons and {x.split(":")[0] for x in summary.validity.reasons} == {
        x.split(":")[0] for p in parts for x in p.validity.reasons}
    assert {x.split(": ")[1] for x in summary.validity.reasons} == set(DEVICES)
    assert summary.repetitions.throughput == pytest.approx(
        [sum(p.repetitions.throughput[i] for p in parts) for i in range(2)])
    # the wall clock of the whole: every device's images over the time from the first start to the last end
    assert d.wall_images_per_second == pytest.approx(3 * N_IMAGES / d.wall_seconds)
    assert summary.end_to_end.images == 3 * N_IMAGES and summary.num_images == N_IMAGES
    assert d.wall_seconds >= max(row.seconds for row in d.devices)
    assert summary.device == ",".join(DEVICES) and summary.target == "null-none:0,none:1,none:2"
    rows = read_predictions(out)
    assert [int(r["index"]) for r in rows] == list(range(N_IMAGES))  # each image once
    assert [r["name"] for r in rows] == [r["name"] for r in read_predictions(out / "devices" / "2")]
    assert d.disagreeing_images == 0  # the run's predictions are the first device's: every device's agreed


def test_divide_input_gives_each_device_its_part_and_each_image_once(harness_work):
    code, out = _run(harness_work, "divided", "--divide-input")
    assert code == 0
    d = records.InferSummary.from_json((out / records.SUMMARY).read_text()).devices
    assert d.divide_input and d.disagreeing_images is None  # each device its own images: nothing to compare
    assert [(row.first, row.images) for row in d.devices] == [(0, 4), (4, 3), (7, 3)]  # ais_bench's split
    whole = shards.open_dataset(str(harness_work / "data-float32"))
    rows = read_predictions(out)
    assert [r["name"] for r in rows] == whole.names
    assert [int(r["index"]) for r in rows] == list(range(N_IMAGES))
    assert [r["name"] for r in read_predictions(out / "devices" / "1")] == whole.names[4:7]


def test_the_eval_stage_reports_the_devices_and_the_union(harness_work, tmp_path):
    _, out = _run(harness_work, "for-eval", "--divide-input")
    report_dir = tmp_path / "eval"
    assert eval_stage.main(["--run", str(out), "--data", str(harness_work / "data-float32"), "--reference-top1", "0",
                            "--reference-top5", "0", "--out", str(report_dir), "--quiet"]) == 0
    report = records.Report.from_json((report_dir / "report.json").read_text())
    (row,) = report.runs
    assert (row.devices, row.num_images, row.started_together) == (3, N_IMAGES, True)
    assert row.wall_images_per_second and row.per_card_throughput is None  # no card: a stand-in on the CPU
    assert "## Several devices at once" in (report_dir / "report.md").read_text()


def test_a_part_read_from_inside_a_file_is_the_whole_pass_sliced(harness_work):
    whole = shards.open_dataset(str(harness_work / "data-float32"))  # two shards of 5 images
    full = np.concatenate([b[:n].copy() for b, n in whole.iter_batches(3, reuse=False)])
    part = whole.part(3, 8)  # across the shards' boundary, starting and ending inside files
    got = np.concatenate([b[:n].copy() for b, n in part.iter_batches(2, reuse=False)])
    assert part.names == whole.names[3:8] and part.first == 3
    np.testing.assert_array_equal(got, full[3:8])
    with pytest.raises(errors.BadInput, match="are not a part of 10 images"):
        whole.part(5, 11)


def test_divide_splits_as_ais_bench_and_refuses_empty_parts():
    assert multidevice.divide(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert multidevice.divide(4, 4) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    with pytest.raises(errors.BadInput, match="--divide-input: 2 images cannot be divided among 3 devices"):
        multidevice.divide(2, 3)


@pytest.mark.parametrize("extra, message", [
    (["--backend", "null", "--devices", "none:0"], "--devices: expected at least 2 devices"),
    (["--backend", "null", *_devices("none:0", "none:0")], "--devices: expected distinct devices, got 'none:0'"),
    (["--backend", "null", *_devices("cpu", "none")], "--devices: expected stand-in devices none:0, none:1"),
    (["--backend", "null", "--divide-input"], "--divide-input: only with --devices"),
    (["--backend", "onnxruntime", *_devices("cpu", "cpu:1")], "--devices: expected devices with an index such as"),
    (["--backend", "acl", *_devices("npu", "npu:1")], "--devices: expected npu:0, npu:1, ... for a run on several"),
])
def test_bad_devices_are_refused_in_one_line(harness_work, tmp_path, capsys, extra, message):
    code, out = run_infer(harness_work, "refused", "--data", str(harness_work / "data-float32"), "--batch-size", "2",
                          *extra)
    assert code == errors.EXIT_BAD_INPUT
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_too_few_images_to_divide_are_refused_before_any_device_starts(harness_work, capsys):
    code, out = run_infer(harness_work, "too-few", "--backend", "null", "--data", str(harness_work / "data-float32"),
                          "--batch-size", "2", *_devices(*[f"none:{i}" for i in range(11)]), "--divide-input")
    assert code == errors.EXIT_BAD_INPUT
    assert "10 images cannot be divided among 11 devices" in capsys.readouterr().err
    assert not (out / "_manifest.json").exists()


def test_the_summary_reads_back_with_its_devices(harness_work):
    _, out = _run(harness_work, "read-back")
    text = (out / records.SUMMARY).read_text()
    again = records.InferSummary.from_dict(json.loads(text))
    assert again.to_json() == text


def test_devices_that_disagree_on_an_image_are_counted(tmp_path):
    header = "index,name,top1,top2,top3,top4,top5,score1,score2,score3,score4,score5\n"
    paths = []
    for device, top1s in enumerate([(3, 5, 7), (3, 5, 7), (3, 6, 7)]):
        path = tmp_path / f"{device}.csv"
        path.write_text(header + "".join(f"{i},img{i}.JPEG,{t},0,0,0,0,1,0,0,0,0\n" for i, t in enumerate(top1s)))
        paths.append(path)
    assert multidevice.disagreeing(paths[:2]) == []
    assert multidevice.disagreeing(paths) == [1]
    paths[1].write_text(header + "0,img0.JPEG,3,0,0,0,0,1,0,0,0,0\n")
    with pytest.raises(errors.BadInput, match="not the same images"):
        multidevice.disagreeing(paths)
