"""`ghostbench compare A B`: two sweeps' reports run by run, or a sweep with the published figures.

Hand-made reports written as ``sweeps/<id>/report.json`` into local stores and an S3 bucket (SeaweedFS,
tests/support/s3server.py); verdicts on the runs' repetitions (faster, slower, same, inconclusive), unmatched
rows, exit codes (0, 5 on a regression, 6 for an inconclusive pair when asked, 2 on bad input) and the three
output formats, the JSON reading back into the typed comparison.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib

import pytest
import yaml

from controller import cli
from jobs import errors, store
from jobs.artifacts import records
from jobs.results import compare, published

GATE = 1.0
STEADY = (1.0, 1.01, 0.99, 1.005, 0.995)
"""Repetitions within 1% of each other, as multiples of a run's figure."""


def run(target: str, bs: int, tp: float, reps: tuple[float, ...] | None = STEADY, top1: float = 75.0,
        p99: float = 10.0, precision: str = "fp32", input_mode: str | None = "float32", valid: bool = True,
        busy: bool = False) -> records.ReportRun:
    """A report row at ``tp`` images/s whose repetitions are ``tp`` x ``reps`` (None: an older report)."""
    r = tuple(tp * x for x in reps) if reps else ()
    return records.ReportRun(
        run=f"store/artifacts/infer/{target}-{bs}", target=target, backend="null", device="cpu", input_mode=input_mode,
        batch_size=bs, num_images=48, throughput=tp, compute_mean_ms=1000.0 * bs / tp, compute_p99_ms=p99,
        end_to_end_images_per_second=tp / 2, passes=1, accuracy={"1": top1, "5": 90.0}, gate_pass=True,
        precision=precision, provider="CPUExecutionProvider", repetitions=r,
        repetitions_low=min(r) if r else 0.0, repetitions_high=max(r) if r else 0.0, valid=valid and bool(r),
        validity_reasons=() if valid else ("short: 2.00s of timed compute, a valid run has 10s",), busy=busy,
        noise_reasons=("other processes took 40% of the host's CPU time",) if busy else ())


def report(*runs: records.ReportRun, kind: str = "agreement", top1: float = 75.0,
           accelerators: dict[str, str] | None = None, model: str = "ghostnet_1.0x") -> records.Report:
    return records.Report(model=model, reference=records.Reference(top1, 90.0, GATE, kind), runs=tuple(runs),
                          accelerators=accelerators or {})


NOISY = (1.0, 0.8, 1.3, 0.9, 1.2)
"""Repetitions spread by half their median: no 5% change can be told from these."""

# A: the baseline; B: one row 20% faster, one 2% faster (within the threshold), one too noisy to judge, one only
# in each, and one whose precision differs (unmatched both ways).
A = report(run("t1", 1, 100.0, p99=10.0),
           run("t1", 4, 200.0),
           run("t1", 8, 300.0),
           run("t2", 1, 100.0),
           run("t3", 1, 50.0, precision="fp32"))
B = report(run("t1", 1, 120.0, p99=8.0),               # 1.2x, repetitions 1% apart: faster
           run("t1", 4, 204.0),                        # 1.02x: a change within the threshold
           run("t1", 16, 400.0),                       # only in B
           run("t2", 1, 108.0, NOISY),                 # 1.08x, but B's repetitions spread 50%: inconclusive
           run("t3", 1, 90.0, precision="fp16"))       # another precision: no partner
# B slower on one row.
B_SLOWER = report(run("t1", 1, 80.0), run("t1", 4, 200.0))
# B as fast, but its top-1 dropped by more than the gate (1 point).
B_LESS_ACCURATE = report(run("t1", 1, 100.0), run("t1", 4, 200.0, top1=73.5))


def put(store_uri: str, sweep: str, rep: records.Report) -> None:
    store.open_store(store_uri).write_text(f"sweeps/{sweep}/report.json", rep.to_json())


def uri(store_uri: str, sweep: str) -> str:
    """Where compare says it read a sweep's report: the store's URI (file:///... for a directory)."""
    return f"{store.open_store(store_uri).uri}/sweeps/{sweep}/report.json"


def by_label(c: compare.Comparison) -> dict[str, compare.Pair]:
    return {p.key.label(): p for p in c.pairs}


# --- the comparison itself ------------------------------------------------------------------------------


def test_verdicts_rest_on_the_repetitions_and_unmatched_rows_are_listed():
    c = compare.compare(A, B, 0.05, "a", "b")
    pairs = by_label(c)
    assert set(pairs) == {"t1 bs1 fp32 float32", "t1 bs4 fp32 float32", "t2 bs1 fp32 float32"}
    faster, same, noisy = pairs["t1 bs1 fp32 float32"], pairs["t1 bs4 fp32 float32"], pairs["t2 bs1 fp32 float32"]
    assert faster.verdict == "faster" and faster.ratio == pytest.approx(1.2)
    assert faster.evidence.low < 1.2 < faster.evidence.high and faster.evidence.p_value < 0.001
    assert faster.p99_ratio == pytest.approx(0.8) and faster.top1_delta == 0.0
    assert same.verdict == "same" and same.ratio == pytest.approx(1.02)
    assert same.evidence.detectable < 0.05  # a 5% change would have shown
    assert noisy.verdict == "inconclusive" and noisy.evidence.detectable > 0.05
    assert "too noisy to detect a 5.0% change" in noisy.evidence.why
    assert [u.key.label() for u in c.only_in_a] == ["t1 bs8 fp32 float32", "t3 bs1 fp32 float32"]
    assert [u.key.label() for u in c.only_in_b] == ["t1 bs16 fp32 float32", "t3 bs1 fp16 float32"]
    assert not c.regressed and c.exit_code == errors.EXIT_OK == 0
    assert c.counts() == {"faster": 1, "same": 1, "slower": 0, "inconclusive": 1, "accuracy_drop": 0,
                          "only_in_a": 2, "only_in_b": 2, "regressed": 0}


def test_an_inconclusive_pair_fails_only_when_asked():
    assert compare.compare(A, B, inconclusive="fail").exit_code == errors.EXIT_INCONCLUSIVE == 6
    assert compare.compare(A, B_SLOWER, inconclusive="fail").exit_code == errors.EXIT_REGRESSION  # 5 wins


def test_a_larger_threshold_makes_a_change_the_same():
    assert by_label(compare.compare(A, B, 0.25))["t1 bs1 fp32 float32"].verdict == "same"


def test_slower_beyond_threshold_and_significant_regresses():
    c = compare.compare(A, B_SLOWER)
    slower = by_label(c)["t1 bs1 fp32 float32"]
    assert slower.verdict == "slower" and slower.evidence.high < 0.95 and slower.regressed
    assert c.exit_code == errors.EXIT_REGRESSION == 5
    # 8% slower, but B's repetitions spread too widely to tell: never slower, inconclusive
    unsure = report(run("t1", 1, 92.0, NOISY))
    p = by_label(compare.compare(A, unsure))["t1 bs1 fp32 float32"]
    assert p.verdict == "inconclusive" and not p.regressed


def test_a_known_slowdown_is_slower_on_every_row_and_identical_runs_are_the_same():
    # a stand-in device at 16,000 against 20,000 images/s: repetitions identical to the last digit
    rows = [(f"null", bs) for bs in (1, 4, 8, 16, 32)]
    fast = report(*(run(t, bs, 20000.0, (1.0,) * 5) for t, bs in rows))
    slow = report(*(run(t, bs, 16000.0, (1.0,) * 5) for t, bs in rows))
    assert {p.verdict for p in compare.compare(fast, slow).pairs} == {"slower"}
    assert compare.compare(fast, slow).exit_code == 5
    assert {p.verdict for p in compare.compare(fast, fast).pairs} == {"same"}


def test_variation_between_runs_seen_across_the_pairs_widens_every_pair():
    # A/A on a host whose speed wanders by a few percent between runs, more than within a run: the pairs' log
    # ratios spread around their median beyond their repetitions, and that spread is added to each pair
    shifts = (0.97, 1.04, 0.99, 1.06, 0.95, 1.02, 1.0, 0.96)
    a = report(*(run("t", bs, 100.0) for bs in range(1, 9)))
    b = report(*(run("t", bs, 100.0 * s) for bs, s in zip(range(1, 9), shifts)))
    c = compare.compare(a, b)
    assert c.between_runs > 0.02
    assert {p.verdict for p in c.pairs} <= {"same", "inconclusive"} and c.exit_code == 0
    assert any("between-run variation" in n for n in c.notes)
    # ... while a regression every pair shares is no spread: still slower everywhere
    b2 = report(*(run("t", bs, 70.0 * s) for bs, s in zip(range(1, 9), shifts)))
    assert {p.verdict for p in compare.compare(a, b2).pairs} == {"slower"}


def test_a_shift_every_row_shares_within_the_hosts_drift_is_not_slower():
    # two demos of unchanged code on a 2-vCPU VM, a minute apart (docs/performance.md): the later one 8% slower on
    # every row, 3% of spread around that; counted as nothing, the shared shift made 3 rows `slower` (exit 5)
    ratios = (0.942, 0.935, 0.877, 0.919, 0.951, 0.944, 0.918, 0.885, 0.958, 0.887)
    a = report(*(run("t", bs, 100.0) for bs in range(1, 11)))
    b = report(*(run("t", bs, 100.0 * r) for bs, r in zip(range(1, 11), ratios)))
    c = compare.compare(a, b)
    assert c.run_drift == c.between_runs > 0.02
    assert {p.verdict for p in c.pairs} == {"inconclusive"} and c.exit_code == 0
    assert any("a shift shared by every pair" in n and "--run-drift" in n for n in c.notes)
    # a host known to be steadier between runs (--run-drift 0%) makes the same shift the code's
    steady = compare.compare(a, b, run_drift=0.0)
    assert steady.run_drift == 0.0 and "slower" in {p.verdict for p in steady.pairs} and steady.exit_code == 5
    # a change far beyond the drift is still told on every row
    b3 = report(*(run("t", bs, 65.0 * r) for bs, r in zip(range(1, 11), ratios)))
    assert {p.verdict for p in compare.compare(a, b3).pairs} == {"slower"}
    given = compare.compare(a, b, run_drift=0.03)
    assert given.run_drift == pytest.approx(math.log1p(0.03)) and any("(--run-drift)" in n for n in given.notes)


def test_a_given_drift_with_exact_repetitions_still_tells_a_known_slowdown():
    # a stand-in device at 16,000 against 20,000 images/s, repetitions identical: the given drift is the only
    # uncertainty (it used to divide by zero in the degrees of freedom)
    fast = report(*(run("null", bs, 20000.0, (1.0,) * 5) for bs in (1, 4, 8, 16, 32)))
    slow = report(*(run("null", bs, 16000.0, (1.0,) * 5) for bs in (1, 4, 8, 16, 32)))
    c = compare.compare(fast, slow, run_drift=0.03)
    assert {p.verdict for p in c.pairs} == {"slower"} and c.exit_code == 5
    # ... and identical runs are `same` only when the drift given leaves a 5% change detectable (80% power)
    assert {p.verdict for p in compare.compare(fast, fast, run_drift=0.01).pairs} == {"same"}
    assert {p.verdict for p in compare.compare(fast, fast, run_drift=0.03).pairs} == {"inconclusive"}


def test_marks_of_weaker_evidence_reach_the_pair_and_the_notes():
    c = compare.compare(A, report(run("t1", 1, 100.0, valid=False, busy=True)))
    p = c.pairs[0]
    assert p.b.marks == ("short", "busy host") and p.a.marks == ()
    assert any("short runs" in n for n in c.notes) and any("busy host" in n for n in c.notes)


def test_a_top1_drop_beyond_the_gate_regresses_and_one_within_it_does_not():
    c = compare.compare(A, B_LESS_ACCURATE)
    p = by_label(c)["t1 bs4 fp32 float32"]
    assert p.verdict == "same" and p.top1_delta == pytest.approx(-1.5) and p.accuracy_drop and p.regressed
    assert c.exit_code == 5
    within = report(run("t1", 4, 200.0, top1=74.2))
    assert compare.compare(A, within).exit_code == 0


def test_nonfinite_logits_in_b_regress_whatever_the_top1_and_speed(local_store, capsys):
    # issue 20.2: a run whose logits held NaN or infinities (an fp16 overflow) must never pass a gate
    overflowed = dataclasses.replace(run("t1", 4, 200.0), nonfinite=48)
    c = compare.compare(A, report(overflowed, kind="imagenet"))  # top-1 not even comparable: still a regression
    p = c.pairs[0]
    assert p.verdict == "same" and not p.accuracy_drop and p.regressed and c.exit_code == 5
    assert p.b.marks == ("non-finite logits",) and p.b.nonfinite == 48
    assert compare.Comparison.from_dict(json.loads(json.dumps(c.to_dict()))).pairs[0].regressed
    put(local_store, "a", A)
    put(local_store, "b", report(overflowed))
    assert cli.main(["compare", "a", "b", "--store", local_store]) == 5
    assert "regression: t1 bs4 fp32 float32: non-finite logits in 48 images" in capsys.readouterr().err


def test_different_references_do_not_compare_accuracy():
    imagenet = report(run("t1", 4, 200.0, top1=10.0), kind="imagenet")
    c = compare.compare(A, imagenet)
    assert c.pairs[0].top1_delta is None and not c.pairs[0].accuracy_drop and c.exit_code == 0
    assert any("top-1 not compared" in n for n in c.notes)


def test_runs_without_repetitions_are_inconclusive():
    old_a = report(run("t1", 1, 100.0, None))
    old_b = report(run("t1", 1, 110.0, None))
    p = compare.compare(old_a, old_b).pairs[0]
    assert p.verdict == "inconclusive" and p.ratio == pytest.approx(1.1) and p.evidence.p_value is None
    assert "fewer than 3 repetitions" in p.evidence.why


def test_the_json_reads_back_into_the_same_comparison():
    c = compare.compare(A, B, 0.05, "a", "b")
    doc = json.loads(c.to_json())
    assert doc["exit_code"] == 0 and doc["counts"]["faster"] == 1 and "Welch" in doc["rule"]
    evidence = doc["pairs"][0]["evidence"]
    assert {"ratio", "low", "high", "p_value", "detectable", "n_a", "n_b", "verdict", "why"} <= set(evidence)
    assert doc["run_drift"] == c.run_drift == c.between_runs
    assert compare.Comparison.from_json(c.to_json()) == c
    p = compare.compare_published(published_sweep())
    assert compare.Comparison.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_ratio_bars_give_the_plot_its_rows():
    bars = compare.ratio_bars(compare.compare(A, B))
    row = next(b for b in bars if b["target"] == "t1" and b["batch_size"] == 1)
    assert {"target", "batch_size", "ratio", "ratio_low", "ratio_high", "verdict"} <= set(row)
    assert row["verdict"] == "faster" and row["ratio_low"] < row["ratio"] < row["ratio_high"]
    assert row["threshold"] == 0.05


@pytest.mark.parametrize("text,value", [("5%", 0.05), ("0.05", 0.05), ("12.5%", 0.125), ("0", 0.0), (" 3% ", 0.03)])
def test_thresholds_as_percent_or_fraction(text, value):
    assert compare.parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("text,says", [("5", "did you mean 5%"), ("abc", "expected a percentage"),
                                       ("100%", "below 100%"), ("-1%", "from 0%"), ("nan", "from 0%")])
def test_bad_thresholds_are_refused(text, says):
    with pytest.raises(errors.BadInput, match=says):
        compare.parse_threshold(text)


# --- the published figures ----------------------------------------------------------------------------------


def published_sweep(a310_top1: float = 73.5) -> records.Report:
    """Ascend 310P (1 chip per card) at bs1 5-8% above the published figure; Ascend 310 (4 chips) at bs4 level
    with it per card; an fp32 run and a CPU target that have no published partner."""
    return report(run("a310p", 1, 1600.0, top1=73.7, precision="fp16"),
                  run("a310", 4, 560.0, top1=a310_top1, precision="fp16"),
                  run("a310", 8, 600.0, precision="fp32"),
                  run("cpu", 1, 50.0),
                  kind="imagenet", top1=73.98,
                  accelerators={"a310p": "Ascend310P3", "a310": "Ascend310", "cpu": ""})


def test_published_comparison_per_card():
    c = compare.compare_published(published_sweep(), 0.05, "b")
    assert c.a == compare.PUBLISHED_LABEL and c.basis == "per card"
    pairs = by_label(c)
    assert set(pairs) == {"a310p bs1 fp16 float32", "a310 bs4 fp16 float32"}
    p310p = pairs["a310p bs1 fp16 float32"]
    pub = published.SEED["Ascend310P3"].throughput[1]
    assert p310p.a.throughput == pub and p310p.ratio == pytest.approx(1600.0 / pub, rel=1e-3)
    assert p310p.evidence.low > 1.05 and p310p.verdict == "faster"  # 6.5% above, repetitions 1% apart
    assert p310p.p99_ratio is None and p310p.top1_delta == pytest.approx(73.7 - 73.98)
    p310 = pairs["a310 bs4 fp16 float32"]  # 560 per chip x 4 chips per card
    assert p310.b.throughput == pytest.approx(2240.0) and p310.b.low == pytest.approx(2240.0 * 0.99)
    assert p310.ratio == pytest.approx(2240.0 / published.SEED["Ascend310"].throughput[4], rel=1e-3)
    assert p310.verdict == "same"
    # published rows of these accelerators that B lacks; B's runs without a published partner
    assert len(c.only_in_a) == 8 and {u.key.target for u in c.only_in_a} == {"a310p", "a310"}
    assert {u.key.label() for u in c.only_in_b} == {"a310 bs8 fp32 float32", "cpu bs1 fp32 float32"}
    assert c.exit_code == 0
    assert compare.compare_published(published_sweep(a310_top1=72.5)).exit_code == 5  # 1.48 points below


def test_published_comparison_with_no_published_accelerator_says_so():
    c = compare.compare_published(report(run("cpu", 1, 50.0), kind="imagenet"))
    assert not c.pairs and not c.only_in_a and len(c.only_in_b) == 1 and c.exit_code == 0
    assert any("no target of B runs on an accelerator with published figures" in n for n in c.notes)


# --- the command --------------------------------------------------------------------------------------------


@pytest.fixture
def local_store(tmp_path) -> str:
    uri = str(tmp_path / "store")
    put(uri, "sweep-a", A)
    put(uri, "sweep-b", B)
    put(uri, "slower", B_SLOWER)
    put(uri, "drop", B_LESS_ACCURATE)
    put(uri, "on-ascend", published_sweep())
    return uri


def test_cli_table_on_the_terminal_exits_0(local_store, capsys):
    assert cli.main(["compare", "sweep-a", "sweep-b", "--store", local_store]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == f"A: {uri(local_store, 'sweep-a')}"
    row = next(x for x in lines if x.startswith("t1 ") and x.split()[1] == "1")
    assert "faster" in row and "1.200 [" in row and "100.0 [" in row and "(5 reps)" in row
    assert "inconclusive (could detect ≥" in next(x for x in lines if x.startswith("t2 "))
    assert "Only in A" in out and "  t1 bs8 fp32 float32: 300.0 images/s" in out and "t1 bs16 fp32 float32" in out
    assert "3 pair(s): 1 faster, 1 same, 0 slower, 1 inconclusive" in out and "could not be judged" in out
    assert err.startswith("inconclusive: t2 bs1 fp32 float32: too noisy to detect a 5.0% change")
    assert cli.main(["compare", "sweep-a", "sweep-b", "--store", local_store, "--inconclusive", "fail"]) == 6


def test_cli_regression_exits_5_naming_it_on_stderr(local_store, capsys):
    assert cli.main(["compare", "sweep-a", "slower", "--store", local_store]) == errors.EXIT_REGRESSION
    out, err = capsys.readouterr()
    assert "SLOWER" in out and "REGRESSED: 1 (exit 5)" in out
    assert err.strip() == "regression: t1 bs1 fp32 float32: 0.800x throughput"
    assert cli.main(["compare", "sweep-a", "drop", "--store", local_store, "--format", "json"]) == 5
    out, err = capsys.readouterr()
    assert json.loads(out)["regressed"] is True and "top-1 -1.50 points" in err


def test_cli_json_reads_back_and_md_is_a_table(local_store, capsys):
    assert cli.main(["compare", "sweep-a", "sweep-b", "--store", local_store, "--format", "json"]) == 0
    c = compare.Comparison.from_json(capsys.readouterr().out)
    assert c == compare.compare(A, B, 0.05, uri(local_store, "sweep-a"), uri(local_store, "sweep-b"))
    assert cli.main(["compare", "sweep-a", "sweep-b", "--store", local_store, "--format", "md",
                     "--threshold", "0.25"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("# ghostbench compare\n") and "Threshold 25.0%" in md
    assert "| Target | Batch | Precision | Input |" in md and "|---|---|" in md
    assert "| t1 | 1 | fp32 | float32 | 100.0 [99.0–101.0] (5 reps) | 120.0 [118.8–121.2] (5 reps) |" in md
    assert "## Only in A" in md and "- t3 bs1 fp32 float32: 50.0 images/s" in md


def test_cli_store_colon_id_report_file_and_sweep_file(local_store, tmp_path, capsys):
    other = str(tmp_path / "other store")
    put(other, "nightly", B)
    assert cli.main(["compare", f"{local_store}:sweep-a", f"{other}:nightly", "--format", "json"]) == 0
    c = compare.Comparison.from_json(capsys.readouterr().out)
    assert c.b == uri(other, "nightly") and c.counts()["faster"] == 1
    # a report.json file, and a sweep file whose store and name are used
    from tests.support.sweeps import make_sweep

    spec = make_sweep(tmp_path, name="sweep-a", store_dir="store")
    report_file = pathlib.Path(other) / "sweeps" / "nightly" / "report.json"
    assert cli.main(["compare", str(spec), str(report_file), "--format", "json"]) == 0
    c = compare.Comparison.from_json(capsys.readouterr().out)
    assert c.a == uri(local_store, "sweep-a") and c.b == str(report_file)
    assert yaml.safe_load(spec.read_text())["name"] == "sweep-a"


def test_cli_published(local_store, capsys):
    assert cli.main(["compare", "published", "on-ascend", "--store", local_store]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"A: {compare.PUBLISHED_LABEL}\n") and "images/s per card" in out
    assert "a310   4" in out or any(x.startswith("a310 ") and x.split()[1] == "4" for x in out.splitlines())


@pytest.mark.parametrize("argv,says", [
    (["compare", "sweep-a", "nope"], "sweep 'nope': no report at {uri}/sweeps/nope/report.json (--store)"),
    (["compare", "{store}:nope", "sweep-b"], "no report at {uri}/sweeps/nope/report.json (from {store}:nope)"),
    (["compare", "s3://bucket/prefix", "sweep-b"], "expected a sweep id, STORE:ID"),
    (["compare", "{store}:", "sweep-b"], "expected a sweep id, STORE:ID"),
    (["compare", "sweep-a", "published"], "`published` is only for A"),
    (["compare", "sweep-a", "sweep-b", "--threshold", "5"], "did you mean 5%"),
    (["compare", "sweep-a", "sweep-b", "--run-drift", "3"], "--run-drift '3': expected a share from 0% to below 100%"),
    (["compare", "published", "sweep-b", "--run-drift", "3%"], "--run-drift: the published figures are one fixed"),
])
def test_cli_bad_input_exits_2_in_one_line(local_store, capsys, argv, says):
    assert cli.main([a.format(store=local_store) for a in argv] + ["--store", local_store]) == errors.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("ghostbench compare: error: ")
    assert says.format(store=local_store, uri=store.open_store(local_store).uri) in err


def test_cli_says_when_a_sweep_has_no_report_yet(local_store, capsys):
    store.open_store(local_store).write_text("sweeps/running/status.json", "{}")
    assert cli.main(["compare", "sweep-a", "running", "--store", local_store]) == 2
    assert "has it finished?" in capsys.readouterr().err


# --- S3 ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_compares_sweeps_in_two_s3_prefixes_and_a_local_store(s3_bucket, local_store, capsys):
    put(f"{s3_bucket}/lab", "baseline", A)
    put(f"{s3_bucket}/cluster-upgrade", "after", B_SLOWER)
    argv = ["compare", f"{s3_bucket}/lab:baseline", f"{s3_bucket}/cluster-upgrade:after", "--format", "json"]
    assert cli.main(argv) == 5
    c = compare.Comparison.from_json(capsys.readouterr().out)
    assert c.a == f"{s3_bucket}/lab/sweeps/baseline/report.json" and c.regressed
    assert cli.main(["compare", f"{s3_bucket}/lab:baseline", f"{local_store}:sweep-b"]) == 0
    capsys.readouterr()
    assert cli.main(["compare", f"{s3_bucket}/lab:nope", "sweep-b", "--store", local_store]) == 2
    assert f"no report at {s3_bucket}/lab/sweeps/nope/report.json" in capsys.readouterr().err


def test_a_change_beyond_the_threshold_that_many_pairs_make_insignificant_is_never_same():
    # 30 quiet pairs and one 6% slower: alone it is slower; among 31 it no longer passes Holm, and then it may be
    # inconclusive, never "same"
    reps = (1.0, 1.027, 0.973, 1.018, 0.982)  # a 2.3% spread: a 5% change would show (detectable 4.8%)
    quiet = [run("q", bs, 100.0, reps) for bs in range(1, 31)]
    a = report(*quiet, run("t", 1, 100.0, reps))
    b = report(*quiet, run("t", 1, 94.0, reps))
    alone = compare.compare(report(a.runs[-1]), report(b.runs[-1]))
    assert alone.pairs[0].verdict == "slower"
    many = by_label(compare.compare(a, b))["t bs1 fp32 float32"]
    assert many.verdict == "inconclusive" and "not significant" in many.evidence.why
    assert "Holm over 31 pairs" in many.evidence.why and many.evidence.detectable < 0.05


def test_an_unstable_run_is_never_judged_even_as_same():
    unsteady = report(run("t1", 1, 100.0, valid=False), run("t1", 4, 200.0))
    unsteady = dataclasses.replace(unsteady, runs=(dataclasses.replace(
        unsteady.runs[0], validity_reasons=("unstable: the repetitions differ by 14% of their median, ...",)),
        unsteady.runs[1]))
    p = by_label(compare.compare(A, unsteady))["t1 bs1 fp32 float32"]
    assert p.b.marks == ("unstable",) and p.verdict == "inconclusive" and "(same otherwise)" in p.evidence.why


def _unstable(r: records.ReportRun) -> records.ReportRun:
    return dataclasses.replace(r, valid=False, validity_reasons=("unstable: the repetitions differ by 30% ...",))


def test_an_unstable_run_is_judged_slower_only_when_the_whole_interval_is_beyond_the_threshold():
    bumpy = (1.0, 1.3, 0.9, 1.15, 1.0)  # 40% apart: unstable
    a = report(run("t", 1, 200.0, bumpy))
    far = compare.compare(a, report(_unstable(run("t", 1, 100.0, bumpy)))).pairs[0]
    assert far.verdict == "slower" and far.evidence.high < 0.95 and "whole 95% interval" in far.evidence.why
    near = compare.compare(a, report(_unstable(run("t", 1, 156.0, bumpy)))).pairs[0]
    assert near.evidence.p_value < 0.05 and near.evidence.high > 0.95  # significant, but not surely beyond -5%
    assert near.verdict == "inconclusive" and "(slower otherwise)" in near.evidence.why


def test_against_the_published_figures_the_same_rule_applies():
    unstable = dataclasses.replace(published_sweep().runs[0], validity_reasons=("unstable: ...",), valid=False)
    b = dataclasses.replace(published_sweep(), runs=(unstable, *published_sweep().runs[1:]))
    c = compare.compare_published(b)
    marked = by_label(c)["a310p bs1 fp16 float32"]  # marked unstable, its interval wholly above +5%: judged
    assert marked.verdict == "faster" and "A and B unstable" not in marked.evidence.why
    assert "B unstable, but the whole 95% interval" in marked.evidence.why
    nearer = dataclasses.replace(unstable, throughput=1550.0, repetitions=tuple(1550.0 * x for x in STEADY))
    c = compare.compare_published(dataclasses.replace(b, runs=(nearer, *b.runs[1:])))
    assert by_label(c)["a310p bs1 fp16 float32"].verdict == "inconclusive"  # +3%: same otherwise, but unstable
    assert "Holm over 2 pairs" in by_label(c)["a310 bs4 fp16 float32"].evidence.why
    short = dataclasses.replace(unstable, validity_reasons=("short: 2.00s of timed compute",))
    notes = compare.compare_published(dataclasses.replace(b, runs=(short, *b.runs[1:]))).notes
    assert any("short runs" in n for n in notes) and not any("without repetitions" in n for n in notes)


def test_a_pair_on_different_numbers_of_devices_is_named():
    """A target's name kept while it moved from one device to a whole card: B's figure is a sum of 4."""
    four = dataclasses.replace(run("t1", 4, 800.0), devices=4)
    c = compare.compare(report(run("t1", 1, 100.0), run("t1", 4, 200.0)), report(run("t1", 1, 101.0), four))
    (note,) = [n for n in c.notes if n.startswith("devices at once differ")]
    assert note.endswith(": t1 bs4 (A 1, B 4)")
