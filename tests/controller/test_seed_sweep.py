"""The seed-reproduction sweep: its plan (one .om per batch size per Ascend target, the T4 runs), the
spec rules of the Ascend path, and the report's ratios and published figures with their basis."""

from __future__ import annotations

import json

import pytest

from controller import cli
from controller import plan as plan_mod
from controller import spec as spec_mod
from jobs import devices
from jobs.results import published, tables
from jobs.stages import eval as eval_stage
from jobs.stages import infer, preprocess
from jobs.tools import fake_imagenet
from tests.support.paths import REPO_ROOT
from tests.support.reports import report_row

SEED_SWEEP = REPO_ROOT / "examples" / "seed-ascend310p.yaml"
BATCH_SIZES = [1, 4, 8, 16, 32]
# The seed's table (section 7.1): batch -> (310P/310, 310P/T4)
SEED_RATIOS = {1: ("1.1145", "6.8536"), 4: ("1.0374", "3.3061"), 8: ("1.5179", "3.6222"),
               16: ("1.3101", "3.7176"), 32: ("1.1234", "6.7452")}


def arg(step, flag):
    """The typed parameter behind a stage flag (a step's command is never parsed back)."""
    return getattr(step.params, flag.lstrip("-").replace("-", "_"))


def options(step):
    return step.params.options or {}


@pytest.fixture(scope="module")
def seed_plan(tmp_path_factory):
    spec = spec_mod.load(SEED_SWEEP)
    return spec, plan_mod.make_plan(spec, str(tmp_path_factory.mktemp("store")))


def test_seed_plan_has_one_om_per_batch_size_per_ascend_target(seed_plan):
    spec, plan = seed_plan
    by_key = plan.by_key()
    ascend = [t for t in spec.targets if t.engine == "atc"]
    assert {t.name: t.accelerator for t in ascend} == {"ascend310": "Ascend310", "ascend310p": "Ascend310P3"}
    for t in ascend:
        converts = [s for s in plan.steps if s.stage == "convert" and s.target == t.name]
        assert sorted(arg(s, "--batch-size") for s in converts) == BATCH_SIZES
        for s in converts:
            assert arg(s, "--target") == "atc" and "(.om" in s.title
            assert options(s)["soc_version"] == devices.get(t.accelerator).soc_version
        infers = [s for s in plan.steps if s.stage == "infer" and s.target == t.name]
        assert sorted(arg(s, "--batch-size") for s in infers) == BATCH_SIZES
        for s in infers:
            assert arg(s, "--backend") == "acl" and s.accelerator == t.accelerator and s.exclusive
            (engine_dep,) = [d for d in s.deps if by_key[d].stage == "convert"]
            assert by_key[engine_dep].params.batch_size == s.params.batch_size
    keys = [s.key for s in plan.steps if s.stage == "convert" and arg(s, "--target") == "atc"]
    assert len(keys) == len(set(keys)) == 2 * len(BATCH_SIZES)  # 310 and 310P engines never shared


def test_seed_plan_has_the_t4_runs(seed_plan):
    _, plan = seed_plan
    infers = [s for s in plan.steps if s.stage == "infer" and s.target == "t4"]
    assert sorted(arg(s, "--batch-size") for s in infers) == BATCH_SIZES
    assert all(arg(s, "--backend") == "onnxruntime" and arg(s, "--device") == "tensorrt:0"
               and s.accelerator == "nvidia-t4" for s in infers)
    converts = [s for s in plan.steps if s.stage == "convert" and s.target == "t4"]
    assert len(converts) == len(BATCH_SIZES) and all(arg(s, "--target") == "onnxruntime" for s in converts)


def test_seed_plan_eval_asks_for_the_seeds_ratios_and_accelerators(seed_plan):
    _, plan = seed_plan
    (ev,) = [s for s in plan.steps if s.stage == "eval"]
    assert ev.params.ratios == ("ascend310p/ascend310", "ascend310p/t4")
    assert ev.params.accelerators == {"ascend310": "Ascend310", "ascend310p": "Ascend310P3", "t4": "nvidia-t4"}
    argv = ev.command()
    assert argv[argv.index("--ratio") + 1] == "ascend310p/ascend310"


def test_ghostbench_plan_lists_the_om_converts(tmp_path, capsys):
    assert cli.main(["plan", str(SEED_SWEEP), "--store", str(tmp_path)]) == 0
    titles = [line.split(None, 2)[2] for line in capsys.readouterr().out.splitlines()]  # "todo  KEY  title"
    om = [t for t in titles if t.startswith("convert ") and "(.om" in t]
    assert sorted(om) == sorted(f"convert {name} bs{bs} (.om, {soc})" for name, soc in
                                (("ascend310", "Ascend310"), ("ascend310p", "Ascend310P3")) for bs in BATCH_SIZES)
    assert sorted(t for t in titles if t.startswith("infer t4 ")) == sorted(f"infer t4 bs{bs}" for bs in BATCH_SIZES)


# -- the plan's Ascend rules ------------------------------------------------------------------------

BASE = {"name": "s", "model": {"weights": "/w.pth", "checksum": "md5:" + "a" * 32},
        "dataset": {"images": "/img", "labels": "/lab.txt"}}


def make(*targets, **top):
    return spec_mod.parse({**BASE, "targets": list(targets), **top}, "s.yaml")


def test_uint8_atc_target_converts_the_float32_export_with_aipp_and_feeds_uint8_data():
    spec = make({"name": "a", "backend": "acl", "device": "npu:0", "engine": "atc", "accelerator": "Ascend310P3",
                 "input_mode": "uint8", "batch_sizes": [4]})
    plan = plan_mod.make_plan(spec, "file:///store")
    (export,) = [s for s in plan.steps if s.stage == "export"]
    assert arg(export, "--input-dtype") == "float32"  # AIPP normalizes: the model must not
    (conv,) = [s for s in plan.steps if s.stage == "convert"]
    assert options(conv) == {"aipp": True, "soc_version": "Ascend310P3"}
    (inf,) = [s for s in plan.steps if s.stage == "infer"]
    data_root = arg(inf, "--data")
    assert all(arg(s, "--mode") == "uint8" for s in plan.steps if s.stage == "preprocess")
    assert data_root.startswith("file:///store/artifacts/preprocess/")


def test_dynamic_batch_atc_target_builds_one_engine_for_all_batch_sizes():
    spec = make({"name": "a", "backend": "acl", "device": "npu:0", "engine": "atc", "accelerator": "Ascend310",
                 "batch_sizes": [1, 8], "convert_options": {"dynamic_batch_sizes": [1, 4, 8]}})
    plan = plan_mod.make_plan(spec, "file:///store")
    (conv,) = [s for s in plan.steps if s.stage == "convert"]
    assert conv.title == "convert a dynamic (.om, Ascend310)" and arg(conv, "--batch-size") == 8
    infers = [s for s in plan.steps if s.stage == "infer"]
    assert len(infers) == 2 and all(conv.key in s.deps for s in infers)


def test_explicit_soc_version_wins_over_the_accelerator():
    spec = make({"name": "a", "backend": "acl", "device": "npu:0", "engine": "atc", "accelerator": "Ascend310P3",
                 "batch_sizes": [1], "convert_options": {"soc_version": "auto"}})
    (conv,) = [s for s in plan_mod.make_plan(spec, "file:///store").steps if s.stage == "convert"]
    assert options(conv) == {"soc_version": "auto"}


def test_an_empty_ratio_list_is_no_ratio_list():
    a = make({"name": "a", "batch_sizes": [1]})
    b = make({"name": "a", "batch_sizes": [1]}, report={"ratios": []})
    eval_key = [s.key for s in plan_mod.make_plan(a, "file:///x").steps if s.stage == "eval"]
    assert eval_key == [s.key for s in plan_mod.make_plan(b, "file:///x").steps if s.stage == "eval"]
    c = make({"name": "a", "batch_sizes": [1]}, {"name": "b", "batch_sizes": [1]}, report={"ratios": ["b/a"]})
    (ev,) = [s for s in plan_mod.make_plan(c, "file:///x").steps if s.stage == "eval"]
    assert ev.params.ratios == ("b/a",)


@pytest.mark.parametrize("target, top, message", [
    ({"name": "a", "backend": "acl", "engine": "onnxruntime"}, {},
     "targets[0].engine: expected atc for backend acl (it runs .om engines), got 'onnxruntime'"),
    ({"name": "a", "backend": "acl", "engine": "atc"}, {},
     ("targets[0].accelerator: expected an Ascend accelerator (Ascend310, Ascend310P3, Ascend910B) or "
      "convert_options.soc_version for engine atc, got None")),
    ({"name": "a", "backend": "acl", "engine": "atc", "accelerator": "nvidia-t4"}, {},
     "targets[0].accelerator: expected an Ascend accelerator"),
    ({"name": "a", "backend": "acl", "engine": "atc", "accelerator": "Ascend310", "convert_options": {"aipp": True}},
     {}, "targets[0].convert_options.aipp: expected true or false, and false unless input_mode is uint8"),
    ({"name": "a", "backend": "acl", "engine": "atc", "accelerator": "Ascend310", "batch_sizes": [1, 2],
      "convert_options": {"dynamic_batch_sizes": [1, 4]}}, {},
     "targets[0].batch_sizes: expected batch sizes among convert_options.dynamic_batch_sizes [1, 4], got [1, 2]"),
    ({"name": "a"}, {"report": {"ratios": ["a/b"]}},
     "report.ratios[0]: expected 'A/B' naming two targets of this sweep (a), got 'a/b'"),
    ({"name": "a"}, {"report": {"ratio": ["a/a"]}}, "report.ratio: unknown field (did you mean 'ratios'?)"),
])
def test_ascend_spec_errors_name_the_field(target, top, message):
    with pytest.raises(spec_mod.SpecError) as e:
        make(target, **top)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_spec_round_trips_the_report_section():
    spec = spec_mod.load(SEED_SWEEP)
    assert spec.report.ratios == ("ascend310p/ascend310", "ascend310p/t4")
    assert spec.to_dict()["report"] == {"ratios": ["ascend310p/ascend310", "ascend310p/t4"], "latency_limit_ms": None}
    assert spec_mod.parse(spec.to_dict(), str(SEED_SWEEP)) == spec


# -- reports: ratios and the published figures' basis -----------------------------------------------

def test_published_table_states_the_basis_and_reproduces_the_seeds_ratios():
    header, rows = tables.published_table()
    assert header == ["Batch size", "Ascend 310 per card (4 chips)", "Ascend 310 per chip (card / 4)",
                      "Ascend 310P per card (1 chip)", "NVIDIA T4 per card (1 chip)",
                      "Ascend 310P/Ascend 310 (per card)", "Ascend 310P/NVIDIA T4 (per card)"]
    for row in rows:
        assert tuple(row[-2:]) == SEED_RATIOS[int(row[0])]
    assert rows[0][1:3] == ["1,348.02", "337.01"]
    for acc in published.SEED:
        assert acc in devices.CATALOGUE


def test_throughput_table_with_asked_ratios():
    runs = [report_row(t, 1, v) for t, v in (("a", 100.0), ("b", 150.0), ("c", 50.0))]
    header, rows = tables.throughput_table(runs, [("b", "a"), ("b", "c")])
    assert header == ["Batch size", "a", "b", "c", "b/a", "b/c"]
    assert rows == [["1", "100.0", "150.0", "50.0", "1.5000", "3.0000"]]


def test_published_comparison_scales_one_310_chip_to_a_card():
    # measured values chosen as the published ones per chip: every measured/published is 1
    pub = {acc: p.throughput for acc, p in published.SEED.items()}
    runs = []
    for bs in BATCH_SIZES:
        runs += [report_row("a310", bs, pub["Ascend310"][bs] / 4),
                 report_row("a310p", bs, pub["Ascend310P3"][bs]),
                 report_row("t4", bs, pub["nvidia-t4"][bs])]
    accs = {"a310": "Ascend310", "a310p": "Ascend310P3", "t4": "nvidia-t4"}
    header, rows = tables.published_comparison(runs, accs, [("a310p", "a310"), ("a310p", "t4")])
    assert header[1:5] == ["a310 per card", "a310 basis", "published Ascend 310", "a310/published"]
    assert header[-4:] == ["a310p/a310 per card", "published", "a310p/t4 per card", "published"]
    for row in rows:
        assert row[4] == row[8] == row[12] == "1.0000"
        assert (row[2], row[6]) == ("extrapolated from 1 of 4 chips (x4)", "measured on 1 of 1 chip")
        assert (row[-4], row[-2]) == SEED_RATIOS[int(row[0])] and (row[-3], row[-1]) == SEED_RATIOS[int(row[0])]
    # without asked ratios: the seed's own 310P/310 and 310P/T4 columns
    default_header, _ = tables.published_comparison(runs, accs)
    assert default_header[-4:] == ["a310p/a310 per card", "published", "a310p/t4 per card", "published"]
    assert tables.published_comparison(runs, {}) is None


def test_eval_stage_with_ratios_and_accelerators(tmp_path, capsys):
    images = tmp_path / "images"
    names = fake_imagenet.make_image_set(images, count=4, seed=2)
    fake_imagenet.write_labels(images, names, [0, 1, 2, 3])
    data = str(tmp_path / "data")
    assert preprocess.main(["--images", str(images), "--labels", str(images / "val_label.txt"), "--out", data,
                            "--quiet"]) == 0
    runs = []
    for target in ("ascend310", "ascend310p", "t4"):
        out = tmp_path / f"infer-{target}"
        assert infer.main(["--backend", "null", "--data", data, "--batch-size", "4", "--min-batches", "1",
                           "--min-seconds", "0", "--target-name", target, "--out", str(out), "--quiet"]) == 0
        runs += ["--run", str(out)]
    out = tmp_path / "eval"
    assert eval_stage.main([*runs, "--data", data, "--ratio", "ascend310p/ascend310", "--ratio", "ascend310p/t4",
                            "--accelerator", "ascend310=Ascend310", "--accelerator", "ascend310p=Ascend310P3",
                            "--accelerator", "t4=nvidia-t4", "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["ratios"] == ["ascend310p/ascend310", "ascend310p/t4"]
    assert report["accelerators"] == {"ascend310": "Ascend310", "ascend310p": "Ascend310P3", "t4": "nvidia-t4"}
    md = (out / "report.md").read_text()
    assert "| Batch size | ascend310 | ascend310p | t4 | ascend310p/ascend310 | ascend310p/t4 |" in md
    assert "## Against the published figures (per card, as the seed's table)" in md
    assert "| 4 | " in md and "Ascend 310 per chip (card / 4)" in md
    bad = eval_stage.main([*runs, "--data", data, "--ratio", "ascend310p/nothing", "--out", str(tmp_path / "e2"),
                           "--quiet"])
    assert bad == 2 and "--ratio 'ascend310p/nothing': expected A/B naming two targets" in capsys.readouterr().err
