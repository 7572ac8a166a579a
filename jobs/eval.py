"""Stage eval: predictions + labels -> accuracy.json per run, and the sweep's reports.

Writes ``runs/<target>/bs<N>/accuracy.json`` in the seed's format for every infer output, and
``report.json``, ``report.csv`` and ``report.md`` across them: throughput per batch size per
target with ratios between targets (``--ratio A/B``, default each target against the first), the
published figures with their basis (per card and per chip) and, for targets named with
``--accelerator``, the measurement beside them on the same basis; and accuracy against the
reference with the gate.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import re
import sys
from typing import Any

import numpy as np

from jobs import commit, errors, metrics, reports, shards, stage
from jobs import store as store_mod

log = logging.getLogger("ghostbench.eval")


def build_parser() -> argparse.ArgumentParser:
    p = stage.parser("eval", __doc__.splitlines()[0])
    p.add_argument("--run", action="append", required=True, metavar="URI",
                   help="committed output of an infer run (repeat for every run of the sweep)")
    p.add_argument("--data", required=True, metavar="URI",
                   help="committed output root of the preprocess stage (its index holds the labels)")
    p.add_argument("--model", default="ghostnet_1.0x", help="model name, for the published accuracy")
    p.add_argument("--reference-top1", type=float, help="reference top-1 %% (default: the model's published)")
    p.add_argument("--reference-top5", type=float, help="reference top-5 %% (default: the model's published)")
    p.add_argument("--reference-kind", choices=("imagenet", "agreement"), default="imagenet",
                   help="'agreement' when the labels are a reference model's own predictions")
    p.add_argument("--gate", type=float, default=1.0, help="points below the reference still passing (default: 1)")
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--ratio", action="append", default=[], metavar="A/B",
                   help="throughput ratio of target A to target B to tabulate (repeatable; default: each target "
                        "against the first), e.g. ascend310p/t4 as the seed's table")
    p.add_argument("--accelerator", action="append", default=[], metavar="TARGET=NAME",
                   help="the accelerator a target ran on (jobs.devices name, repeatable): its measured throughput "
                        "is set beside the published figures on the same basis (per card)")
    return p


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
        except (IndexError, ValueError):
            raise errors.BadInput(f"{source}:{lineno}: malformed predictions row") from None
    return names, np.array(tops, dtype=np.int64).reshape(len(tops), k)


def evaluate_run(uri: str, label_of: dict[str, int], args: argparse.Namespace) -> dict[str, Any]:
    run_store, manifest = commit.require_committed(uri, "--run")
    summary = json.loads(commit.read_verified(run_store, manifest, "summary.json"))
    names, tops = read_predictions(commit.read_verified(run_store, manifest, "predictions.csv").decode("utf-8"),
                                   f"{uri}/predictions.csv")
    missing = [n for n in names if label_of.get(n, -1) < 0]
    if missing:
        raise errors.BadInput(f"--run {uri}: {len(missing)} predicted images have no label in --data, "
                              f"first: {missing[0]}")
    labels = np.array([label_of[n] for n in names], dtype=np.int64)
    acc = metrics.topk_accuracy(tops, labels, 5)
    ref1, ref5 = args.reference_top1, args.reference_top5
    gate_pass = acc[1] >= ref1 - args.gate and acc.get(5, 0.0) >= ref5 - args.gate
    compute = summary["NPU_compute_time"]
    return {
        "run": uri,
        "target": summary["target"],
        "backend": summary["backend"],
        "device": summary["device"],
        "input_mode": summary.get("input_mode"),
        "batch_size": summary["batch_size"],
        "num_images": len(names),
        "throughput": summary["throughput"],
        "compute_mean_ms": compute["mean"],
        "compute_p99_ms": compute["percentile(99%)"],
        "end_to_end_images_per_second": summary["end_to_end"]["images_per_second"],
        "passes": summary["passes"],
        "accuracy": {str(k): round(v, 4) for k, v in acc.items()},
        "gate_pass": bool(gate_pass),
        "seed_accuracy": reports.seed_accuracy(len(names), args.num_classes, acc),
    }


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def run(args: argparse.Namespace, out: store_mod.Store) -> None:
    if args.reference_top1 is None or args.reference_top5 is None:
        from jobs import models

        info = models.get(args.model)
        args.reference_top1 = info.published_top1 if args.reference_top1 is None else args.reference_top1
        args.reference_top5 = info.published_top5 if args.reference_top5 is None else args.reference_top5
    dataset = shards.open_dataset(args.data)
    label_of = dict(zip(dataset.names, (int(v) for v in dataset.labels)))
    accelerators = reports.parse_accelerators(args.accelerator)
    params = {"runs": sorted(args.run), "data": args.data, "model": args.model, "gate": args.gate,
              "reference": [args.reference_top1, args.reference_top5, args.reference_kind]}
    if args.ratio or accelerators:
        params.update(ratios=args.ratio, accelerators=accelerators)
    with commit.Output(out, "eval", params) as output:
        runs = []
        for uri in args.run:
            r = evaluate_run(uri, label_of, args)
            target_dir = output.dir / "runs" / _safe(r["target"]) / f"bs{r['batch_size']}"
            target_dir.mkdir(parents=True, exist_ok=True)
            (target_dir / "accuracy.json").write_text(json.dumps(r.pop("seed_accuracy"), indent=1) + "\n")
            runs.append(r)
            log.info("eval: %s bs%d top-1 %.2f%% top-5 %.2f%% %s", r["target"], r["batch_size"],
                     r["accuracy"]["1"], r["accuracy"].get("5", 0.0), "pass" if r["gate_pass"] else "FAIL")
        target_order = list(dict.fromkeys(r["target"] for r in runs))  # as the runs were given
        runs.sort(key=lambda r: (target_order.index(r["target"]), r["batch_size"]))
        ratios = reports.parse_ratios(args.ratio, target_order)
        unknown = sorted(set(accelerators) - set(target_order))
        if unknown:
            raise errors.BadInput(f"--accelerator {unknown[0]}=...: no run has target {unknown[0]!r} "
                                  f"(targets: {', '.join(target_order)})")
        report = {
            "model": args.model,
            "reference": {"top1": args.reference_top1, "top5": args.reference_top5, "gate": args.gate,
                          "kind": args.reference_kind},
            "runs": runs,
            "all_pass": all(r["gate_pass"] for r in runs),
        }
        if ratios or accelerators:
            report["ratios"] = [f"{a}/{b}" for a, b in ratios]
            report["accelerators"] = accelerators
        (output.dir / "report.json").write_text(json.dumps(report, indent=1) + "\n")
        (output.dir / "report.csv").write_text(reports.to_csv(runs))
        (output.dir / "report.md").write_text(reports.to_markdown(report))
        output.record.update({"all_pass": report["all_pass"], "runs": len(runs)})


def main(argv=None) -> int:
    return stage.main("eval", build_parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())
