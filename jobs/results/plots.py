"""The sweep report as plots (matplotlib, headless): PNG and SVG beside report.md.

- ``report-throughput``: throughput per batch size per target (line and markers, log batch axis, error bars
  from the slowest to the fastest timing window), with the published 310 / 310P / T4 figures (per card, fp16)
  as dashed lines on the same axes, and a caption stating their basis;
- ``report-latency``: compute mean and p99 (ms) per batch size per target, and the latency limit if one was given;
- ``compare_bars``: the compare view (``jobs.results.compare.ratio_bars`` rows) as ratio bars with their spread.

What is drawn comes from ``throughput_series``, ``published_series``, ``latency_series`` and ``compare_series``:
the exact points, so that tests hold them against report.json. One colour per target, by target order
(``target_colours``), the same in every plot; white background, no transparency, dark colours, text >= 10 pt:
readable on a white page and in a terminal image viewer.

matplotlib is the ``plots`` extra, imported only when drawing (through ``matplotlib.figure.Figure`` and the
Agg renderer: no pyplot, no display, no global backend switch); without it ``MissingDependency``.
Output is reproducible: no dates in the files, a fixed SVG id salt.
"""

from __future__ import annotations

import pathlib
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from jobs import devices, errors
from jobs.artifacts import records
from jobs.results import published, tables

PALETTE = ("#0072B2", "#C34A00", "#007A55", "#9E3D8F", "#B8001F", "#6A5000", "#00707A", "#5B3FA0")
"""Target colours in target order: dark enough for a white page (contrast at least 4.5:1), told apart by hue."""
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
"""Beyond ``len(PALETTE)`` targets the colours repeat with the next marker."""
PUBLISHED_STYLE = {  # accelerator -> (colour, dash pattern, marker): greys, so that no target colour is taken
    "Ascend310": ("#000000", (6, 3), "s"),
    "Ascend310P3": ("#4D4D4D", (2, 2), "^"),
    "nvidia-t4": ("#6E6E6E", (8, 2, 2, 2), "D"),
}
PUBLISHED_BASIS = ("Open markers, dashed and dotted lines: published figures (seed guide, section 7.1), per card, fp16 (Ascend: ATC "
                   "--precision_mode=force_fp16; T4: trtexec --fp16); an Ascend 310 card has 4 chips, a 310P card and "
                   "a T4 one each. Solid: measured here, per device (one chip, one GPU, or this CPU; the sum for a "
                   "target on several at once); bars: the slowest to the fastest timing window. Diamonds: a "
                   "target's figure per card, filled where measured on a whole card, hollow where extrapolated "
                   "from fewer chips.")
LIMIT_COLOUR = "#000000"
FONT_PT = 11
DPI = 110
SIZE_IN = (8.5, 5.0)
FORMATS = ("png", "svg")
THROUGHPUT, LATENCY = "report-throughput", "report-latency"


class ThroughputPoint(NamedTuple):
    """One drawn point: images/s at a batch size, and its error bar (slowest and fastest timing window)."""

    batch_size: int
    throughput: float
    throughput_min: float
    throughput_max: float


class LatencyPoint(NamedTuple):
    batch_size: int
    compute_mean_ms: float
    compute_p99_ms: float


class RatioBar(NamedTuple):
    label: str
    target: str
    ratio: float | None
    ratio_low: float | None
    ratio_high: float | None
    verdict: str


def _targets(report: records.Report) -> list[str]:
    return list(dict.fromkeys(r.target for r in report.runs))


def target_colours(targets: Sequence[str]) -> dict[str, tuple[str, str]]:
    """target -> (colour, marker), by order: the first target gets the first colour, and so on."""
    return {t: (PALETTE[i % len(PALETTE)], MARKERS[(i // len(PALETTE)) % len(MARKERS)])
            for i, t in enumerate(dict.fromkeys(targets))}


def throughput_series(report: records.Report) -> dict[str, list[ThroughputPoint]]:
    """target -> its points by batch size: exactly what the throughput plot draws (report.json's rows)."""
    return {t: [ThroughputPoint(r.batch_size, r.throughput, r.throughput_min, r.throughput_max)
                for r in sorted((r for r in report.runs if r.target == t), key=lambda r: r.batch_size)]
            for t in _targets(report)}


def latency_series(report: records.Report) -> dict[str, list[LatencyPoint]]:
    """target -> compute mean and p99 (ms) by batch size: exactly what the latency plot draws."""
    return {t: [LatencyPoint(r.batch_size, r.compute_mean_ms, r.compute_p99_ms)
                for r in sorted((r for r in report.runs if r.target == t), key=lambda r: r.batch_size)]
            for t in _targets(report)}


class CardPoint(NamedTuple):
    """A target's images/s per card at a batch size, and whether it was measured on a whole card."""

    batch_size: int
    throughput: float
    measured: bool


def per_card_series(report: records.Report) -> dict[str, list[CardPoint]]:
    """target -> its per-card points (``tables.card_figure``), for targets whose accelerator has published figures
    and whose per-card figure is not its per-device one (a card of several chips, or several devices): what the
    throughput plot draws beside the published figures, extrapolated points hollow."""
    out: dict[str, list[CardPoint]] = {}
    for t in _targets(report):
        acc = report.accelerators.get(t)
        if acc not in published.SEED:
            continue
        runs = sorted((r for r in report.runs if r.target == t), key=lambda r: r.batch_size)
        figures = [(r, tables.card_figure(r, acc)) for r in runs]
        if all(f.chips == 1 and r.devices == 1 for r, f in figures):
            continue
        out[t] = [CardPoint(r.batch_size, f.throughput, f.measured) for r, f in figures]
    return out


def published_series() -> dict[str, list[tuple[int, float]]]:
    """accelerator -> (batch size, images/s per card) of the published figures, as the throughput plot draws them."""
    return {acc: sorted(pub.throughput.items()) for acc, pub in published.SEED.items()}


def published_label(accelerator: str) -> str:
    label = published.SEED[accelerator].label
    chips = devices.get(accelerator).chips_per_card
    return f"published {label} (per card{f', {chips} chips' if chips > 1 else ''}, fp16)"


def compare_series(rows: Sequence[Mapping[str, Any]]) -> list[RatioBar]:
    """The bars ``compare_bars`` draws, in the rows' order (``jobs.results.compare.ratio_bars``: target, batch_size, ratio,
    ratio_low, ratio_high, verdict; precision and input_mode join the label where given)."""
    bars = []
    for row in rows:
        extra = ", ".join(str(row[k]) for k in ("precision", "input_mode") if row.get(k))
        label = f"{row['target']} bs{row['batch_size']}" + (f" ({extra})" if extra else "")
        bars.append(RatioBar(label, str(row["target"]), row.get("ratio"), row.get("ratio_low"), row.get("ratio_high"),
                             str(row.get("verdict", ""))))
    return bars


# --- drawing ------------------------------------------------------------------------------------------------


def _matplotlib():
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as e:
        raise errors.MissingDependency("plots need matplotlib: pip install 'ghostbench[plots]'") from e
    return matplotlib, Figure


def available() -> bool:
    """matplotlib can be imported here (the ``plots`` extra)."""
    try:
        _matplotlib()
    except errors.MissingDependency:
        return False
    return True


def _style() -> dict[str, Any]:
    return {"font.size": FONT_PT, "axes.titlesize": FONT_PT + 1, "axes.labelsize": FONT_PT,
            "xtick.labelsize": FONT_PT - 1, "ytick.labelsize": FONT_PT - 1, "legend.fontsize": FONT_PT - 1,
            "figure.facecolor": "white", "axes.facecolor": "white", "savefig.facecolor": "white",
            "savefig.transparent": False, "axes.edgecolor": "black", "axes.labelcolor": "black",
            "text.color": "black", "xtick.color": "black", "ytick.color": "black", "grid.color": "#BBBBBB",
            "legend.framealpha": 1.0, "legend.edgecolor": "black", "svg.hashsalt": "ghostbench",
            "svg.fonttype": "none", "lines.linewidth": 2.0, "lines.markersize": 7}


def _figure(height: float = SIZE_IN[1]):
    _, Figure = _matplotlib()
    fig = Figure(figsize=(SIZE_IN[0], height), dpi=DPI)
    ax = fig.add_subplot()
    ax.grid(True, which="major", linewidth=0.8)
    ax.set_axisbelow(True)
    return fig, ax


def _batch_axis(ax, sizes: Sequence[int]) -> None:
    from matplotlib.ticker import NullLocator

    ax.set_xscale("log", base=2)
    ticks = sorted(set(sizes))
    ax.set_xticks(ticks, labels=[str(s) for s in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    if ticks:
        ax.set_xlim(ticks[0] / 1.3, ticks[-1] * 1.3)
    ax.set_xlabel("Batch size (log scale)")


def _caption(fig, text: str) -> None:
    fig.text(0.01, -0.01, textwrap.fill(text, 120), ha="left", va="top", fontsize=FONT_PT - 1)


def _legend(ax, first: Sequence[str] = ()) -> None:
    """Beside the axes (never over a point): the entries labelled ``first`` (the targets) first, then the rest."""
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i] not in first)
    ax.legend([handles[i] for i in order], [labels[i] for i in order], loc="upper left", bbox_to_anchor=(1.01, 1.0),
              borderaxespad=0.0)


def throughput_figure(report: records.Report):
    """The throughput plot of ``report`` (a matplotlib Figure): ``throughput_series`` as lines with error bars,
    ``published_series`` dashed, the basis in the caption."""
    matplotlib, _ = _matplotlib()
    with matplotlib.rc_context(_style()):
        fig, ax = _figure()
        series = throughput_series(report)
        colours = target_colours(list(series))
        precision = {r.target: r.precision for r in report.runs}
        sizes: list[int] = []
        values: list[float] = []
        for target, points in series.items():
            colour, marker = colours[target]
            xs = [p.batch_size for p in points]
            ys = [p.throughput for p in points]
            low = [max(p.throughput - p.throughput_min, 0.0) if p.throughput_min > 0 else 0.0 for p in points]
            high = [max(p.throughput_max - p.throughput, 0.0) if p.throughput_max > 0 else 0.0 for p in points]
            ax.errorbar(xs, ys, yerr=[low, high], color=colour, marker=marker, linestyle="-", capsize=4,
                        elinewidth=1.5, label=f"{target} ({precision[target]})", zorder=3)
            sizes += xs
            values += [v for v in ys if v > 0]
        seed_model = report.model == published.SEED_MODEL  # the seed's figures are GhostNet's alone
        for target, cps in (per_card_series(report) if seed_model else {}).items():
            colour, _ = colours[target]
            ax.plot([c.batch_size for c in cps], [c.throughput for c in cps], color=colour, linestyle=":",
                    linewidth=1.2, zorder=3)
            for measured in (True, False):
                pts = [c for c in cps if c.measured == measured]
                if pts:  # measured: filled diamonds; extrapolated from fewer chips: hollow, apart in the legend
                    ax.plot([c.batch_size for c in pts], [c.throughput for c in pts], color=colour, linestyle="none",
                            marker="D", markersize=7, markerfacecolor=colour if measured else "white",
                            label=f"{target} per card, {'measured' if measured else 'extrapolated'}", zorder=4)
                    sizes += [c.batch_size for c in pts]
                    values += [c.throughput for c in pts if c.throughput > 0]
        for acc, points in (published_series() if seed_model else {}).items():
            colour, dashes, marker = PUBLISHED_STYLE[acc]
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            ax.plot(xs, ys, color=colour, dashes=dashes, marker=marker, markerfacecolor="white", linewidth=1.6,
                    label=published_label(acc), zorder=2)
            sizes += xs
            values += ys
        _batch_axis(ax, sizes)
        if values and max(values) / min(values) > 10:
            from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
            ax.yaxis.set_minor_locator(NullLocator())
            ax.set_ylabel("Images/s (log scale, compute only)")
        else:
            ax.set_ylim(bottom=0)
            ax.set_ylabel("Images/s (compute only)")
        ax.set_title(f"{report.model}: throughput per batch size")
        _legend(ax, [f"{t} ({precision[t]})" for t in series])
        if seed_model:
            _caption(fig, PUBLISHED_BASIS)
    return fig


def latency_figure(report: records.Report):
    """The latency plot of ``report``: ``latency_series``, mean solid and p99 dotted, and the latency limit."""
    matplotlib, _ = _matplotlib()
    with matplotlib.rc_context(_style()):
        fig, ax = _figure()
        series = latency_series(report)
        colours = target_colours(list(series))
        sizes: list[int] = []
        for target, points in series.items():
            colour, marker = colours[target]
            xs = [p.batch_size for p in points]
            ax.plot(xs, [p.compute_mean_ms for p in points], color=colour, marker=marker, linestyle="-",
                    label=f"{target} mean", zorder=3)
            ax.plot(xs, [p.compute_p99_ms for p in points], color=colour, marker=marker, linestyle=":",
                    markerfacecolor="white", label=f"{target} p99", zorder=3)
            sizes += xs
        if report.latency_limit_ms is not None:
            ax.axhline(report.latency_limit_ms, color=LIMIT_COLOUR, dashes=(8, 3, 2, 3), linewidth=1.5,
                       label=f"p99 limit {report.latency_limit_ms:g} ms", zorder=2)
        _batch_axis(ax, sizes)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("Compute time per batch (ms)")
        ax.set_title(f"{report.model}: compute latency per batch size")
        _legend(ax)
        _caption(fig, "Solid: mean; dotted, open markers: 99th percentile (ais_infer's NPU_compute_time), per "
                      "batch, on one device.")
    return fig


def compare_figure(rows: Sequence[Mapping[str, Any]]):
    """Ratio bars (B over A, throughput) with the spread the timing windows allow, 1.0 marked, and the band of
    ``same`` (1 ± threshold) where the rows carry a threshold; each bar's verdict written beside it."""
    matplotlib, _ = _matplotlib()
    bars = compare_series(rows)
    threshold = next((row["threshold"] for row in rows if row.get("threshold") is not None), None)
    with matplotlib.rc_context(_style()):
        fig, ax = _figure(height=max(2.5, 1.2 + 0.42 * len(bars)))
        colours = target_colours([b.target for b in bars])
        ys = list(range(len(bars)))[::-1]  # the first row on top
        if threshold is not None:
            ax.axvspan(1 - threshold, 1 + threshold, color="#E6E6E6", zorder=0,
                       label=f"same: 1 ± {threshold:g}")
        ax.axvline(1.0, color="black", linewidth=1.2, zorder=1)
        top = 1.0
        for y, b in zip(ys, bars):
            if b.ratio is None:
                ax.text(0.0, y, " no ratio (A's throughput is 0)", va="center", ha="left")
                continue
            low = b.ratio - b.ratio_low if b.ratio_low is not None else 0.0
            high = b.ratio_high - b.ratio if b.ratio_high is not None else 0.0
            ax.barh(y, b.ratio, height=0.6, color=colours[b.target][0], zorder=2)
            ax.errorbar([b.ratio], [y], xerr=[[max(low, 0.0)], [max(high, 0.0)]], color="black", capsize=4,
                        linewidth=1.5, zorder=3)
            end = max(b.ratio, b.ratio_high or b.ratio)
            ax.text(end, y, f"  {b.ratio:.3f} {b.verdict.upper() if b.verdict == 'slower' else b.verdict}",
                    va="center", ha="left")
            top = max(top, end)
        ax.set_yticks(ys, labels=[b.label for b in bars])
        ax.set_xlim(0, top * 1.3)
        ax.set_ylim(-0.7, len(bars) - 0.3)
        ax.set_xlabel("Throughput ratio B / A (whiskers: the range the runs' timing windows allow)")
        ax.set_title("Compare: B against A")
        if threshold is not None:
            _legend(ax)
    return fig


def _save(fig, path: pathlib.Path) -> None:
    matplotlib, _ = _matplotlib()
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise errors.BadInput(f"{path}: a plot is written as {' or '.join(FORMATS)}")
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with matplotlib.rc_context(_style()):
        fig.savefig(path, format=fmt, bbox_inches="tight", pad_inches=0.15, metadata=metadata)


def write_plots(report: records.Report, folder: str | pathlib.Path) -> list[str]:
    """The report's plots as PNG and SVG in ``folder`` (``records.PLOT_FILES``); the names written."""
    folder = pathlib.Path(folder)
    written = []
    for stem, make in ((THROUGHPUT, throughput_figure), (LATENCY, latency_figure)):
        fig = make(report)
        for fmt in FORMATS:
            _save(fig, folder / f"{stem}.{fmt}")
            written.append(f"{stem}.{fmt}")
    assert set(written) == set(records.PLOT_FILES), written  # one list of plot names: records.PLOT_FILES
    return written


def compare_bars(rows: Sequence[Mapping[str, Any]], path: str | pathlib.Path) -> pathlib.Path:
    """The compare view as ratio bars at ``path`` (.png or .svg): rows as ``jobs.results.compare.ratio_bars`` gives them."""
    path = pathlib.Path(path)
    _save(compare_figure(rows), path)
    return path
