"""Run a planned sweep with a named executor and tell the user how it ended (shared by ``run`` and ``demo``)."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from controller import display, executors, runner
from controller import lease as lease_mod
from controller import plan as plan_mod
from controller import spec as spec_mod
from jobs import errors
from jobs import store as store_mod
from jobs.artifacts import records
from jobs.results import tables


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (``kill``, a pod's shutdown) raises KeyboardInterrupt, as Ctrl-C does, so the runner stops the
    steps and writes the status before the controller exits (main thread only: where signals are handled)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def execute(spec: spec_mod.SweepSpec, plan: plan_mod.Plan, store: store_mod.Store, executor_name: str,
            jobs_n: int, verify: bool = False, executor_options: dict[str, Any] | None = None) -> int:
    """Run what is not committed, holding the sweep's lease (``controller.lease``); the exit code: 0 done and
    every run passes the accuracy gate, 1 a step failed, 2 (``lease.SweepBusy``) another controller runs the
    sweep, ``errors.EXIT_GATE_FAILED`` (4) every step done but some run below the gate,
    ``errors.EXIT_STORE_UNAVAILABLE`` (7) every failed step failed because the store stayed unavailable.
    SIGTERM stops the sweep as Ctrl-C does: the steps are stopped and the status says interrupted."""
    executor_cls = executors.REGISTRY.load(executor_name)
    lease = lease_mod.Lease(store, plan.sweep, runner.sweep_dir(plan.sweep))
    took_over = lease.acquire()
    try:
        if took_over:
            print(took_over, file=sys.stderr)
        executor = executor_cls(store, max_parallel=jobs_n or None, **(executor_options or {}))
        try:
            executor.check(plan)
        except BaseException:
            executor.close()
            raise
        runner.write_sweep_files(spec, plan, store)
        progress = display.ProgressDisplay()
        try:
            with _sigterm_interrupts():
                result = runner.run(plan, store, executor, progress, verify=verify, check=lease.check)
        finally:
            progress.close()
            executor.close()
    finally:
        lease.release()
    where = f"{store.uri}/{runner.sweep_dir(plan.sweep)}"
    if not result.ok:
        print(f"sweep {plan.sweep}: FAILED: {len(result.failed())} step(s) failed, {len(result.blocked())} not run "
              "because of them", file=sys.stderr)
        for st in result.failed():
            print(f"  {st.title}: {st.reason}; log: {store.uri}/{st.log}", file=sys.stderr)
            for line in st.log_tail.splitlines()[-5:]:
                print(f"    | {line}", file=sys.stderr)
        if all(st.exit_code == errors.EXIT_STORE_UNAVAILABLE for st in result.failed()):
            print(f"sweep {plan.sweep}: the store was unavailable past its retry deadline; rerun once it is back "
                  "and the sweep resumes from what is committed", file=sys.stderr)
            return errors.EXIT_STORE_UNAVAILABLE
        return errors.EXIT_FAILURE
    print(f"sweep {plan.sweep}: {len(plan.steps)} steps done ({result.ran} run now) in "
          f"{result.seconds:.1f}s; results in {where}/", file=sys.stderr)
    report = records.Report.from_json(store.read_text(f"{runner.sweep_dir(plan.sweep)}/report.json"))
    if report.left_out is not None:
        print(f"sweep {plan.sweep}: {tables.left_out_line(report.left_out)}", file=sys.stderr)
        if report.missing_fails:
            print(f"sweep {plan.sweep}: the dataset lacks {report.left_out.missing} image(s) the labels file names: "
                  "every run fails the accuracy gate (dataset.allow_missing: true if a partial set is intended)",
                  file=sys.stderr)
    failing = report.failing()
    if failing:
        ref = report.reference
        print(f"sweep {plan.sweep}: ACCURACY GATE FAILED for {len(failing)} of {len(report.runs)} run(s) (more than "
              f"{ref.gate:g} point below top-1 {ref.top1:.2f} / top-5 {ref.top5:.2f}, non-finite logits, or labelled "
              "images missing):",
              file=sys.stderr)
        for r in failing:
            print(f"  {tables.failing_line(r, report.missing_fails)}", file=sys.stderr)
        return errors.EXIT_GATE_FAILED
    return errors.EXIT_OK
