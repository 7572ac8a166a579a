"""Best batch size and cost per million images, on hand-made report rows: the arithmetic, ties, a limit
nothing stays within, no limit, no price; the sweep file's and the eval stage's flags that carry them."""

from __future__ import annotations

import pytest

from controller import plan as plan_mod
from controller import spec as spec_mod
from jobs import errors, params
from jobs.artifacts import records
from jobs.results import tables


def row(target: str, bs: int, throughput: float, p99: float = 1.0, samples: int = records.P99_SAMPLES,
        padded_share: float = 0.0) -> records.ReportRun:
    return records.ReportRun(run=f"s/{target}/{bs}", target=target, backend="null", device="cpu", input_mode="float32",
                             batch_size=bs, num_images=48, throughput=throughput, compute_mean_ms=p99 * 0.8,
                             compute_p99_ms=p99, end_to_end_images_per_second=throughput, passes=1,
                             accuracy={"1": 75.0, "5": 92.0}, gate_pass=True, p99_samples=samples,
                             padded_share=padded_share, real_images_per_second=throughput * (1 - padded_share))


RUNS = [row("a", 1, 100.0, 2.0), row("a", 4, 300.0, 6.0), row("a", 8, 500.0, 12.0), row("a", 16, 450.0, 30.0),
        row("b", 1, 1000.0, 1.0), row("b", 8, 4000.0, 4.0)]


def test_cost_per_million_images_arithmetic():
    # 3.60 USD an hour is 0.001 USD a second; at 1,000 images/s a million images take 1,000 s
    assert records.Price(3.60, "USD").cost_per_million(1000.0) == pytest.approx(1.00)
    assert records.Price(0.35, "USD").cost_per_million(3739.9555) == pytest.approx(0.35 / 3600 / 3739.9555 * 1e6)
    assert records.Price(7.2, "EUR").cost_per_million(500.0) == pytest.approx(4.00)
    assert records.Price(0.0, "USD").cost_per_million(10.0) == 0.0  # a machine already paid for
    assert records.Price(3.6, "USD").cost_per_million(0.0) is None  # no throughput: no cost, not infinity


def test_highest_throughput_per_target_in_target_order():
    best = tables.best_batches(RUNS)
    assert list(best) == ["a", "b"]
    assert (best["a"].batch_size, best["a"].throughput, best["a"].p99_ms) == (8, 500.0, 12.0)
    assert (best["b"].batch_size, best["b"].throughput) == (8, 4000.0)
    # no limit given: nothing latency-bound is computed; no price: no cost
    assert all(b.latency_limit_ms is None and b.under_limit_batch_size is None and b.under_limit_throughput is None
               for b in best.values())
    assert all(b.price is None and b.cost_per_million is None and b.cost_per_million_under_limit is None
               for b in best.values())


def test_a_throughput_tie_goes_to_the_smaller_batch_size():
    tied = [row("t", 32, 700.0, 40.0), row("t", 8, 700.0, 10.0), row("t", 16, 650.0, 20.0)]
    assert tables.best_batches(tied)["t"].batch_size == 8


def test_largest_batch_size_within_the_latency_limit():
    best = tables.best_batches(RUNS, latency_limit_ms=12.0)
    # a: p99 2, 6, 12, 30 ms -> 8 is the largest at most 12 ms (the limit itself counts as within)
    assert (best["a"].under_limit_batch_size, best["a"].under_limit_throughput, best["a"].under_limit_p99_ms) == \
        (8, 500.0, 12.0)
    assert best["b"].under_limit_batch_size == 8
    best = tables.best_batches(RUNS, latency_limit_ms=10.0)
    assert best["a"].under_limit_batch_size == 4 and best["a"].batch_size == 8  # throughput's best is unchanged
    # not monotonic: the largest batch size within the limit, even past one that is not
    bumpy = [row("c", 1, 10.0, 1.0), row("c", 4, 20.0, 9.0), row("c", 8, 30.0, 4.0)]
    assert tables.best_batches(bumpy, latency_limit_ms=5.0)["c"].under_limit_batch_size == 8


def test_no_batch_size_within_the_limit():
    best = tables.best_batches(RUNS, latency_limit_ms=0.5)
    assert all(b.latency_limit_ms == 0.5 and b.under_limit_batch_size is None and b.under_limit_throughput is None
               for b in best.values())
    md = tables.to_markdown(_report(RUNS, best, 0.5))
    assert "Largest batch size with p99 ≤ 0.5 ms" in md and "none within the limit" in md


def test_cost_at_the_best_batch_sizes_only_for_targets_with_a_price():
    best = tables.best_batches(RUNS, latency_limit_ms=10.0, prices={"b": records.Price(3.6, "USD")})
    assert best["b"].cost_per_million == pytest.approx(3.6 / 3600 / 4000.0 * 1e6)  # 0.25 USD
    assert best["b"].cost_per_million_under_limit == pytest.approx(0.25)
    assert best["a"].price is None and best["a"].cost_per_million is None
    md = tables.to_markdown(_report(RUNS, best, 10.0))
    assert "| b | 8 | 4,000.0 | 4.000 | 8 | 4,000.0 | 4.000 | 3.60 USD | 0.2500 USD | 0.2500 USD |" in md
    assert "| a | 8 | 500.0 | 12.000 | 4 | 300.0 | 6.000 | - | - | - |" in md


def test_no_price_no_cost_column_and_no_limit_no_limit_column():
    md = tables.to_markdown(_report(RUNS, tables.best_batches(RUNS), None))
    assert "## Best batch size" in md and "| a | 8 | 500.0 | 12.000 |" in md
    assert "Cost per million" not in md and "Price per hour" not in md and "Largest batch size with" not in md
    assert "no latency limit was given" in md


def test_report_json_carries_best_and_reads_back():
    best = tables.best_batches(RUNS, latency_limit_ms=10.0, prices={"a": records.Price(1.5, "EUR")})
    report = _report(RUNS, best, 10.0)
    d = report.to_dict()
    assert d["latency_limit_ms"] == 10.0
    assert d["best"]["a"]["price"] == {"per_hour": 1.5, "currency": "EUR"} and d["best"]["b"]["price"] is None
    assert records.Report.from_json(report.to_json()) == report
    bare = records.Report(model="m", reference=report.reference, runs=tuple(RUNS))
    assert "best" not in bare.to_dict() and "latency_limit_ms" not in bare.to_dict()  # older reports read the same
    assert records.Report.from_json(bare.to_json()) == bare


def _report(runs, best, limit) -> records.Report:
    return records.Report(model="ghostnet_1.0x", reference=records.Reference(75.0, 92.0, 1.0, "imagenet"),
                          runs=tuple(runs), latency_limit_ms=limit, best=best)


# --- flags and the sweep file ---------------------------------------------------------------------------------


def test_eval_flags_carry_the_limit_and_prices():
    p = params.EvalParams.parse(["--run", "r", "--data", "d", "--out", "o", "--latency-limit-ms", "20",
                                 "--price", "t4=0.35:USD", "--price", "cpu=3.6:EUR"])
    assert p.latency_limit_ms == 20.0 and p.price_of() == {"t4": (0.35, "USD"), "cpu": (3.6, "EUR")}
    assert params.EvalParams.parse(p.argv()) == p
    assert params.EvalParams.from_dict(p.to_dict()) == p
    bare = params.EvalParams.parse(["--run", "r", "--data", "d", "--out", "o"])
    assert bare.latency_limit_ms is None and bare.prices is None and bare.price_of() == {}


@pytest.mark.parametrize("args, message", [
    (["--latency-limit-ms", "0"], "--latency-limit-ms"),
    (["--price", "t4=0.35"], "--price t4=0.35: expected AMOUNT:CURRENCY"),
    (["--price", "t4=-1:USD"], "--price t4=-1:USD"),
    (["--price", "t4=cheap:USD"], "--price t4=cheap:USD"),
    (["--price", "t4=1:"], "--price t4=1:"),
])
def test_bad_eval_flags_are_refused(args, message):
    with pytest.raises(errors.BadInput, match=message):
        params.EvalParams.parse(["--run", "r", "--data", "d", "--out", "o", *args])


def _sweep(**extra) -> dict:
    targets = extra.pop("targets", [{"name": "cpu", "backend": "null", "batch_sizes": [1, 8]}])
    return {"name": "s", "dataset": {"images": "imgs", "labels": "imgs/val_label.txt"}, "targets": targets, **extra}


def test_sweep_file_prices_and_limit_reach_the_eval_step():
    targets = [{"name": "cpu", "backend": "null", "batch_sizes": [1, 8], "price_per_hour": 3.6, "currency": "USD"},
               {"name": "free", "backend": "null", "batch_sizes": [1]}]
    spec = spec_mod.parse(_sweep(targets=targets, report={"latency_limit_ms": 25}))
    assert spec.report.latency_limit_ms == 25.0
    assert (spec.targets[0].price_per_hour, spec.targets[0].currency) == (3.6, "USD")
    assert (spec.targets[1].price_per_hour, spec.targets[1].currency) == (None, None)
    ev = next(s for s in plan_mod.make_plan(spec, "/tmp/store").steps if s.stage == "eval")
    assert ev.params.latency_limit_ms == 25.0 and ev.params.price_of() == {"cpu": (3.6, "USD")}
    # nothing given: nothing passed, and the eval step's key is what it was without the fields
    plain = spec_mod.parse(_sweep())
    ev = next(s for s in plan_mod.make_plan(plain, "/tmp/store").steps if s.stage == "eval")
    assert ev.params.latency_limit_ms is None and ev.params.prices is None
    assert "--price" not in ev.command() and "--latency-limit-ms" not in ev.command()
    # the stored spec (spec.yaml) plans again to the same eval step
    assert spec_mod.parse(spec.to_dict()) == spec


@pytest.mark.parametrize("target, report, message", [
    ({"price_per_hour": 3.6}, {}, r"targets\[0\]\.currency: required when targets\[0\]\.price_per_hour is given"),
    ({"currency": "USD"}, {}, r"targets\[0\]\.price_per_hour: required when targets\[0\]\.currency is given"),
    ({"price_per_hour": -1, "currency": "USD"}, {}, r"targets\[0\]\.price_per_hour: expected a number >= 0"),
    ({"price_per_hour": float("inf"), "currency": "USD"}, {}, r"targets\[0\]\.price_per_hour: expected a finite"),
    ({"price_per_hour": 1, "currency": "US D"}, {}, r"targets\[0\]\.currency: expected a currency"),
    ({}, {"latency_limit_ms": 0}, r"report\.latency_limit_ms: expected a number of milliseconds > 0"),
    ({}, {"latency_limit_ms": "fast"}, r"report\.latency_limit_ms: expected a number"),
])
def test_bad_sweep_fields_name_the_field(target, report, message):
    targets = [{"name": "cpu", "backend": "null", "batch_sizes": [1], **target}]
    with pytest.raises(spec_mod.SpecError, match=message):
        spec_mod.parse(_sweep(targets=targets, report=report))


def test_best_batch_sizes_count_real_images_not_padding():
    # 33 images at batch 32: ais_infer's throughput counts the 31 padded rows of the second batch (996 images/s
    # where 514 real images went through a second); at batch 8 one row in 40 is padding
    runs = [row("t", 8, 600.0, padded_share=1 / 40), row("t", 32, 996.0, padded_share=31 / 64)]
    best = tables.best_batches(runs)["t"]
    assert best.batch_size == 8 and best.throughput == pytest.approx(600.0 * 39 / 40)


def test_a_p99_from_too_few_samples_is_not_used_under_a_latency_limit():
    runs = [row("t", 1, 100.0, 2.0), row("t", 8, 500.0, 5.0, samples=records.P99_SAMPLES - 1)]
    best = tables.best_batches(runs, latency_limit_ms=10.0)["t"]
    assert best.under_limit_batch_size == 1  # batch 8's p99 is within the limit, but from 298 samples
    assert records.P99_SAMPLES == 299  # log(0.05) / log(0.99): the largest of 299 bounds p99 at 95%
