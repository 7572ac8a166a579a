"""Accuracy files in the seed's format, and the sweep reports (JSON, CSV, Markdown)."""

from __future__ import annotations

import csv
import io
from typing import Any

from jobs import published


def seed_accuracy(num_images: int, num_classes: int, accuracy: dict[int, float]) -> dict[str, Any]:
    """``accuracy.json`` exactly as the seed's imagenet_acc_eval.py writes it."""
    value = [
        {"key": "Number of images", "value": str(num_images)},
        {"key": "Number of classes", "value": str(num_classes)},
    ]
    value += [{"key": f"Top{k} accuracy", "value": f"{accuracy[k]:.2f}%"} for k in sorted(accuracy)]
    return {"title": "Overall statistical evaluation", "value": value}


CSV_COLUMNS = ["target", "backend", "device", "input_mode", "batch_size", "num_images", "throughput",
               "compute_mean_ms", "compute_p99_ms", "end_to_end_images_per_second", "passes",
               "top1", "top2", "top3", "top4", "top5", "gate_pass"]


def to_csv(runs: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for run in runs:
        row = dict(run)
        row.update({f"top{k}": run["accuracy"][str(k)] for k in range(1, 6) if str(k) in run["accuracy"]})
        writer.writerow(row)
    return buf.getvalue()


def _fmt(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def throughput_table(runs: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Rows per batch size, a column per target, and each later target's ratio to the first."""
    targets = list(dict.fromkeys(r["target"] for r in runs))
    sizes = sorted({r["batch_size"] for r in runs})
    value = {(r["target"], r["batch_size"]): r["throughput"] for r in runs}
    header = ["Batch size"] + targets + [f"{t}/{targets[0]}" for t in targets[1:]]
    rows = []
    for bs in sizes:
        row = [str(bs)] + [_fmt(value.get((t, bs))) for t in targets]
        base = value.get((targets[0], bs))
        for t in targets[1:]:
            v = value.get((t, bs))
            row.append("-" if not base or v is None else f"{v / base:.4f}")
        rows.append(row)
    return header, rows


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + [":---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def to_markdown(report: dict[str, Any]) -> str:
    ref = report["reference"]
    runs = report["runs"]
    out = [f"# ghostbench report: {report['model']}", ""]
    if ref["kind"] == "agreement":
        out += ["> Accuracy here is **agreement with the PyTorch reference model's own predictions**, not "
                "ImageNet accuracy: the weights are not the official ones and the labels are the reference "
                "model's top-1 on the same preprocessing.", ""]
    out += ["## Throughput (images/s, compute only, as ais_infer's `throughput`)", "",
            _md_table(*throughput_table(runs)), ""]
    acc_header = ["Target", "Batch size", "Images", "Top-1 %", "Top-5 %", "Δ top-1", "Δ top-5", "Gate"]
    acc_rows = []
    for r in runs:
        a = r["accuracy"]
        acc_rows.append([r["target"], str(r["batch_size"]), str(r["num_images"]),
                         f"{a['1']:.2f}", f"{a.get('5', 0.0):.2f}",
                         f"{a['1'] - ref['top1']:+.2f}", f"{a.get('5', 0.0) - ref['top5']:+.2f}",
                         "pass" if r["gate_pass"] else "FAIL"])
    kind = "reference agreement" if ref["kind"] == "agreement" else "published ImageNet accuracy"
    out += [f"## Accuracy against the {kind} (top-1 {ref['top1']:.2f}, top-5 {ref['top5']:.2f}; "
            f"gate: at most {ref['gate']:g} point below)", "", _md_table(acc_header, acc_rows), ""]
    e2e_rows = [[r["target"], str(r["batch_size"]), _fmt(r["end_to_end_images_per_second"]),
                 _fmt(r["compute_mean_ms"], 3), _fmt(r["compute_p99_ms"], 3), str(r["passes"])] for r in runs]
    out += ["## Per run", "", _md_table(["Target", "Batch size", "End-to-end images/s", "Compute mean ms",
                                          "Compute p99 ms", "Timed passes"], e2e_rows), ""]
    pub_targets = list(published.THROUGHPUT)
    pub_rows = [[str(bs)] + [_fmt(published.THROUGHPUT[t][bs]) for t in pub_targets]
                for bs in sorted(published.THROUGHPUT[pub_targets[0]])]
    out += ["## Published figures (seed guide, section 7.1), for context", "",
            "Per card, not per chip: the Ascend 310 card has 4 chips. A CPU run is not comparable with these.",
            "", _md_table(["Batch size"] + pub_targets, pub_rows), ""]
    out.append(f"Overall: {'all runs pass the accuracy gate' if report['all_pass'] else 'SOME RUNS FAIL the accuracy gate'}.")
    return "\n".join(out) + "\n"
