"""Per-card figures: measured on a whole card, or extrapolated from fewer chips; the report and the published
comparison say which and prefer a measured figure; the plot draws extrapolated points apart (hollow)."""

from __future__ import annotations

import dataclasses

import pytest

from jobs.artifacts import records
from jobs.results import compare, per_card, plots, tables


def _run(target, throughput, devices=1, bs=8, per_card_fields=None):
    r = records.ReportRun(run=f"file:///r/{target}/{bs}", target=target, backend="acl", device="npu:0",
                          input_mode="float32", batch_size=bs, num_images=10, throughput=throughput,
                          compute_mean_ms=1.0, compute_p99_ms=1.0, end_to_end_images_per_second=throughput,
                          passes=1, accuracy={"1": 80.0, "5": 95.0}, gate_pass=True, devices=devices,
                          repetitions=(throughput,) * 3, precision="fp16")
    return dataclasses.replace(r, **(per_card_fields or {}))


def _fields(throughput, devices, chips):
    pc = per_card.per_card(throughput, devices, chips, "card atlas-300i")
    return {"per_card_throughput": pc.throughput, "per_card_basis": pc.basis, "per_card_chips": pc.chips,
            "per_card_chips_from": pc.chips_from}


def test_measured_on_a_whole_card_or_extrapolated():
    whole = per_card.per_card(2400.0, 4, 4, "npu-smi info")
    assert (whole.throughput, whole.basis, whole.note()) == (2400.0, "measured", "measured on 4 of 4 chips")
    one = per_card.per_card(700.0, 1, 4, "accelerator Ascend310")
    assert (one.throughput, one.basis) == (2800.0, "extrapolated")
    assert one.note() == "extrapolated from 1 of 4 chips (x4)"
    assert per_card.per_card(1000.0, 2, 1, "card atlas-300i-pro").throughput == 500.0  # two cards of one chip
    assert per_card.chips_per_card("Ascend310", "atlas-300i-duo", None) == (2, "card atlas-300i-duo")
    assert per_card.chips_per_card("Ascend310", None, 4) == (4, "npu-smi info")
    assert per_card.chips_per_card(None) is None


def _report():
    runs = (_run("chip", 700.0, 1, per_card_fields=_fields(700.0, 1, 4)),
            _run("card", 2400.0, 4, per_card_fields=_fields(2400.0, 4, 4)),
            _run("p", 3000.0, 1, per_card_fields={**_fields(3000.0, 1, 1), "per_card_chips_from": "card"}))
    return records.Report(model="ghostnet_1.0x", reference=records.Reference(73.98, 91.46, 1.0, "imagenet"), runs=runs,
                          accelerators={"chip": "Ascend310", "card": "Ascend310", "p": "Ascend310P3"})


def test_the_comparison_says_the_basis_and_takes_the_measured_figure_for_the_seed_ratio():
    header, rows = tables.published_comparison(_report().runs, _report().accelerators)
    (row,) = rows
    cell = dict(zip(header, row))
    assert cell["chip per card"] == "2,800.0" or cell["chip per card"].replace(",", "") == "2800.0"
    assert cell["chip basis"] == "extrapolated from 1 of 4 chips (x4)"
    assert cell["card basis"] == "measured on 4 of 4 chips"
    assert "p/card per card" in header and "p/chip per card" not in header  # 310P/310 against the measured card
    md = tables.to_markdown(_report())
    assert "**measured**" in md and "**extrapolated**" in md


def test_the_plot_draws_extrapolated_points_apart():
    series = plots.per_card_series(_report())
    assert set(series) == {"chip", "card"}  # a one-chip card's figure is its device's: no second point
    assert [p.measured for p in series["chip"]] == [False]
    assert [p.measured for p in series["card"]] == [True]
    pytest.importorskip("matplotlib")
    fig = plots.throughput_figure(_report())
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "chip per card, extrapolated" in labels and "card per card, measured" in labels


def test_compare_with_the_published_figures_scales_by_the_basis():
    c = compare.compare_published(_report())
    by_target = {p.key.target: p for p in c.pairs}
    assert by_target["card"].b.throughput == pytest.approx(2400.0)
    assert by_target["chip"].b.throughput == pytest.approx(2800.0)
    assert any("extrapolated from fewer chips" in n and "chip" in n for n in c.notes)


def test_the_basis_reads_as_english():
    assert per_card.per_card(300.0, 1, 1, "card atlas-300i-pro").note() == "measured on 1 of 1 chip"
    assert per_card.per_card(300.0, 3, 4, "card atlas-300i").note() == "extrapolated from 3 of 4 chips (x1.33)"
    # as many chips as a card, but of two cards (npu-smi's NPU ids): per chip x chips, and said so
    scattered = per_card.per_card(600.0, 2, 2, "npu-smi info", whole_cards=False)
    assert (scattered.basis, scattered.throughput, scattered.measured) == ("scattered", 600.0, False)
    assert scattered.note() == "extrapolated: 2 chips of several cards, not whole cards (npu-smi NPU ids; per chip x2)"
    assert per_card.per_card(600.0, 2, 2, "npu-smi info", whole_cards=True).basis == "measured"
