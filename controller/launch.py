"""Run a planned sweep with a named executor and tell the user how it ended (shared by ``run`` and ``demo``)."""

from __future__ import annotations

import sys
from typing import Any

from controller import display, executors, runner
from controller import plan as plan_mod
from controller import spec as spec_mod
from jobs import errors, records
from jobs import store as store_mod


def execute(spec: spec_mod.SweepSpec, plan: plan_mod.Plan, store: store_mod.Store, executor_name: str,
            jobs_n: int, verify: bool = False, executor_options: dict[str, Any] | None = None) -> int:
    """Run what is not committed; the exit code: 0 done and every run passes the accuracy gate, 1 a step
    failed, ``errors.EXIT_GATE_FAILED`` (4) every step done but some run below the gate."""
    executor_cls = executors.REGISTRY.load(executor_name)
    executor = executor_cls(store, max_parallel=jobs_n or None, **(executor_options or {}))
    runner.write_sweep_files(spec, plan, store)
    progress = display.ProgressDisplay()
    try:
        result = runner.run(plan, store, executor, progress, verify=verify)
    finally:
        progress.close()
        executor.close()
    where = f"{store.uri}/{runner.sweep_dir(plan.sweep)}"
    if not result.ok:
        print(f"sweep {plan.sweep}: FAILED: {len(result.failed())} step(s) failed, {len(result.blocked())} not run "
              "because of them", file=sys.stderr)
        for st in result.failed():
            print(f"  {st.title}: {st.reason}; log: {store.uri}/{st.log}", file=sys.stderr)
            for line in st.log_tail.splitlines()[-5:]:
                print(f"    | {line}", file=sys.stderr)
        return errors.EXIT_FAILURE
    print(f"sweep {plan.sweep}: {len(plan.steps)} steps done ({result.ran} run now) in "
          f"{result.seconds:.1f}s; results in {where}/", file=sys.stderr)
    report = records.Report.from_json(store.read_text(f"{runner.sweep_dir(plan.sweep)}/report.json"))
    failing = [r for r in report.runs if not r.gate_pass]
    if failing:
        ref = report.reference
        print(f"sweep {plan.sweep}: ACCURACY GATE FAILED for {len(failing)} of {len(report.runs)} run(s) (more than "
              f"{ref.gate:g} point below top-1 {ref.top1:.2f} / top-5 {ref.top5:.2f}):", file=sys.stderr)
        for r in failing:
            print(f"  {r.target} bs{r.batch_size}: top-1 {r.accuracy['1']:.2f}%, top-5 {r.accuracy.get('5', 0.0):.2f}%",
                  file=sys.stderr)
        return errors.EXIT_GATE_FAILED
    return errors.EXIT_OK
