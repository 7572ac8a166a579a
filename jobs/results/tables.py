"""The sweep report as tables: CSV and Markdown, from ``jobs.artifacts.records.Report``."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence

from jobs import devices, errors
from jobs.artifacts import records
from jobs.results import per_card, published

CSV_COLUMNS = ["target", "backend", "device", "input_mode", "batch_size", "num_images", "throughput",
               "repetitions_median", "repetitions_low", "repetitions_high", "valid", "busy",
               "real_images_per_second", "padded_share", "p99_samples",
               "compute_mean_ms", "compute_p99_ms", "end_to_end_images_per_second", "passes",
               "top1", "top2", "top3", "top4", "top5", "gate_pass", "nonfinite"]
ENERGY_CSV_COLUMNS = ["joules_per_image", "images_per_joule", "mean_watts", "power_method"]
"""Added to report.csv only when some run's device power was measured (``InferSummary.power``)."""
ENERGY_NOTE = ("Device power sampled during the timed passes (after warm-up): NVML's board power on an NVIDIA GPU "
               "(its energy counter where the GPU has one, else the readings integrated), `npu-smi`'s card power on "
               "an Ascend card (every chip of the card). The window is the timed passes, the harness's own pauses "
               "in the first pass included, so this is the device's energy per image over the run, not compute "
               "alone; padding is not counted as images. Only runs whose power was measured are listed.")


def to_csv(runs: Sequence[records.ReportRun]) -> str:
    buf = io.StringIO()
    energy = ENERGY_CSV_COLUMNS if any(r.joules_per_image is not None for r in runs) else []
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS + energy, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for run in runs:
        row = run.to_dict()
        row.update({f"top{k}": run.accuracy[str(k)] for k in range(1, 6) if str(k) in run.accuracy})
        row["repetitions_median"] = run.median if run.repetitions else ""
        writer.writerow(row)
    return buf.getvalue()


def _fmt(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def energy_table(runs: Sequence[records.ReportRun]) -> tuple[list[str], list[list[str]]] | None:
    """One row per run whose device power was measured: joules per image, images per joule, mean watts and how
    they were measured; None when no run's was (the report then has no energy section)."""
    measured = [r for r in runs if r.joules_per_image is not None]
    if not measured:
        return None
    rows = [[r.target, str(r.batch_size), _fmt(r.throughput), f"{r.joules_per_image:.4g}",
             _fmt(r.images_per_joule), _fmt(r.mean_watts), r.power_method or "-"] for r in measured]
    return ["Target", "Batch size", "Images/s", "J/image", "Images/J", "Mean W", "Measured by"], rows


def parse_ratios(ratios: Sequence[str], targets: list[str]) -> list[tuple[str, str]]:
    """``["a/b", ...]`` -> ``[("a", "b"), ...]``, each naming two of ``targets``."""
    pairs = []
    for ratio in ratios:
        a, sep, b = ratio.partition("/")
        if not sep or a not in targets or b not in targets or a == b:
            raise errors.BadInput(f"--ratio {ratio!r}: expected A/B naming two targets of the runs "
                                  f"({', '.join(targets)})")
        pairs.append((a, b))
    return pairs


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if not b or a is None else f"{a / b:.4f}"


def throughput_table(runs: Sequence[records.ReportRun], ratios: list[tuple[str, str]] | None = None
                     ) -> tuple[list[str], list[list[str]]]:
    """Rows per batch size, a column per target, then the ratios: those asked for (``A/B``), or by
    default each later target's ratio to the first."""
    targets = list(dict.fromkeys(r.target for r in runs))
    sizes = sorted({r.batch_size for r in runs})
    value = {(r.target, r.batch_size): r.throughput for r in runs}
    pairs = ratios if ratios else [(t, targets[0]) for t in targets[1:]]
    header = ["Batch size"] + targets + [f"{a}/{b}" for a, b in pairs]
    rows = []
    for bs in sizes:
        row = [str(bs)] + [_fmt(value.get((t, bs))) for t in targets]
        row += [_ratio(value.get((a, bs)), value.get((b, bs))) for a, b in pairs]
        rows.append(row)
    return header, rows


def published_table() -> tuple[list[str], list[list[str]]]:
    """The seed's published figures with their basis: per card, per chip where a card has several,
    and the seed's own ratio columns (per card)."""
    header, columns = ["Batch size"], []
    seed = published.SEED
    for acc, pub in seed.items():
        chips = devices.get(acc).chips_per_card
        header.append(f"{pub.label} per card ({chips} chip{'s' if chips > 1 else ''})")
        columns.append((acc, 1))
        if chips > 1:
            header.append(f"{pub.label} per chip (card / {chips})")
            columns.append((acc, chips))
    header += [f"{seed[a].label}/{seed[b].label} (per card)" for a, b in published.SEED_RATIOS]
    rows = []
    for bs in sorted(seed["Ascend310"].throughput):
        row = [str(bs)] + [_fmt(seed[acc].throughput[bs] / div, 2) for acc, div in columns]
        row += [_ratio(seed[a].throughput[bs], seed[b].throughput[bs]) for a, b in published.SEED_RATIOS]
        rows.append(row)
    return header, rows


def card_figure(r: records.ReportRun, accelerator: str) -> per_card.PerCard:
    """A run's per-card figure: the one eval recorded (``ReportRun.per_card_*``), else, in an older report, per device
    x the accelerator's ``chips_per_card``."""
    if r.per_card_throughput is not None and r.per_card_chips:
        return per_card.PerCard(r.per_card_throughput, r.per_card_basis or per_card.EXTRAPOLATED, r.per_card_chips,
                                r.devices, r.per_card_chips_from or "")
    chips = devices.get(accelerator).chips_per_card
    return per_card.per_card(r.throughput, r.devices, chips, f"accelerator {accelerator}")


def published_comparison(runs: Sequence[records.ReportRun], accelerators: dict[str, str],
                         ratios: list[tuple[str, str]] | None = None) -> tuple[list[str], list[list[str]]] | None:
    """Measured beside published, both per card, for targets whose accelerator has published figures.

    Each target's per-card figure says how it was had (``card_figure``, ``jobs.results.per_card``): measured on every
    chip of a card at once, or extrapolated from fewer (per chip x chips on the card; the seed's Ascend 310 figure
    is a 4-chip card). Ratio columns: the pairs asked for, else the seed's 310P/310 and 310P/T4 where the sweep has
    those accelerators, taking for each accelerator a target with measured figures where there is one; each with
    the published ratio. None when no target has published figures.
    """
    targets = [t for t in dict.fromkeys(r.target for r in runs) if accelerators.get(t) in published.SEED]
    if not targets:
        return None
    figure = {(r.target, r.batch_size): card_figure(r, accelerators[r.target]) for r in runs if r.target in targets}
    value = {k: f.throughput for k, f in figure.items()}
    pub = {t: published.SEED[accelerators[t]].throughput for t in targets}
    if ratios:
        pairs = [(a, b) for a, b in ratios if a in targets and b in targets]
    else:
        measured = {t for (t, _), f in figure.items() if f.measured}
        by_acc: dict[str, str] = {}
        for t in targets:  # the first target of each accelerator, a measured one before an extrapolated one
            if accelerators[t] not in by_acc or (t in measured and by_acc[accelerators[t]] not in measured):
                by_acc[accelerators[t]] = t
        pairs = [(by_acc[a], by_acc[b]) for a, b in published.SEED_RATIOS if a in by_acc and b in by_acc]
    header = ["Batch size"]
    for t in targets:
        header += [f"{t} per card", f"{t} basis", f"published {published.SEED[accelerators[t]].label}",
                   f"{t}/published"]
    for a, b in pairs:
        header += [f"{a}/{b} per card", "published"]
    rows = []
    for bs in sorted({r.batch_size for r in runs if r.target in targets}):
        row = [str(bs)]
        for t in targets:
            f, p = figure.get((t, bs)), pub[t].get(bs)
            v = f.throughput if f is not None else None
            row += [_fmt(v), f.note() if f is not None else "", _fmt(p), _ratio(v, p)]
        for a, b in pairs:
            row += [_ratio(value.get((a, bs)), value.get((b, bs))), _ratio(pub[a].get(bs), pub[b].get(bs))]
        rows.append(row)
    return header, rows


def _real(r: records.ReportRun) -> float:
    """The run's images/s of real images (ais_infer's throughput counts a short last batch's padding); an older
    report without the figure: its throughput."""
    return r.real_images_per_second or r.throughput


def best_batches(runs: Sequence[records.ReportRun], latency_limit_ms: float | None = None,
                 prices: Mapping[str, records.Price] | None = None) -> dict[str, records.BestBatch]:
    """Per target (in the runs' order): the batch size with the highest images/s of real images (padding not
    counted; a tie goes to the smaller batch size), the largest batch size whose compute p99, from enough samples
    to bound it (``records.P99_SAMPLES``), is at most ``latency_limit_ms`` (None: no limit given, or no batch size
    within it), and with a price the cost per million images at each."""
    prices = prices or {}
    best: dict[str, records.BestBatch] = {}
    for target in dict.fromkeys(r.target for r in runs):
        mine = sorted((r for r in runs if r.target == target), key=lambda r: r.batch_size)
        top = max(mine, key=lambda r: (_real(r), -r.batch_size))
        within = None
        if latency_limit_ms is not None:  # only a p99 with enough samples to bound it can say "within"
            under = [r for r in mine if r.p99_resolved and r.compute_p99_ms <= latency_limit_ms]
            within = under[-1] if under else None
        price = prices.get(target)
        best[target] = records.BestBatch(
            target=target, batch_size=top.batch_size, throughput=_real(top), p99_ms=top.compute_p99_ms,
            latency_limit_ms=latency_limit_ms,
            under_limit_batch_size=within.batch_size if within else None,
            under_limit_throughput=_real(within) if within else None,
            under_limit_p99_ms=within.compute_p99_ms if within else None,
            price=price,
            cost_per_million=price.cost_per_million(_real(top)) if price else None,
            cost_per_million_under_limit=price.cost_per_million(_real(within)) if price and within else None)
    return best


def _money(x: float | None, currency: str) -> str:
    return "-" if x is None else f"{x:,.{4 if x < 1 else 2}f} {currency}"


def best_table(report: records.Report) -> tuple[list[str], list[list[str]]]:
    """One row per target: its best batch size by throughput; with a latency limit, the largest batch size
    within it; with prices, what an hour costs and a million images cost (columns only where they apply)."""
    limit = report.latency_limit_ms
    priced = any(b.price is not None for b in report.best.values())
    header = ["Target", "Highest throughput: batch size", "Images/s", "Compute p99 ms"]
    if limit is not None:
        header += [f"Largest batch size with p99 ≤ {limit:g} ms", "Images/s", "Compute p99 ms"]
    if priced:
        header += ["Price per hour", "Cost per million images (highest throughput)"]
        if limit is not None:
            header.append(f"Cost per million images (p99 ≤ {limit:g} ms)")
    rows = []
    for b in report.best.values():
        row = [b.target, str(b.batch_size), _fmt(b.throughput), _fmt(b.p99_ms, 3)]
        if limit is not None:
            row += ([str(b.under_limit_batch_size), _fmt(b.under_limit_throughput), _fmt(b.under_limit_p99_ms, 3)]
                    if b.under_limit_batch_size is not None else ["none within the limit", "-", "-"])
        if priced:
            cur = b.price.currency if b.price else ""
            row += [_money(b.price.per_hour, cur) if b.price else "-", _money(b.cost_per_million, cur)]
            if limit is not None:
                row.append(_money(b.cost_per_million_under_limit, cur))
        rows.append(row)
    return header, rows


def best_lines(report: records.Report) -> list[str]:
    """The report.md section on best batch sizes and cost (nothing when the report has none)."""
    if not report.best:
        return []
    out = ["## Best batch size", "",
           ("From the runs of this sweep (ais_bench's best-batch search, without running anything again): the "
            "batch size with the highest throughput (a tie goes to the smaller batch size)"
            + (f", and the largest batch size whose compute p99 is at most {report.latency_limit_ms:g} ms "
               "(`report.latency_limit_ms`)." if report.latency_limit_ms is not None else
               "; no latency limit was given (`report.latency_limit_ms` in the sweep file, `--latency-limit-ms`), "
               "so none is applied.")), ""]
    if any(b.price is not None for b in report.best.values()):
        out += [("Cost per million images = price per hour / 3600 / images/s x 1,000,000, at the compute-only "
                 "throughput: a lower bound (preprocessing, transfers and idle time are not in it). Targets without "
                 "a price (`price_per_hour`, `currency`) have no cost."), ""]
    return out + [_md_table(*best_table(report)), ""]


PLOT_TITLES = {
    "report-throughput": "Throughput per batch size per target, with the published figures (per card)",
    "report-latency": "Compute latency per batch size per target: mean and p99",
}


def plot_lines(plots: Sequence[str] | None, skipped: str | None = None) -> list[str]:
    """The report.md section that links the plots written beside it (relative links), or says why there are none."""
    if skipped:
        return ["## Plots", "", f"Plots skipped: {skipped}.", ""]
    if not plots:
        return []
    out = ["## Plots", ""]
    for stem, title in PLOT_TITLES.items():
        if f"{stem}.png" in plots:
            svg = f" ([SVG]({stem}.svg))" if f"{stem}.svg" in plots else ""
            out += [f"![{title}]({stem}.png){svg}", ""]
    return out


def provenance_table(runs: Sequence[records.ReportRun]) -> tuple[list[str], list[list[str]]]:
    """One row per target: when, on which host CPU, with which ghostbench and libraries it was measured."""
    rows, seen = [], set()
    for r in runs:
        p = r.provenance
        row = [r.target, str(p.get("date", "-")), str(p.get("cpu_model", "-")), str(p.get("host", "-")),
               f"{p.get('ghostbench_version', '-')} ({p.get('ghostbench_revision') or 'no git revision'})",
               ", ".join(x for x in (p.get("backend_library"), f"Python {p.get('python', '-')}",
                                     f"NumPy {p.get('numpy', '-')}") if x)]
        if tuple(row[:1] + row[2:]) not in seen:
            seen.add(tuple(row[:1] + row[2:]))
            rows.append(row)
    return ["Target", "Measured (UTC)", "Host CPU", "Host", "ghostbench", "Libraries"], rows


def left_out_line(left_out: records.LeftOut) -> str:
    """``3 images of the dataset left out (skip_bad): 2 undecodable, 1 unlabelled; 2 labelled images missing from
    the image folder; e.g. a.JPEG (reason), ...``"""
    skipped = {kind: n for kind, n in left_out.counts.items() if kind != "missing"}
    parts = []
    if skipped:
        total = sum(skipped.values())
        parts.append(f"{total} image{'s' if total != 1 else ''} of the dataset left out (skip_bad): "
                     + ", ".join(f"{n} {kind}" for kind, n in skipped.items()))
    if left_out.missing:
        parts.append(f"{left_out.missing} labelled image{'s' if left_out.missing != 1 else ''} missing from the "
                     "image folder")
    named = "; ".join(f"{e['name']} ({e['reason']})" for e in left_out.examples)
    more = ", ..." if left_out.total > len(left_out.examples) else ""
    return "; ".join(parts) + (f"; e.g. {named}{more}" if named else "")


def dataset_lines(report: records.Report) -> list[str]:
    """What the accuracy figures rest on: the evaluated set's distinct labels and the images left out."""
    lines = []
    if report.distinct_labels is not None:
        plural = "s" if report.distinct_labels != 1 else ""
        lines += [f"The evaluated images carry {report.distinct_labels} distinct label{plural}.", ""]
    if report.left_out is not None and report.left_out.total:
        lines += [f"**Left out:** {left_out_line(report.left_out)} (listed in the preprocess shards' index.json).",
                  ""]
    if report.left_out is not None and report.left_out.missing:
        lines += [("Accuracy is over the images present, as the sweep intends (`dataset.allow_missing`)."
                   if report.allow_missing else
                   "**Every run fails the accuracy gate:** the dataset lacks images the labels file names, so its "
                   "accuracy is not the reference's figure; set `dataset.allow_missing: true` if a partial set is "
                   "intended."), ""]
    return lines


def _gate(r: records.ReportRun, missing: int = 0) -> str:
    if r.gate_pass:
        return "pass"
    why = [w for w, on in (("non-finite logits", r.nonfinite), ("images missing", missing)) if on]
    return f"FAIL ({', '.join(why)})" if why else "FAIL"


def failing_line(r: records.ReportRun, missing: int = 0) -> str:
    """A run below the gate, for the console: ``t bs2: top-1 33.33%, top-5 66.67%`` and why beyond its accuracy: where
    its logits held NaN or infinities, ``, non-finite logits in 12 of 12 images``; where ``missing`` labelled images
    were missing from the dataset (``Report.missing_fails``), ``, 28 labelled images missing from the dataset``."""
    bad = f", non-finite logits in {r.nonfinite} of {r.num_images} images" if r.nonfinite else ""
    if missing:
        bad += f", {missing} labelled image{'s' if missing != 1 else ''} missing from the dataset"
    return f"{r.target} bs{r.batch_size}: top-1 {r.accuracy['1']:.2f}%, top-5 {r.accuracy.get('5', 0.0):.2f}%{bad}"


def nonfinite_lines(runs: Sequence[records.ReportRun]) -> list[str]:
    """The runs whose logits held NaN or infinities: failed at the gate whatever their accuracy."""
    bad = [r for r in runs if r.nonfinite]
    if not bad:
        return []
    which = ", ".join(f"{r.target} bs{r.batch_size} ({r.nonfinite} of {r.num_images} images)" for r in bad)
    return [f"**Non-finite logits** (NaN or ±inf, as an fp16 overflow leaves them) in {which}: these runs fail the "
            "gate whatever their accuracy, which ranks NaN last by rule; each run's predictions.csv and summary.json "
            "(`nonfinite`) keep the values.", ""]


def _repetitions(r: records.ReportRun) -> str:
    if not r.repetitions:
        return "-"
    interval = f" [{_fmt(r.repetitions_low)}–{_fmt(r.repetitions_high)}]" if r.repetitions_high > r.repetitions_low else ""
    return f"{_fmt(r.geomean)}{interval} ({len(r.repetitions)})"


def _validity(r: records.ReportRun) -> str:
    if not r.repetitions:
        return "-"
    marks = [] if r.valid else list(dict.fromkeys(x.split(":")[0] for x in r.validity_reasons))
    if r.busy:
        marks.append("busy")
    return "yes" if not marks else ("yes, " if r.valid else "no: ") + ", ".join(marks)


def _p99(r: records.ReportRun) -> str:
    if not r.p99_samples:
        return _fmt(r.compute_p99_ms, 3)
    few = "" if r.p99_resolved else ", too few"
    return f"{_fmt(r.compute_p99_ms, 3)} ({r.p99_samples}{few})"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + [":---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def to_markdown(report: records.Report, plots: Sequence[str] | None = None, plots_skipped: str | None = None) -> str:
    """report.md; ``plots``: the plot files written beside it (linked), ``plots_skipped``: why there are none."""
    ref = report.reference
    runs = report.runs
    out = [f"# ghostbench report: {report.model}", ""]
    if report.model_source:
        out += [f"Model: {report.model}, {report.model_source}.", ""]
    seed_model = report.model == published.SEED_MODEL  # the seed's throughput table is GhostNet's alone
    if ref.kind == "agreement":
        out += [("> Accuracy here is **agreement with the PyTorch reference model's own predictions**, not "
                 "ImageNet accuracy: the weights are not the official ones and the labels are the reference "
                 "model's top-1 on the same preprocessing."), ""]
    accelerators = report.accelerators
    targets = list(dict.fromkeys(r.target for r in runs))
    ratios = parse_ratios(report.ratios, targets)
    out += ["## Throughput (images/s, compute only, as ais_infer's `throughput`)", "",
            ("Each target's figure is one device (one NPU chip, one GPU, or this machine's CPU), or for a target on "
             "several devices at once the sum of theirs (ais_bench's `--device 0,1,..` figure)."), "",
            _md_table(*throughput_table(runs, ratios)), ""]
    out += devices_lines(runs)
    comparison = published_comparison(runs, accelerators, ratios) if seed_model else None
    if comparison is not None:
        chips = ", ".join(f"{a} {devices.get(a).chips_per_card}" for a in published.SEED)
        out += ["## Against the published figures (per card, as the seed's table)", "",
                ("Per card: **measured** where the target ran on every chip of a card at once (the sum of the chips' "
                 "throughputs, as ais_bench measures a card), else **extrapolated**: per chip x the chips on one card "
                 f"(from npu-smi at run time, the target's card, or `jobs.devices`: {chips}), which assumes the "
                 "card's other chips would not slow it down. Published: seed section 7.1."), "",
                _md_table(*comparison), ""]
    out += best_lines(report)
    out += plot_lines(plots, plots_skipped)
    acc_header = ["Target", "Batch size", "Images", "Top-1 %", "Top-5 %", "Δ top-1", "Δ top-5", "Gate"]
    acc_rows = []
    for r in runs:
        a = r.accuracy
        acc_rows.append([r.target, str(r.batch_size), str(r.num_images),
                         f"{a['1']:.2f}", f"{a.get('5', 0.0):.2f}",
                         f"{a['1'] - ref.top1:+.2f}", f"{a.get('5', 0.0) - ref.top5:+.2f}",
                         _gate(r, report.missing_fails)])
    heading = ("Agreement with the reference model" if ref.kind == "agreement"
               else "Accuracy against the published ImageNet accuracy")
    out += [(f"## {heading} (top-1 {ref.top1:.2f}, top-5 {ref.top5:.2f}; "
             f"gate: at most {ref.gate:g} point below)"), "", _md_table(acc_header, acc_rows), ""]
    out += nonfinite_lines(runs)
    out += dataset_lines(report)
    e2e_rows = [[r.target, str(r.batch_size), r.precision, r.provider + (" (fallback)" if r.fallback else ""),
                 _fmt(r.throughput), _repetitions(r), _validity(r), _fmt(r.real_images_per_second or None),
                 f"{r.padded_share:.0%}", _fmt(r.end_to_end_images_per_second), _fmt(r.compute_mean_ms, 3),
                 _p99(r), str(r.passes)] for r in runs]
    out += ["## Per run", "",
            ("Images/s is ais_infer's throughput (1000 x batch / mean compute ms over every timed batch). Each run "
             "timed several repetitions, each after the first on a fresh backend session, each from its median "
             "batch: their geometric mean, with the 95% interval an identical rerun's geometric mean would fall "
             "in, is what `ghostbench compare` tests. The two figures differ when some batches were slow: a mean "
             "counts them, a median does not. A run is valid when it timed at least "
             f"{records.VALID_SECONDS:g}s of compute and {records.VALID_BATCHES} batches in at least "
             f"{records.MIN_REPETITIONS} repetitions within {records.UNSTABLE_SPREAD:.0%} of each other (after "
             "MLPerf LoadGen and perf_analyzer); a shorter run's figure moves more between reruns, so comparisons "
             "of it are more often inconclusive. Busy: something else ran on the host or the device while it was "
             "timed. Real images/s leaves out the padding of a short last batch, which ais_infer's figure counts; "
             f"a p99 needs {records.P99_SAMPLES} samples to be bounded with 95% confidence (fewer: marked)."), "",
            _md_table(["Target", "Batch size", "Precision", "Ran on", "Images/s", "Repetitions [rerun interval] (n)",
                       "Valid", "Real images/s", "Padding", "End-to-end images/s", "Compute mean ms",
                       "Compute p99 ms (samples)", "Timed passes"], e2e_rows), ""]
    short = [r for r in runs if r.repetitions and not r.valid]
    if short:
        why = "; ".join(sorted({x.split(":")[0] for r in short for x in r.validity_reasons}))
        out += [f"{len(short)} of {len(runs)} run(s) are not valid ({why}): their figures are fine for a look, but a "
                "comparison with them says inconclusive more often.", ""]
    energy = energy_table(runs)
    if energy is not None:
        out += ["## Energy per image", "", ENERGY_NOTE, "", _md_table(*energy), ""]
    out += ["## Where it ran", "", _md_table(*provenance_table(runs)), ""]
    out += [] if not seed_model else ["## Published figures (seed guide, section 7.1), for context", "",
            ("Basis: per card, as published; an Ascend 310 card carries 4 chips (per chip = card / 4), a 310P "
             "card and a T4 one each. The ratios are the seed's own columns. A CPU run is comparable with none "
             "of these."), "",
            ("Precision: the Ascend rows were measured with ATC's default `--precision_mode=force_fp16` (fp16); the "
             "T4 rows of Ascend ModelZoo guides with `trtexec --fp16` (fp16). A target's own precision is in the "
             "per-run table: compare fp16 with fp16."), "", _md_table(*published_table()), ""]
    out.append(f"Overall: {'all runs pass the accuracy gate' if report.all_pass else 'SOME RUNS FAIL the accuracy gate'}.")
    return "\n".join(out) + "\n"


def devices_lines(runs: Sequence[records.ReportRun]) -> list[str]:
    """report.md's table of runs on several devices at once: ais_bench's summed figure beside the wall clock's."""
    multi = [r for r in runs if r.devices > 1]
    if not multi:
        return []
    rows = [[r.target, str(r.batch_size), str(r.devices), _fmt(r.throughput), _fmt(r.wall_images_per_second),
             _ratio(r.wall_images_per_second, r.throughput),
             "yes" if r.started_together else "no"] for r in multi]
    return ["## Several devices at once", "",
            ("One infer process per device, started together (ais_bench `--device 0,1,..`). Summed: the sum of "
             "the devices' compute throughputs, ais_bench's figure. Wall clock: the images every device inferred in "
             "its predictions pass over the time from the first start to the last end, reading, copying and ranking "
             "included: where it falls well below the sum, the devices (or the host feeding them) slow each other."),
            "", _md_table(["Target", "Batch size", "Devices", "Summed images/s", "Wall-clock images/s",
                           "Wall clock / summed", "Started together"], rows), ""]


def parse_price(text: str, where: str) -> tuple[float, str]:
    """``"AMOUNT:CURRENCY"`` (``0.35:USD``) -> ``(0.35, "USD")``: an amount >= 0 per hour, a currency without spaces."""
    amount, sep, currency = str(text).partition(":")
    try:
        value = float(amount)
    except ValueError:
        value = -1.0
    if not sep or not currency or len(currency) > 16 or any(c.isspace() or c == ":" for c in currency) \
            or not value >= 0 or value == float("inf"):
        raise errors.BadInput(f"{where}: expected AMOUNT:CURRENCY, a price per hour >= 0 and a currency, "
                              "e.g. 0.35:USD")
    return value, currency
