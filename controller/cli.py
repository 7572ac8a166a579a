"""The ``ghostbench`` command: plan and run sweeps, read their status and reports.

  ghostbench run SPEC         run a sweep (locally by default; --executor kubernetes for Jobs)
  ghostbench plan SPEC        print the steps and which are already done
  ghostbench status SWEEP     each step's state, from the store
  ghostbench report SWEEP     the sweep's report, from the store
  ghostbench compare A B      sweep B against sweep A (or `published`), run by run; exit 5 on a regression
  ghostbench demo             the whole pipeline on a generated image set, offline
  ghostbench stage NAME ...   run one stage exactly as a pod would
  ghostbench manifests SPEC   print the Kubernetes Jobs a sweep would submit (submits nothing)
  ghostbench cancel SWEEP     delete a sweep's Kubernetes Jobs

Progress and messages go to stderr; results (tables, JSON) to stdout.
Exit codes: 0 success, 1 a step or sweep failed, 2 bad input or usage, 3 a dependency is missing,
4 every step done but a run failed the accuracy gate, 5 `compare` found a regression, 6 `compare
--inconclusive fail` could not judge a pair.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import urllib.parse
from typing import Any

import jobs
from controller import executors, launch, runner
from controller import plan as plan_mod
from controller import spec as spec_mod
from jobs import errors, params
from jobs import store as store_mod
from jobs.artifacts import records
from jobs.results import compare, compare_view, tables


def _store_arg(p: argparse.ArgumentParser, what: str = "spec") -> None:
    """``--store``; its help for a command that takes a sweep file (``spec``), reads a sweep that ran
    (``sweep``) or writes the demo (``demo``)."""
    default = f"./{spec_mod.DEFAULT_STORE}"
    help_text = {
        "spec": f"store to use instead of the sweep file's `store` (default: the sweep file's, or {default})",
        "sweep": f"store the sweep ran in: a directory or s3://bucket/prefix (default: the sweep file's `store` "
                 f"when SWEEP is a file, else {default})",
        "demo": f"store the demo writes to: a directory or s3://bucket/prefix (default: {default})",
    }[what]
    p.add_argument("--store", metavar="URI", help=help_text)


COMPARE_ARG_HELP = ("a sweep: its id (in --store, or the default store), STORE:ID (a directory or "
                    "s3://bucket/prefix, then ':' and the id, e.g. s3://bucket/ghostbench:nightly), its sweep file "
                    "(YAML), or a report.json file")
SWEEP_ARG_HELP = ("the sweep: its id (its name), or its sweep file (YAML), whose `name` and `store` are then used")


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
    p.add_argument("sweep", help=SWEEP_ARG_HELP)
    _store_arg(p, "sweep")
    p.add_argument("--json", action="store_true", help="print the status document as JSON")

    p = sub.add_parser("report", help="print a sweep's report")
    p.add_argument("sweep", help=SWEEP_ARG_HELP)
    _store_arg(p, "sweep")
    p.add_argument("--format", choices=("md", "json", "csv"), default="md",
                   help="md: the tables to read (default); json: report.json; csv: one row per run")
    p.add_argument("--check-gate", action="store_true",
                   help=f"exit {errors.EXIT_GATE_FAILED} (naming the runs on stderr) when a run failed the accuracy "
                        "gate; the chart's `helm test` uses it")

    p = sub.add_parser("compare", help="compare sweep B with sweep A (or the published figures), run by run",
                       description="Pair the runs of two sweeps by model, target, batch size, precision and input "
                                   "mode, and judge B against A (docs/compare.md).")
    p.add_argument("a", metavar="A", help=COMPARE_ARG_HELP + "; or `published`: the seed guide's figures, per card")
    p.add_argument("b", metavar="B", help=COMPARE_ARG_HELP)
    _store_arg(p, "sweep")
    p.add_argument("--threshold", default="5%", metavar="SHARE",
                   help="change in throughput that counts, when it is also significant: 5%% or 0.05 (default: 5%%)")
    p.add_argument("--run-drift", default=None, metavar="SHARE",
                   help="how far a whole sweep's throughput shifts between runs of unchanged code in this "
                        "environment, from repeated runs (python -m benchmarks aa prints it): 3%% or 0.03; a shift "
                        "every pair shares is judged against it (default: as large as the pairs' own spread)")
    p.add_argument("--inconclusive", choices=compare.INCONCLUSIVE_POLICIES, default="pass",
                   help=f"a pair too noisy to judge: pass (exit 0, named on stderr; the default) or fail (exit "
                        f"{errors.EXIT_INCONCLUSIVE} when no pair regressed)")
    p.add_argument("--format", choices=tuple(compare_view.FORMATS), default="table",
                   help="table: aligned columns for the terminal (default); md: Markdown; json: the typed comparison")

    p = sub.add_parser("demo", help="run the whole pipeline offline on a generated image set")
    _store_arg(p, "demo")
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
    p.add_argument("--kubernetes-version", type=_kubernetes_version, default=None, metavar="MAJOR.MINOR",
                   help="the cluster's Kubernetes version, for what depends on it (per_index_backoff: auto); "
                        "default: the oldest supported, as the controller assumes when the server does not say")

    p = sub.add_parser("cancel", help="delete a sweep's Kubernetes Jobs and their pods")
    p.add_argument("sweep", help="the sweep: its id (its name), or its sweep file (YAML), whose `name` is used")
    _kubernetes_args(p)

    # Everything after NAME goes to the stage's own parser (`ghostbench stage NAME --help` is its help), so
    # this parser has no help of its own: `ghostbench stage [--help]` lists the stages (cmd_stage).
    p = sub.add_parser("stage", help="run one pipeline stage, as a pod would (ghostbench stage --help "
                                     "lists them)", add_help=False)
    p.add_argument("-h", "--help", action="store_true", dest="stage_help", help="list the stages")
    p.add_argument("name", nargs="?", metavar="NAME", help="the stage: " + ", ".join(params.STAGES))
    p.add_argument("args", nargs=argparse.REMAINDER, help="the stage's arguments (`ghostbench stage NAME --help`)")
    return parser


def _open_store(uri: str | None, spec: spec_mod.SweepSpec | None = None) -> store_mod.Store:
    return store_mod.open_store(uri or (spec.store if spec else spec_mod.DEFAULT_STORE))


def check_labels(spec: spec_mod.SweepSpec, remote: bool = True, source: str | None = None) -> None:
    """Read the sweep's labels file now (``BadInput`` naming its line): a 1-based or malformed file is refused
    before any step starts, not after the exports and conversions; the model's sources too
    (``models_spec.check_sources``: checksums, an imported graph, a factory), and targets that divide the images among
    more devices than the file labels. ``remote=False`` (``plan``, which needs no credentials) checks a local file
    only."""
    from controller import models_spec
    from jobs.data import labels

    models_spec.check_sources(spec, source or spec.name)  # the model's local files, its graph, its factory
    if not remote and urllib.parse.urlparse(spec.dataset.labels).scheme not in ("", "file"):
        return
    card = models_spec.card(spec.model)
    read = labels.read_labels(spec.dataset.labels, card.num_classes - card.label_offset, labels.classes_of(card))
    at_most = min(len(read.labels), spec.dataset.limit or len(read.labels))  # (images without a label are not run)
    for i, t in enumerate(spec.targets):
        if t.divide_input and len(t.devices) > at_most:
            raise errors.BadInput(f"{source or spec.name}: targets[{i}].devices: expected at most {at_most} devices "
                                  f"with divide_input (each infers its part of the images, at least one; the dataset "
                                  f"has at most {at_most}: {spec.dataset.labels}, dataset.limit), got {len(t.devices)}")


def cmd_run(args: argparse.Namespace) -> int:
    spec = spec_mod.load(args.spec)
    store = _open_store(args.store, spec)
    plan = plan_mod.make_plan(spec, store.uri)
    check_labels(spec, source=str(args.spec))
    options: dict[str, Any] = {}
    if args.executor == "kubernetes":
        from controller.kubernetes import settings as k8s_settings

        options = {"sweep": plan.sweep, "settings": k8s_settings.load_settings(args.settings, args.namespace)}
    elif args.namespace or args.settings:
        raise errors.BadInput("--namespace and --settings: only with --executor kubernetes")
    return launch.execute(spec, plan, store, args.executor, args.jobs, verify=args.verify,
                          executor_options=options)


def cmd_plan(args: argparse.Namespace) -> int:
    spec = spec_mod.load(args.spec)
    store = _open_store(args.store, spec)
    plan = plan_mod.make_plan(spec, store.uri)
    check_labels(spec, remote=False, source=str(args.spec))
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


def _is_sweep_file(arg: str) -> bool:
    """A SWEEP argument names a sweep file when it is an existing file or looks like a path (a '/' or a YAML
    suffix); anything else is a sweep id (one that cannot be an id is then reported as not found)."""
    return os.path.isfile(arg) or "/" in arg or arg.endswith((".yaml", ".yml"))


def _sweep(args: argparse.Namespace) -> tuple[str, store_mod.Store, str]:
    """(sweep id, its store, where that store came from) for a SWEEP argument: ``STORE:ID`` (e.g.
    ``s3://bucket/prefix:my-sweep``; ids never contain ':'), a sweep file (its name and store), or an id in
    --store or the default store."""
    arg = args.sweep
    store_part, sep, sweep_id = arg.rpartition(":")
    if sep and store_part and not os.path.isfile(arg) and spec_mod.is_sweep_name(sweep_id):
        return sweep_id, store_mod.open_store(store_part), f"from {arg}"
    if _is_sweep_file(arg):
        if not os.path.isfile(arg):
            raise errors.BadInput(f"{arg}: no such sweep file (expected a sweep id, STORE:ID such as "
                                  "s3://bucket/prefix:my-sweep, or a sweep file)")
        spec = spec_mod.load(arg)
        source = "--store" if args.store else f"the store of {arg}"
        return spec.name, _open_store(args.store, spec), source
    source = "--store" if args.store else (f"the default store, ./{spec_mod.DEFAULT_STORE} in the current directory; "
                                           "name the sweep file or give --store to read another")
    return arg, _open_store(args.store), source


def _not_found(sweep: str, store: store_mod.Store, source: str, what: str, name: str, hint: str = ""
               ) -> errors.BadInput:
    """Where the sweep's document was looked for: the store's URI and ``sweeps/<id>/`` below it."""
    return errors.BadInput(f"sweep {sweep!r}: no {what} at {store.uri}/{runner.sweep_dir(sweep)}/{name} ({source})"
                           f"{hint}")


def cmd_status(args: argparse.Namespace) -> int:
    sweep, store, source = _sweep(args)
    doc = runner.read_status(store, sweep)
    if doc is None:
        raise _not_found(sweep, store, source, "status", "status.json")
    from controller import lease

    gone = lease.holder_gone(store, runner.sweep_dir(sweep)) if doc.state == "running" else None
    if gone:  # a controller killed mid-sweep left "running" behind
        doc.state, doc.interrupted = "interrupted", f"{gone}; rerun the sweep to resume"
        for st in doc.steps.values():  # the steps it was running are not running any more
            if st.state in runner.ACTIVE:
                st.state, st.reason = "interrupted", "its controller is gone"
    code = 0 if doc.state in ("succeeded", "running") else 1  # exit codes: 0 running or done, 1 otherwise
    gate = ""
    report_name = f"{runner.sweep_dir(sweep)}/report.json"
    if doc.state == "succeeded" and store.exists(report_name):
        failing = records.Report.from_json(store.read_text(report_name)).failing()
        if failing:  # every step done, but the sweep's result is a failed accuracy gate: exit 4, as run did
            gate, code = f", accuracy gate FAILED for {len(failing)} run(s)", errors.EXIT_GATE_FAILED
    if args.json:
        print(json.dumps(doc.to_dict(), indent=1))
        return code
    print(f"sweep {doc.sweep}: {doc.state}{gate} (updated {doc.updated})" + (f": {doc.interrupted}" if gone else ""))
    for key, s in doc.steps.items():
        extra = f"  {s.seconds:.1f}s" if s.seconds is not None else ""
        reason = f"  ({s.reason})" if s.reason else ""
        waiting = f"  (waiting: {s.waiting})" if s.waiting and s.state in runner.ACTIVE else ""
        print(f"  {s.state:<11} {key}  {s.title}{extra}{reason}{waiting}")
    return code


def cmd_report(args: argparse.Namespace) -> int:
    sweep, store, source = _sweep(args)
    name = f"{runner.sweep_dir(sweep)}/report.{args.format}"
    if not store.exists(name):
        started = runner.read_status(store, sweep) is not None
        raise _not_found(sweep, store, source, "report", f"report.{args.format}",
                         "; the sweep has a status there but no report yet: has it finished?" if started else "")
    sys.stdout.write(store.read_text(name))
    if args.check_gate:
        report = records.Report.from_json(store.read_text(f"{runner.sweep_dir(sweep)}/report.json"))
        failing = report.failing()
        for r in failing:
            print(f"accuracy gate FAILED: {tables.failing_line(r, report.missing_fails)}", file=sys.stderr)
        if failing:
            return errors.EXIT_GATE_FAILED
    return 0


def _compare_report(arg: str, store_uri: str | None) -> tuple[str, records.Report]:
    """(where it was read, the report) for an argument of ``compare``: a report.json file, a sweep file,
    STORE:ID, or an id in --store (or the default store). BadInput naming where it looked when not found."""
    if os.path.isfile(arg) and arg.endswith(".json"):
        with open(arg, encoding="utf-8") as f:
            return os.path.abspath(arg), records.Report.from_json(f.read(), arg)
    store_part, sep, sweep = arg.rpartition(":")
    if sep and not os.path.isfile(arg) and (store_part == "" or not spec_mod.is_sweep_name(sweep)):
        raise errors.BadInput(f"{arg!r}: expected a sweep id, STORE:ID (e.g. s3://bucket/prefix:my-sweep or "
                              "./ghostbench-store:my-sweep), a sweep file or a report.json file")
    sweep, store, source = _sweep(argparse.Namespace(sweep=arg, store=store_uri))
    name = f"{runner.sweep_dir(sweep)}/report.json"
    if not store.exists(name):
        started = store.exists(f"{runner.sweep_dir(sweep)}/status.json")
        raise _not_found(sweep, store, source, "report", "report.json",
                         "; the sweep has a status there but no report yet: has it finished?" if started else "")
    return f"{store.uri}/{name}", records.Report.from_json(store.read_text(name), f"{store.uri}/{name}")


def cmd_compare(args: argparse.Namespace) -> int:
    threshold = compare.parse_threshold(args.threshold)
    drift = None if args.run_drift is None else compare.parse_threshold(args.run_drift, "--run-drift")
    if args.b == compare.PUBLISHED:
        raise errors.BadInput("B: `published` is only for A (ghostbench compare published B); a sweep named "
                              "published is STORE:published")
    if args.a == compare.PUBLISHED:
        if drift is not None:
            raise errors.BadInput("--run-drift: the published figures are one fixed figure per row, not a run that "
                                  "drifts; it is for two sweeps")
        b_label, b = _compare_report(args.b, args.store)
        result = compare.compare_published(b, threshold, b_label, args.inconclusive)
    else:
        a_label, a = _compare_report(args.a, args.store)
        b_label, b = _compare_report(args.b, args.store)
        result = compare.compare(a, b, threshold, a_label, b_label, args.inconclusive, drift)
    sys.stdout.write(compare_view.FORMATS[args.format](result))
    for p in result.regressions:
        what = [f"{p.ratio:.3f}x throughput" if p.verdict == "slower" else "",
                f"top-1 {p.top1_delta:+.2f} points" if p.accuracy_drop else "",
                f"non-finite logits in {p.b.nonfinite} images" if p.b.nonfinite else ""]
        print(f"regression: {p.key.label()}: {', '.join(w for w in what if w)}", file=sys.stderr)
    for p in result.undecided:
        print(f"inconclusive: {p.key.label()}: {p.evidence.why}", file=sys.stderr)
    if not result.pairs:
        print("compare: no run of B pairs with one of A (model, target, batch size, precision and input mode)",
              file=sys.stderr)
    return result.exit_code


def _kubernetes_version(text: str) -> tuple[int, int]:
    major, dot, minor = text.lstrip("v").partition(".")
    if not (dot and major.isdigit() and minor.split(".")[0].isdigit()):
        raise argparse.ArgumentTypeError(f"expected a version such as 1.33, got {text!r}")
    return int(major), int(minor.split(".")[0])


def cmd_manifests(args: argparse.Namespace) -> int:
    from controller.kubernetes import manifests
    from controller.kubernetes import settings as k8s_settings

    spec = spec_mod.load(args.spec)
    settings = k8s_settings.load_settings(args.settings, args.namespace)
    store = _open_store(args.store, spec)  # no I/O: only --pending reads it
    plan = plan_mod.make_plan(spec, store.uri)
    steps = list(plan.steps)
    if args.pending:
        done = runner.committed_keys(plan, store)
        steps = [s for s in steps if s.key not in done]
    objs = manifests.jobs_for(plan, settings, steps, manifests.per_index(settings, args.kubernetes_version))
    sys.stdout.write(manifests.dump(objs))
    print(f"{len(objs)} Job(s) for {len(steps)} step(s) of sweep {plan.sweep}; nothing submitted", file=sys.stderr)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from controller.kubernetes import api as k8s_api
    from controller.kubernetes import executor
    from controller.kubernetes import settings as k8s_settings

    sweep = spec_mod.load(args.sweep).name if _is_sweep_file(args.sweep) else args.sweep
    settings = k8s_settings.load_settings(args.settings, args.namespace)
    api = k8s_api.Api.connect(settings.namespace, settings.context, deadline_s=settings.api_deadline_seconds)
    try:
        deleted = executor.cancel(api, sweep)
    finally:
        api.close()
    for name in deleted:
        print(name)
    print(f"sweep {sweep}: deleted {len(deleted)} Job(s) and their pods in namespace {settings.namespace}",
          file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from controller import demo

    return demo.run(args)


def stage_list() -> str:
    """``ghostbench stage --help``: how to call a stage, and each stage with its one-line description."""
    width = max(len(name) for name in params.STAGES)
    lines = ["usage: ghostbench stage NAME [ARGS ...]   (the same as python -m jobs.stages.NAME ARGS ...)", "",
             "Run one pipeline stage exactly as a step of a sweep runs it. The stages, in pipeline order:", ""]
    lines += [f"  {name:<{width}}  {cls.description}" for name, cls in params.STAGES.items()]
    lines += ["", "ghostbench stage NAME --help lists a stage's arguments."]
    return "\n".join(lines) + "\n"


def cmd_stage(args: argparse.Namespace) -> int:
    if args.stage_help or args.name is None:
        if args.stage_help:
            sys.stdout.write(stage_list())
            return 0
        sys.stderr.write(stage_list() + "ghostbench stage: error: name a stage\n")
        return errors.EXIT_BAD_INPUT
    if args.name not in params.STAGES:
        sys.stderr.write(stage_list() + f"ghostbench stage: error: unknown stage {args.name!r}\n")
        return errors.EXIT_BAD_INPUT
    module = importlib.import_module(f"jobs.stages.{args.name}")
    return module.main(args.args)


COMMANDS: dict[str, Any] = {"run": cmd_run, "plan": cmd_plan, "status": cmd_status, "report": cmd_report,
                            "compare": cmd_compare, "demo": cmd_demo, "stage": cmd_stage, "manifests": cmd_manifests,
                            "cancel": cmd_cancel}


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
