"""The report's plots: what they draw is report.json's rows, the files are valid PNG and SVG, the eval
stage writes them beside report.md and links them, the controller publishes them with the reports, and without
matplotlib the eval stage still writes its reports and says the plots were skipped."""

from __future__ import annotations

import json
import logging
import pathlib
import struct
import sys
import xml.etree.ElementTree as ET

import pytest

from controller import plan as plan_mod
from controller import runner
from jobs import params, store
from jobs.artifacts import commit, records
from jobs.results import plots, published, tables
from jobs.stages import eval as eval_stage
from jobs.stages import infer, preprocess
from jobs.tools import fake_imagenet

pytest.importorskip("matplotlib")  # the plots extra (in cpu and test)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG = "{http://www.w3.org/2000/svg}"


def run_row(target: str, bs: int, throughput: float, low: float, high: float, mean: float, p99: float,
            precision: str = "fp32") -> records.ReportRun:
    return records.ReportRun(run=f"s/{target}/{bs}", target=target, backend="null", device="cpu", input_mode="float32",
                             batch_size=bs, num_images=48, throughput=throughput, compute_mean_ms=mean,
                             compute_p99_ms=p99, end_to_end_images_per_second=throughput * 0.9, passes=1,
                             accuracy={"1": 75.0, "5": 92.0}, gate_pass=True, throughput_min=low,
                             throughput_max=high, precision=precision)


def hand_report(limit: float | None = 20.0) -> records.Report:
    runs = (run_row("npu", 1, 1200.0, 1150.0, 1230.0, 0.83, 0.95, "fp16"),
            run_row("npu", 8, 3500.0, 3400.0, 3600.0, 2.29, 2.6, "fp16"),
            run_row("npu", 32, 3100.0, 3000.0, 3300.0, 10.3, 11.0, "fp16"),
            run_row("cpu", 1, 180.0, 150.0, 220.0, 5.6, 14.3),
            run_row("cpu", 8, 300.0, 0.0, 0.0, 26.7, 70.0),  # no windows (an older report): no error bar
            run_row("cpu", 32, 350.0, 336.0, 362.0, 91.4, 98.7))
    return records.Report(model="ghostnet_1.0x", reference=records.Reference(75.0, 92.0, 1.0, "imagenet"), runs=runs,
                          latency_limit_ms=limit, best=tables.best_batches(runs, limit))


def _json_points(report_json: str):
    """report.json's rows as (target, batch size, throughput, min, max) and (target, batch size, mean, p99)."""
    rows = json.loads(report_json)["runs"]
    return ({(r["target"], r["batch_size"], r["throughput"], r["throughput_min"], r["throughput_max"]) for r in rows},
            {(r["target"], r["batch_size"], r["compute_mean_ms"], r["compute_p99_ms"]) for r in rows})


def _series_points(report: records.Report):
    return ({(t, *p) for t, ps in plots.throughput_series(report).items() for p in ps},
            {(t, *p) for t, ps in plots.latency_series(report).items() for p in ps})


def test_series_are_report_json_rows():
    report = hand_report()
    assert _series_points(records.Report.from_json(report.to_json())) == _json_points(report.to_json())
    series = plots.throughput_series(report)
    assert list(series) == ["npu", "cpu"]  # target order, batch sizes ascending
    assert [p.batch_size for p in series["cpu"]] == [1, 8, 32]
    assert series["npu"][1] == (8, 3500.0, 3400.0, 3600.0)
    assert plots.published_series()["Ascend310P3"] == sorted(published.SEED["Ascend310P3"].throughput.items())


def test_the_figures_draw_exactly_the_series():
    report = hand_report()
    fig = plots.throughput_figure(report)
    ax = fig.axes[0]
    drawn = {c.get_label(): [tuple(xy) for xy in c.lines[0].get_xydata()] for c in ax.containers}
    assert drawn == {f"{t} ({'fp16' if t == 'npu' else 'fp32'})": [(p.batch_size, p.throughput) for p in ps]
                     for t, ps in plots.throughput_series(report).items()}
    # error bars: from the slowest to the fastest window, none where the run has no windows
    npu = next(c for c in ax.containers if c.get_label().startswith("npu"))
    segments = npu.lines[2][0].get_segments()
    assert [(s[0][1], s[1][1]) for s in segments] == [(1150.0, 1230.0), (3400.0, 3600.0), (3000.0, 3300.0)]
    cpu = next(c for c in ax.containers if c.get_label().startswith("cpu"))
    assert [(s[0][1], s[1][1]) for s in cpu.lines[2][0].get_segments()][1] == (300.0, 300.0)
    # the published figures, dashed, per card, with their basis in the legend and the caption
    lines = {ln.get_label(): ln for ln in ax.get_lines() if ln.get_label().startswith("published")}
    assert set(lines) == {plots.published_label(a) for a in published.SEED}
    assert "published Ascend 310 (per card, 4 chips, fp16)" in lines
    for acc, points in plots.published_series().items():
        line = lines[plots.published_label(acc)]
        assert [tuple(xy) for xy in line.get_xydata()] == [(float(b), v) for b, v in points]
        assert line.get_linestyle() == "--"
    caption = " ".join(t.get_text() for t in fig.texts)
    assert "per card" in caption and "force_fp16" in caption and "trtexec --fp16" in caption
    assert ax.get_xscale() == "log"

    fig = plots.latency_figure(report)
    ax = fig.axes[0]
    lines = {ln.get_label(): [tuple(xy) for xy in ln.get_xydata()] for ln in ax.get_lines()}
    for t, ps in plots.latency_series(report).items():
        assert lines[f"{t} mean"] == [(p.batch_size, p.compute_mean_ms) for p in ps]
        assert lines[f"{t} p99"] == [(p.batch_size, p.compute_p99_ms) for p in ps]
    assert lines["p99 limit 20 ms"][0][1] == 20.0
    assert "p99 limit" not in str(plots.latency_figure(hand_report(None)).axes[0].get_legend_handles_labels()[1])


def test_one_colour_per_target_by_order_in_every_plot():
    report = hand_report()
    colours = plots.target_colours(["npu", "cpu"])
    assert colours == plots.target_colours(["npu", "cpu", "npu"])  # deterministic, by first appearance
    assert colours["npu"][0] == plots.PALETTE[0] and colours["cpu"][0] == plots.PALETTE[1]
    assert len(plots.target_colours([f"t{i}" for i in range(20)])) == 20
    from matplotlib.colors import to_hex

    tp = {c.get_label().split()[0]: to_hex(c.lines[0].get_color()) for c in plots.throughput_figure(report).axes[0]
          .containers}
    lat = {ln.get_label().split()[0]: to_hex(ln.get_color()) for ln in plots.latency_figure(report).axes[0].get_lines()
           if not ln.get_label().startswith("p99")}
    assert tp == lat == {t: c.lower() for t, (c, _) in colours.items()}
    bars = plots.compare_figure([{"target": "npu", "batch_size": 1, "ratio": 1.1, "ratio_low": 1.0, "ratio_high": 1.2,
                                  "verdict": "same"}]).axes[0].patches
    assert to_hex(bars[0].get_facecolor()) == plots.PALETTE[0].lower()


def _png_info(path: pathlib.Path) -> tuple[int, int, int]:
    """(width, height, colour type) of a PNG, checking its signature and first chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR" and data.endswith(b"IEND\xaeB`\x82")
    width, height, _, colour_type = struct.unpack(">IIBB", data[16:26])
    return width, height, colour_type


def _svg_text(path: pathlib.Path) -> str:
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    return " ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))


def test_write_plots_writes_valid_png_and_svg(tmp_path):
    written = plots.write_plots(hand_report(), tmp_path)
    assert sorted(written) == sorted(records.PLOT_FILES)
    for name in written:
        assert (tmp_path / name).stat().st_size > 1000
    for name in (n for n in written if n.endswith(".png")):
        width, height, colour_type = _png_info(tmp_path / name)
        assert width >= 800 and height >= 400 and colour_type in (2, 6)
        import matplotlib.image

        pixels = matplotlib.image.imread(tmp_path / name)
        if pixels.shape[2] == 4:
            assert pixels[..., 3].min() == 1.0  # opaque: no transparency anywhere
        assert tuple(pixels[2, 2, :3]) == (1.0, 1.0, 1.0)  # a white page
    text = _svg_text(tmp_path / "report-throughput.svg")
    assert "npu (fp16)" in text and "published Ascend 310P (per card, fp16)" in text
    assert "cpu p99" in _svg_text(tmp_path / "report-latency.svg")
    # reproducible: the same report gives the same bytes (no dates in the files)
    again = tmp_path / "again"
    again.mkdir()
    plots.write_plots(hand_report(), again)
    for name in written:
        assert (again / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_compare_bars_from_hand_made_rows(tmp_path):
    rows = [{"target": "t4", "batch_size": 1, "ratio": 1.12, "ratio_low": 1.08, "ratio_high": 1.2, "verdict": "faster",
             "threshold": 0.05, "precision": "fp16"},
            {"target": "t4", "batch_size": 8, "ratio": 0.97, "ratio_low": 0.9, "ratio_high": 1.03, "verdict": "same",
             "threshold": 0.05},
            {"target": "cpu", "batch_size": 8, "ratio": 0.7, "ratio_low": 0.65, "ratio_high": 0.74, "verdict": "slower",
             "threshold": 0.05},
            {"target": "cpu", "batch_size": 16, "ratio": None, "ratio_low": None, "ratio_high": None,
             "verdict": "same", "threshold": 0.05}]
    bars = plots.compare_series(rows)
    assert [(b.label, b.ratio, b.ratio_low, b.ratio_high, b.verdict) for b in bars] == [
        ("t4 bs1 (fp16)", 1.12, 1.08, 1.2, "faster"), ("t4 bs8", 0.97, 0.9, 1.03, "same"),
        ("cpu bs8", 0.7, 0.65, 0.74, "slower"), ("cpu bs16", None, None, None, "same")]
    ax = plots.compare_figure(rows).axes[0]
    widths = [p.get_width() for p in ax.patches if p.get_height() == pytest.approx(0.6)]
    assert widths == [1.12, 0.97, 0.7]  # one bar per row with a ratio, the first on top
    whiskers = [c.lines[2][0].get_segments()[0] for c in ax.containers if hasattr(c, "has_xerr") and c.has_xerr]
    assert [(s[0][0], s[1][0]) for s in whiskers] == [(1.08, 1.2), (0.9, 1.03), (0.65, 0.74)]
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "1.120 faster" in texts and "0.700 SLOWER" in texts and "no ratio" in texts
    assert plots.compare_bars(rows, tmp_path / "compare.png") == tmp_path / "compare.png"
    _png_info(tmp_path / "compare.png")
    plots.compare_bars(rows, tmp_path / "compare.svg")
    assert "cpu bs8" in _svg_text(tmp_path / "compare.svg")


def test_compare_bars_takes_what_compare_gives(tmp_path):
    compare = pytest.importorskip("jobs.results.compare")
    if not hasattr(compare, "ratio_bars"):
        pytest.skip("jobs.results.compare has no ratio_bars yet")
    a, b = hand_report(), hand_report()
    rows = compare.ratio_bars(compare.compare(a, b))
    assert rows and len(plots.compare_series(rows)) == len(rows)
    plots.compare_bars(rows, tmp_path / "compare.png")
    _png_info(tmp_path / "compare.png")


# --- the eval stage and the controller -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep_outputs(tmp_path_factory):
    """Committed infer outputs of two null-backend targets at three batch sizes, and the data they read."""
    root = tmp_path_factory.mktemp("plots")
    images = root / "images"
    names = fake_imagenet.make_image_set(images, count=8, seed=5)
    fake_imagenet.write_labels(images, names, [i % 5 for i in range(len(names))])
    assert preprocess.main(["--images", str(images), "--labels", str(images / "val_label.txt"),
                            "--out", str(root / "data"), "--quiet"]) == 0
    runs = []
    for target, rate in (("fast", 4000), ("slow", 800)):
        for bs in (1, 2, 4):
            out = root / f"infer-{target}-{bs}"
            assert infer.main(["--backend", "null", "--option", f"images_per_s={rate}", "--data", str(root / "data"),
                               "--batch-size", str(bs), "--min-batches", "2", "--min-seconds", "0",
                               "--target-name", target, "--out", str(out), "--quiet"]) == 0
            runs += ["--run", str(out)]
    return root, runs


def run_eval(root: pathlib.Path, runs: list[str], name: str, *extra: str) -> pathlib.Path:
    out = root / name
    assert eval_stage.main([*runs, "--data", str(root / "data"), "--out", str(out), "--quiet",
                            "--reference-top1", "0", "--reference-top5", "0", *extra]) == 0
    return out


def test_eval_writes_plots_beside_the_reports_and_links_them(sweep_outputs):
    root, runs = sweep_outputs
    out = run_eval(root, runs, "eval", "--latency-limit-ms", "1.5", "--price", "slow=3.6:USD")
    manifest = commit.read_manifest(store.open_store(out))
    assert {f["name"] for f in manifest["files"]} >= set(records.REPORT_FILES) | set(records.PLOT_FILES)
    assert manifest["record"]["plots"] == list(records.PLOT_FILES)
    md = (out / "report.md").read_text()
    for name in records.PLOT_FILES:
        assert (out / name).is_file()
        assert f"({name})" in md  # a relative link, beside report.md
    for name in (n for n in records.PLOT_FILES if n.endswith(".png")):
        assert "![" in md and f"]({name})" in md
        _png_info(out / name)
    for name in (n for n in records.PLOT_FILES if n.endswith(".svg")):
        _svg_text(out / name)
    # what the plots draw is report.json's rows
    report_json = (out / "report.json").read_text()
    assert _series_points(records.Report.from_json(report_json)) == _json_points(report_json)
    # best batch size and cost, in report.json and report.md
    report = records.Report.from_json(report_json)
    assert list(report.best) == ["fast", "slow"] and report.latency_limit_ms == 1.5
    slow = report.best["slow"]
    assert slow.price == records.Price(3.6, "USD")
    assert slow.cost_per_million == pytest.approx(3.6 / 3600 / slow.throughput * 1e6)
    assert report.best["fast"].price is None and report.best["fast"].cost_per_million is None
    assert "## Best batch size" in md and "Cost per million images" in md and "3.60 USD" in md


def test_eval_without_matplotlib_writes_the_reports_and_says_so(sweep_outputs, monkeypatch, caplog):
    root, runs = sweep_outputs
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert not plots.available()
    out = root / "eval-no-plots"
    with caplog.at_level(logging.INFO, logger="ghostbench.eval"):
        assert eval_stage.main([*runs, "--data", str(root / "data"), "--out", str(out),
                                "--reference-top1", "0", "--reference-top5", "0"]) == 0
    for name in records.REPORT_FILES:
        assert (out / name).is_file()
    assert not any((out / name).exists() for name in records.PLOT_FILES)
    skipped = [r.getMessage() for r in caplog.records if "plots skipped" in r.getMessage()]
    assert len(skipped) == 1 and "matplotlib is not installed" in skipped[0]
    md = (out / "report.md").read_text()
    assert "Plots skipped: matplotlib is not installed" in md and ".png)" not in md


def test_eval_refuses_a_price_for_an_unknown_target(sweep_outputs, capsys):
    root, runs = sweep_outputs
    assert eval_stage.main([*runs, "--data", str(root / "data"), "--out", str(root / "eval-bad"), "--quiet",
                            "--price", "nope=1:USD"]) == 2
    assert "--price nope=...: no run has target 'nope'" in capsys.readouterr().err


def test_the_controller_publishes_the_plots_with_the_reports(sweep_outputs, tmp_path):
    root, runs = sweep_outputs
    st = store.open_store(tmp_path / "store")
    out = run_eval(root, runs, "eval-published")
    # the eval output as a plan's eval step would have it, in the store
    for path in out.rglob("*"):
        if path.is_file():
            st.write_bytes(f"artifacts/eval/k/{path.relative_to(out).as_posix()}", path.read_bytes())
    step = plan_mod.Step("k", params.EvalParams(runs=("r",), data="d", out=st.uri + "/artifacts/eval/k"),
                         "eval", "artifacts/eval/k")
    runner._publish_reports(plan_mod.Plan("s", st.uri, (step,)), st)
    sweep = tmp_path / "store" / "sweeps" / "s"
    assert {p.name for p in sweep.iterdir()} == set(records.REPORT_FILES) | set(records.PLOT_FILES)
    for name in records.PLOT_FILES:
        assert (sweep / name).read_bytes() == (out / name).read_bytes()
    md = (sweep / "report.md").read_text()
    assert all((sweep / name).is_file() for name in records.PLOT_FILES if f"({name})" in md)  # links resolve there
