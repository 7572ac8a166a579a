"""The ``ghostbench`` command: plan and run sweeps, read their status and reports.

  ghostbench run SPEC         run a sweep (locally by default; --executor kubernetes for Jobs)
  ghostbench plan SPEC        print the steps and which are already done
  ghostbench status SWEEP     each step's state, from the store
  ghostbench report SWEEP     the sweep's report, from the store
  ghostbench demo             the whole pipeline on a generated image set, offline
  ghostbench stage NAME ...   run one stage exactly as a pod would
  ghostbench manifests SPEC   print the Kubernetes Jobs a sweep would submit (submits nothing)
  ghostbench cancel SWEEP     delete a sweep's Kubernetes Jobs

Progress and messages go to stderr; results (tables, JSON) to stdout.
Exit codes: 0 success, 1 a step or sweep failed, 2 bad input or usage, 3 a dependency is missing,
4 every step done but a run failed the accuracy gate.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any

import jobs
from controller import executors, launch, runner
from controller import plan as plan_mod
from controller import spec as spec_mod
from jobs import errors, params, records
from jobs import store as store_mod


def _store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="URI",
                   help=f"store to use instead of the spec's (default: the spec's, or ./{spec_mod.DEFAULT_STORE})")


def _kubernetes_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--namespace", metavar="NS", help="namespace of the Jobs (default: the settings', else default)")
    p.add_argument("--settings", metavar="FILE",
                   help="Kubernetes settings (YAML: images, store ConfigMap and Secret, resources, limits; "
                        "see docs/kubernetes.md)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ghostbench", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--version", action="version", version=f"ghostbench {jobs.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run a sweep")
    p.add_argument("spec", help="sweep file (YAML)")
    _store_arg(p)
    p.add_argument("--executor", default="local", choices=executors.REGISTRY.names(), help="where steps run (default: local)")
    p.add_argument("--jobs", type=int, default=0, metavar="N",
                   help="steps at once for the local executor (default: the number of cores); with kubernetes, "
                        "Jobs at once over all device classes (default: only the settings' per-class limits)")
    _kubernetes_args(p)
    p.add_argument("--verify", action="store_true",
                   help="first check the sha256 of every committed output's files (reads them all) and rebuild "
                        "those that no longer match their manifest")

    p = sub.add_parser("plan", help="print a sweep's steps and which are already done")
    p.add_argument("spec", help="sweep file (YAML)")
    _store_arg(p)
    p.add_argument("--json", action="store_true", help="print the plan as JSON")

    p = sub.add_parser("status", help="print the state of a sweep's steps")
    p.add_argument("sweep", help="sweep id (its name)")
    _store_arg(p)
    p.add_argument("--json", action="store_true", help="print the status document as JSON")

    p = sub.add_parser("report", help="print a sweep's report")
    p.add_argument("sweep", help="sweep id (its name)")
    _store_arg(p)
    p.add_argument("--format", choices=("md", "json", "csv"), default="md",
                   help="md: the tables to read (default); json: report.json; csv: one row per run")
    p.add_argument("--check-gate", action="store_true",
                   help=f"exit {errors.EXIT_GATE_FAILED} (naming the runs on stderr) when a run failed the accuracy "
                        "gate; the chart's `helm test` uses it")

    p = sub.add_parser("demo", help="run the whole pipeline offline on a generated image set")
    _store_arg(p)
    p.add_argument("--images", type=int, default=48, metavar="N", help="images to generate (default: 48)")
    p.add_argument("--batch-sizes", default="1,4,8,16,32", help="comma-separated (default: 1,4,8,16,32)")
    p.add_argument("--offline", action="store_true", help="do not try the official weights' address")
    p.add_argument("--jobs", type=int, default=0, metavar="N", help="steps at once (default: the number of cores)")

    p = sub.add_parser("manifests", help="print the Kubernetes Jobs a sweep would submit (YAML); submits nothing")
    p.add_argument("spec", help="sweep file (YAML)")
    _store_arg(p)
    _kubernetes_args(p)
    p.add_argument("--pending", action="store_true",
                   help="only the Jobs of steps not committed in the store (reads the store)")

    p = sub.add_parser("cancel", help="delete a sweep's Kubernetes Jobs and their pods")
    p.add_argument("sweep", help="sweep id (its name)")
    _kubernetes_args(p)

    p = sub.add_parser("stage", help="run one pipeline stage, as a pod would", add_help=False)
    p.add_argument("name", choices=params.STAGES)
    p.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def _open_store(uri: str | None, spec: spec_mod.SweepSpec | None = None) -> store_mod.Store:
    return store_mod.open_store(uri or (spec.store if spec else spec_mod.DEFAULT_STORE))


def cmd_run(args: argparse.Namespace) -> int:
    spec = spec_mod.load(args.spec)
    store = _open_store(args.store, spec)
    plan = plan_mod.make_plan(spec, store.uri)
    options: dict[str, Any] = {}
    if args.executor == "kubernetes":
        from controller import manifests

        options = {"sweep": plan.sweep, "settings": manifests.load_settings(args.settings, args.namespace)}
    elif args.namespace or args.settings:
        raise errors.BadInput("--namespace and --settings: only with --executor kubernetes")
    return launch.execute(spec, plan, store, args.executor, args.jobs, verify=args.verify,
                          executor_options=options)


def cmd_plan(args: argparse.Namespace) -> int:
    spec = spec_mod.load(args.spec)
    store = _open_store(args.store, spec)
    plan = plan_mod.make_plan(spec, store.uri)
    done = runner.committed_keys(plan, store)
    if args.json:
        doc = plan.to_dict()
        for s in doc["steps"]:
            s["done"] = s["key"] in done
        print(json.dumps(doc, indent=1))
        return 0
    for s in plan.steps:
        print(f"{'done' if s.key in done else 'todo'}  {s.key}  {s.title}")
    print(f"{len(plan.steps)} steps, {len(done)} done, {len(plan.steps) - len(done)} to run; "
          f"store {store.uri}", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    store = _open_store(args.store)
    doc = runner.read_status(store, args.sweep)
    if doc is None:
        raise errors.BadInput(f"sweep {args.sweep!r}: no status in {store.uri}/{runner.sweep_dir(args.sweep)}/")
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0
    print(f"sweep {doc['sweep']}: {doc['state']} (updated {doc['updated']})")
    for key, s in doc["steps"].items():
        extra = f"  {s['seconds']:.1f}s" if s.get("seconds") is not None else ""
        reason = f"  ({s['reason']})" if s.get("reason") else ""
        print(f"  {s['state']:<8} {key}  {s['title']}{extra}{reason}")
    return 0 if doc["state"] in ("succeeded", "running") else 1


def cmd_report(args: argparse.Namespace) -> int:
    store = _open_store(args.store)
    name = f"{runner.sweep_dir(args.sweep)}/report.{args.format}"
    if not store.exists(name):
        raise errors.BadInput(f"sweep {args.sweep!r}: no report at {store.uri}/{name} (has the sweep finished?)")
    sys.stdout.write(store.read_text(name))
    if args.check_gate:
        report = records.Report.from_json(store.read_text(f"{runner.sweep_dir(args.sweep)}/report.json"))
        failing = [r for r in report.runs if not r.gate_pass]
        for r in failing:
            print(f"accuracy gate FAILED: {r.target} bs{r.batch_size}: top-1 {r.accuracy['1']:.2f}%", file=sys.stderr)
        if failing:
            return errors.EXIT_GATE_FAILED
    return 0


def cmd_manifests(args: argparse.Namespace) -> int:
    from controller import manifests

    spec = spec_mod.load(args.spec)
    settings = manifests.load_settings(args.settings, args.namespace)
    store = _open_store(args.store, spec)  # no I/O: only --pending reads it
    plan = plan_mod.make_plan(spec, store.uri)
    steps = list(plan.steps)
    if args.pending:
        done = runner.committed_keys(plan, store)
        steps = [s for s in steps if s.key not in done]
    objs = manifests.jobs_for(plan, settings, steps)
    sys.stdout.write(manifests.dump(objs))
    print(f"{len(objs)} Job(s) for {len(steps)} step(s) of sweep {plan.sweep}; nothing submitted", file=sys.stderr)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from controller import k8s_api, manifests
    from controller.executors import kubernetes

    settings = manifests.load_settings(args.settings, args.namespace)
    api = k8s_api.Api.connect(settings.namespace, settings.context)
    try:
        deleted = kubernetes.cancel(api, args.sweep)
    finally:
        api.close()
    for name in deleted:
        print(name)
    print(f"sweep {args.sweep}: deleted {len(deleted)} Job(s) and their pods in namespace {settings.namespace}",
          file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from controller import demo

    return demo.run(args)


def cmd_stage(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"jobs.stages.{args.name}")
    return module.main(args.args)


COMMANDS: dict[str, Any] = {"run": cmd_run, "plan": cmd_plan, "status": cmd_status, "report": cmd_report,
                            "demo": cmd_demo, "stage": cmd_stage, "manifests": cmd_manifests, "cancel": cmd_cancel}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except errors.GhostbenchError as e:
        print(f"ghostbench {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"ghostbench {args.command}: interrupted; rerun to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `ghostbench report X | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
