"""Stage eval: predictions + labels -> accuracy.json per run, and the sweep's reports.

Writes ``runs/<target>/bs<N>/accuracy.json`` in the seed's format for every infer output, and
``report.json``, ``report.csv`` and ``report.md`` across them: throughput per batch size per
target with ratios between targets (``--ratio A/B``, default each target against the first), the
published figures with their basis (per card and per chip) and, for targets named with
``--accelerator``, the measurement beside them on the same basis; each target's best batch size
(highest throughput; with ``--latency-limit-ms`` the largest within that compute p99) and, with
``--price``, the cost per million images there; and accuracy against the reference with the gate.
Beside them the plots (``jobs.results.plots``, ``records.PLOT_FILES``), linked from report.md; without
matplotlib they are skipped with one log line.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import re
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from jobs import errors, models, params
from jobs import store as store_mod
from jobs.artifacts import commit, records, shards
from jobs.results import metrics, per_card, plots, tables
from jobs.stages import cli

log = logging.getLogger("ghostbench.eval")


def read_predictions(text: str, source: str) -> tuple[list[str], np.ndarray]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or header[:2] != ["index", "name"]:
        raise errors.BadInput(f"{source}: not a ghostbench predictions file (header {header})")
    k = sum(1 for h in header if re.fullmatch(r"top\d+", h))
    names, tops = [], []
    for lineno, row in enumerate(reader, start=2):
        try:
            names.append(row[1])
            tops.append([int(v) for v in row[2:2 + k]])
        except (IndexError, ValueError) as e:
            raise errors.BadInput(f"{source}:{lineno}: malformed predictions row") from e
    return names, np.array(tops, dtype=np.int64).reshape(len(tops), k)


def evaluate_run(uri: str, label_of: dict[str, int], args: params.EvalParams, reference: records.Reference
                 ) -> tuple[records.ReportRun, records.SeedAccuracy]:
    run_store, manifest = commit.require_committed(uri, "--run")
    summary = records.InferSummary.from_json(commit.read_verified(run_store, manifest, records.SUMMARY),
                                             f"{uri}/{records.SUMMARY}")
    names, tops = read_predictions(commit.read_verified(run_store, manifest, records.PREDICTIONS).decode("utf-8"),
                                   f"{uri}/{records.PREDICTIONS}")
    missing = [n for n in names if label_of.get(n, -1) < 0]
    if missing:
        raise errors.BadInput(f"--run {uri}: {len(missing)} predicted images have no label in --data, "
                              f"first: {missing[0]}")
    labels = np.array([label_of[n] for n in names], dtype=np.int64) + (args.label_offset or 0)  # model's indices
    acc = metrics.topk_accuracy(tops, labels, 5)
    gate_pass = acc[1] >= reference.top1 - reference.gate and acc.get(5, 0.0) >= reference.top5 - reference.gate
    if summary.nonfinite.images:  # NaN ranked last is a rule, not a prediction: no gate passes on them
        gate_pass = False
        log.warning("eval: %s bs%d fails the gate: %s", summary.target, summary.batch_size,
                    summary.nonfinite.line(len(names)))
    row = records.ReportRun(
        run=uri, target=summary.target, backend=summary.backend, device=summary.device,
        input_mode=summary.input_mode or None, batch_size=summary.batch_size, num_images=len(names),
        throughput=summary.throughput, compute_mean_ms=summary.compute.mean, compute_p99_ms=summary.compute.p99,
        end_to_end_images_per_second=summary.end_to_end.images_per_second, passes=summary.passes,
        accuracy={str(k): round(v, 4) for k, v in acc.items()}, gate_pass=bool(gate_pass),
        throughput_min=summary.windows.min, throughput_max=summary.windows.max, stable=summary.windows.stable,
        precision=summary.precision, provider=_provider(summary), fallback=bool(summary.backend_info.get("fallback")),
        provenance={**summary.provenance, "backend_library": _backend_library(summary)}, **_energy(summary.power),
        repetitions=summary.repetitions.throughput, repetitions_low=summary.repetitions.low,
        repetitions_high=summary.repetitions.high, valid=summary.validity.valid,
        validity_reasons=summary.validity.reasons, busy=bool(summary.noise and summary.noise.busy),
        noise_reasons=tuple(summary.noise.reasons) if summary.noise else (), padded_share=summary.padded_share,
        real_images_per_second=summary.real_images_per_second or summary.throughput * len(names) / max(
            summary.num_batches * summary.batch_size, 1),
        p99_samples=summary.compute.count, nonfinite=summary.nonfinite.images, **_devices(summary, args))
    return row, records.SeedAccuracy(len(names), args.num_classes, acc)


def _devices(summary: records.InferSummary, args: params.EvalParams) -> dict[str, Any]:
    """The report row's device-count and per-card fields (``jobs.results.per_card``): chips per card from what
    npu-smi listed at run time, else the target's card, else its accelerator."""
    d = summary.devices
    count = d.count if d is not None else 1
    recorded = d.chips_per_card if d is not None else (summary.backend_info.get("device_info") or {}).get(
        "chips_on_card")
    out: dict[str, Any] = {"devices": count}
    if d is not None:
        out.update(wall_images_per_second=d.wall_images_per_second, started_together=d.started_together)
    chips = per_card.chips_per_card((args.accelerators or {}).get(summary.target), (args.cards or {}).get(
        summary.target), recorded)
    if chips is not None:
        pc = per_card.per_card(summary.throughput, count, *chips, d.whole_cards() if d is not None else None)
        out.update(per_card_throughput=pc.throughput, per_card_basis=pc.basis, per_card_chips=pc.chips,
                   per_card_chips_from=pc.chips_from)
    return out


def _energy(power: records.PowerRecord | None) -> dict[str, float | str | None]:
    """The report row's energy fields from the summary's power record; empty when nothing was measured."""
    if power is None or power.joules_per_image is None:
        return {}
    return {"joules_per_image": power.joules_per_image, "images_per_joule": power.images_per_joule,
            "mean_watts": power.mean_watts, "power_method": f"{power.method} ({power.energy})"}


def _backend_library(summary: records.InferSummary) -> str:
    """The library that ran the model, with its version (``onnxruntime 1.32.0``, ``aclruntime ...``)."""
    info = summary.backend_info
    for lib in ("onnxruntime", "aclruntime"):
        if info.get(lib):
            return f"{lib} {info[lib]}"
    return summary.backend


def _provider(summary: records.InferSummary) -> str:
    """What actually ran the run: ONNX Runtime's first provider, the NPU, or the backend itself."""
    info = summary.backend_info
    if info.get("providers"):
        return str(info["providers"][0])
    if summary.backend == "acl":
        return f"NPU {info.get('physical_device_id', info.get('acl_device_id', '?'))}"
    return summary.backend


def left_out_of(dataset: shards.Dataset) -> records.LeftOut | None:
    """The images preprocessing left out (``--skip-bad``), summed over the shards' index.json by reason kind, and
    those the labels file names that the image folder lacks (``missing``: every shard counts the whole folder, so
    the first shard's), with the first few named; None when every image is in."""
    counts: dict[str, int] = {}
    examples: list[dict[str, str]] = []
    for ix in dataset.index:
        for kind, n in (ix.get("counts") or {}).items():
            if kind not in ("seen", "accepted") and n:
                counts[kind] = counts.get(kind, 0) + int(n)
        examples += [{"name": r["name"], "reason": r["reason"]} for r in ix.get("rejected") or ()]
    examples = examples[:records.LEFT_OUT_EXAMPLES]
    missing = dataset.index[0].get("missing") or {}  # absent from an index written before it was counted
    if missing.get("count"):
        counts["missing"] = int(missing["count"])
        examples += [{"name": n, "reason": "labelled, not in the image folder"}
                     for n in missing.get("names", ())[:records.LEFT_OUT_EXAMPLES]]
    if not counts:
        return None
    return records.LeftOut(counts=counts, examples=tuple(examples))


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def run(args: params.EvalParams, out: store_mod.Store) -> None:
    if args.reference_top1 is None or args.reference_top5 is None:  # a registered model's published figures
        info = models.get(args.model)
    reference = records.Reference(
        top1=info.published_top1 if args.reference_top1 is None else args.reference_top1,
        top5=info.published_top5 if args.reference_top5 is None else args.reference_top5,
        gate=args.gate, kind=args.reference_kind)
    dataset = shards.open_dataset(args.data)
    label_of = dict(zip(dataset.names, (int(v) for v in dataset.labels)))
    accelerators = dict(args.accelerators or {})
    left_out = left_out_of(dataset)
    refuse_missing = left_out is not None and left_out.missing > 0 and not args.allow_missing
    with commit.Output(out, "eval", args.to_dict(), args.upstream()) as output:
        runs = []
        for uri in args.runs:
            r, accuracy = evaluate_run(uri, label_of, args, reference)
            if refuse_missing:  # accuracy over part of the labelled set is not the reference's figure
                r = dataclasses.replace(r, gate_pass=False)
            target_dir = output.dir / "runs" / _safe(r.target) / f"bs{r.batch_size}"
            target_dir.mkdir(parents=True, exist_ok=True)
            (target_dir / records.ACCURACY).write_text(json.dumps(accuracy.to_dict(), indent=1) + "\n")
            runs.append(r)
            log.info("eval: %s bs%d top-1 %.2f%% top-5 %.2f%% %s", r.target, r.batch_size,
                     r.accuracy["1"], r.accuracy.get("5", 0.0), "pass" if r.gate_pass else "FAIL")
        target_order = list(dict.fromkeys(r.target for r in runs))  # as the runs were given
        runs.sort(key=lambda r: (target_order.index(r.target), r.batch_size))
        tables.parse_ratios(args.ratios, target_order)
        unknown = sorted(set(accelerators) - set(target_order))
        if unknown:
            raise errors.BadInput(f"--accelerator {unknown[0]}=...: no run has target {unknown[0]!r} "
                                  f"(targets: {', '.join(target_order)})")
        unknown = sorted(set(args.cards or {}) - set(target_order))
        if unknown:
            raise errors.BadInput(f"--on-card {unknown[0]}=...: no run has target {unknown[0]!r} "
                                  f"(targets: {', '.join(target_order)})")
        if left_out is not None:
            log.warning("eval: %s", tables.left_out_line(left_out))
        if refuse_missing and left_out is not None:
            log.warning("eval: every run fails the accuracy gate: %d labelled image(s) are missing from the dataset "
                        "(--allow-missing, the sweep's dataset.allow_missing, if that is intended)", left_out.missing)
        prices = {t: records.Price(amount, currency) for t, (amount, currency) in args.price_of().items()}
        unknown = sorted(set(prices) - set(target_order))
        if unknown:
            raise errors.BadInput(f"--price {unknown[0]}=...: no run has target {unknown[0]!r} "
                                  f"(targets: {', '.join(target_order)})")
        report = records.Report(model=args.model, reference=reference, runs=tuple(runs), ratios=args.ratios,
                                accelerators=accelerators, left_out=left_out, allow_missing=args.allow_missing,
                                distinct_labels=len({int(v) for v in dataset.labels if v >= 0}),
                                latency_limit_ms=args.latency_limit_ms,
                                best=tables.best_batches(runs, args.latency_limit_ms, prices),
                                model_source=args.model_source)
        for b in report.best.values():
            log.info("eval: %s best batch size %d (%.1f images/s)%s", b.target, b.batch_size, b.throughput,
                     "" if b.latency_limit_ms is None else
                     f"; largest within p99 <= {b.latency_limit_ms:g} ms: {b.under_limit_batch_size or 'none'}")
        (output.dir / "report.json").write_text(report.to_json())
        (output.dir / "report.csv").write_text(tables.to_csv(report.runs))
        written, skipped = write_plots(report, output.dir)
        (output.dir / "report.md").write_text(tables.to_markdown(report, written, skipped))
        output.record.update({"all_pass": report.all_pass, "runs": len(runs), "plots": written})


def write_plots(report: records.Report, folder) -> tuple[list[str], str | None]:
    """The report's plots beside it (``jobs.results.plots``): (names written, None), or ([], why they were skipped),
    with one log line, when matplotlib is not installed: the reports are written all the same."""
    try:
        return plots.write_plots(report, folder), None
    except errors.MissingDependency:
        why = "matplotlib is not installed (the `plots` extra: pip install 'ghostbench[plots]')"
        log.warning("eval: plots skipped: %s", why)
        return [], why


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(params.EvalParams, run, argv)


if __name__ == "__main__":
    sys.exit(main())
