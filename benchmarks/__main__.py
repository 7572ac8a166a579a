"""Run ghostbench's benchmarks: ``python -m benchmarks [NAME ...] [--out results.json]``.

Each figure is measured side by side with its baseline in the same run, repeated; the table
shows medians and ranges. These are measurements, never tests: nothing here asserts a speed.
With more than one benchmark, each runs in a process of its own, so that none measures in what an
earlier one left behind (the preprocess figure read 0.78 after the feed benchmark in one process,
1.09 alone).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import subprocess
import sys
import time

from benchmarks import (
    aa,
    common,
    devices,
    engine,
    feed,
    gpu,
    harness,
    memory,
    orchestration,
    preprocessing,
    s3_throughput,
    storage,
)

# In the order of the pipeline; each module has run(work, repeats), render(res) and headlines(res).
BENCHMARKS = {"engine": engine, "harness": harness, "feed": feed, "preprocess": preprocessing, "bytes": storage,
              "orchestration": orchestration, "devices": devices, "memory": memory, "s3": s3_throughput, "aa": aa, "gpu": gpu}
# --quick: inputs small enough to check that a benchmark runs end to end (its numbers mean nothing).
QUICK = {"engine": {"images": 16}, "harness": {"images": 32, "simulated_images": 32}, "preprocess": {"images": 12}, "bytes": {"images": 6},
         "feed": {"images": 64, "batch_sizes": (8, 32)},
         "memory": {"sizes": (20, 60)}, "devices": {"images": 16, "counts": (1, 2)},
         "aa": {"seconds": 0.02, "repetitions": 3, "batch_sizes": (4, 8), "images": 8}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0].replace("``", "`"))
    p.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)")
    p.add_argument("--out", default="benchmark-results.json", help="raw numbers (JSON)")
    p.add_argument("--work", help="work folder, kept for the next run (default: a temporary folder, removed at the end)")
    p.add_argument("--repeats", type=int, default=None,
                   help="repetitions of each measurement (default: each benchmark's own, 3 or 5)")
    p.add_argument("--quick", action="store_true",
                   help="one repeat on tiny inputs: checks that the benchmarks run; the numbers mean nothing")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        p.error(f"{unknown[0]!r} is not a benchmark; expected one of {', '.join(BENCHMARKS)}")
    if args.quick:
        args.repeats = 1
    if args.repeats is not None and args.repeats < 1:
        p.error(f"--repeats {args.repeats}: must be at least 1")
    logging.basicConfig(level=logging.WARNING)
    with common.workdir(args.work) as work:
        return _run_all(args, work)


def _run_one(name: str, args: argparse.Namespace, work: common.pathlib.Path) -> dict:
    """One benchmark's results, run here (a single benchmark) or in a process of its own (several)."""
    if len(args.names or BENCHMARKS) == 1:
        with contextlib.redirect_stdout(sys.stderr):  # stage output is not the benchmark's
            kwargs = dict(QUICK.get(name, {})) if args.quick else {}
            if args.repeats is not None:
                kwargs["repeats"] = args.repeats
            return BENCHMARKS[name].run(work, **kwargs)
    out = work / f"results-{name}-{time.monotonic_ns()}.json"
    argv = [sys.executable, "-m", "benchmarks", name, "--work", str(work), "--out", str(out)]
    argv += ["--quick"] if args.quick else ([] if args.repeats is None else ["--repeats", str(args.repeats)])
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark {name} failed (exit {proc.returncode})")
    return json.loads(out.read_text())["results"][name]


def _run_all(args: argparse.Namespace, work: common.pathlib.Path) -> int:
    doc = {"machine": common.machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "results": {}}
    for name in args.names or list(BENCHMARKS):
        module = BENCHMARKS[name]
        print(f"== {name}: {module.__doc__.splitlines()[0]}", file=sys.stderr)
        t0 = time.perf_counter()
        res = _run_one(name, args, work)
        res["seconds"] = time.perf_counter() - t0
        doc["results"][name] = res
        print(f"\n{name} ({res['seconds']:.0f}s, {doc['machine']['cpu']}, {doc['machine']['cores']} cores)")
        print(module.render(res))
    rows = [[label, f"{s['median']:.3f}", f"{s['min']:.3f}-{s['max']:.3f}", str(len(s["values"]))]
            for name in doc["results"] for label, s in BENCHMARKS[name].headlines(doc["results"][name])]
    print(f"\nsummary (medians of same-run ratios; {doc['machine']['cpu']}, {doc['machine']['cores']} cores)")
    print(common.table(["figure", "median", "range", "n"], rows))
    common.write_results(common.pathlib.Path(args.out), doc)
    print(f"\nraw numbers: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
