"""Runs a plan with an executor: dependency order, failures contained, state kept in the store.

State lives in the store: a step is done exactly when its output is committed, so a controller
killed at any moment resumes where it stopped. The sweep's folder (``sweeps/<id>/``) keeps the
resolved spec, the plan, each step's status and, at the end, the reports.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
from collections.abc import Callable
from typing import Any

import yaml

from controller import plan as plan_mod
from controller import spec as spec_mod
from controller.executors import base
from jobs import commit
from jobs import store as store_mod

DONE, PENDING, RUNNING, FAILED, BLOCKED = "done", "pending", "running", "failed", "blocked"
REPORT_FILES = ("report.md", "report.json", "report.csv")


def sweep_dir(sweep: str) -> str:
    return f"sweeps/{sweep}"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclasses.dataclass
class StepStatus:
    state: str
    title: str
    stage: str
    out: str
    log: str
    started: str | None = None
    finished: str | None = None
    seconds: float | None = None
    exit_code: int | None = None
    reason: str = ""
    log_tail: str = ""


@dataclasses.dataclass
class SweepResult:
    sweep: str
    statuses: dict[str, StepStatus]
    seconds: float
    ran: int
    """Steps executed in this run (not found committed)."""

    @property
    def ok(self) -> bool:
        return all(s.state == DONE for s in self.statuses.values())

    def failed(self) -> list[StepStatus]:
        return [s for s in self.statuses.values() if s.state == FAILED]

    def blocked(self) -> list[StepStatus]:
        return [s for s in self.statuses.values() if s.state == BLOCKED]


def committed_keys(plan: plan_mod.Plan, store: store_mod.Store) -> set[str]:
    return {s.key for s in plan.steps if commit.read_manifest(store.child(s.out)) is not None}


def uncommit_corrupted(plan: plan_mod.Plan, store: store_mod.Store) -> list[str]:
    """Check every committed output's files against its manifest's sha256 (reading every byte);
    uncommit the outputs that differ, so that their steps run again. Returns what was uncommitted."""
    found = []
    for s in plan.steps:
        out = store.child(s.out)
        manifest = commit.read_manifest(out)
        if manifest is None:
            continue
        bad = commit.corrupted_files(out, manifest)
        if bad:
            commit.uncommit(out)
            found.append(f"{s.title} ({', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''})")
    return found


def write_sweep_files(spec: spec_mod.SweepSpec, plan: plan_mod.Plan, store: store_mod.Store) -> None:
    d = sweep_dir(plan.sweep)
    store.write_text(f"{d}/spec.yaml", yaml.safe_dump(spec.to_dict(), sort_keys=False))
    store.write_text(f"{d}/plan.json", json.dumps(plan.to_dict(), indent=1) + "\n")


def write_status(plan: plan_mod.Plan, store: store_mod.Store, statuses: dict[str, StepStatus],
                 state: str) -> None:
    counts: dict[str, int] = {}
    for s in statuses.values():
        counts[s.state] = counts.get(s.state, 0) + 1
    doc = {"sweep": plan.sweep, "state": state, "updated": _now(), "counts": counts,
           "steps": {k: dataclasses.asdict(v) for k, v in statuses.items()}}
    store.write_text(f"{sweep_dir(plan.sweep)}/status.json", json.dumps(doc, indent=1) + "\n")


def read_status(store: store_mod.Store, sweep: str) -> dict[str, Any] | None:
    name = f"{sweep_dir(sweep)}/status.json"
    return json.loads(store.read_text(name)) if store.exists(name) else None


def _dependents(plan: plan_mod.Plan, key: str) -> set[str]:
    found: set[str] = set()
    frontier = {key}
    while frontier:
        nxt = {s.key for s in plan.steps if set(s.deps) & frontier} - found
        found |= nxt
        frontier = nxt
    return found


def run(plan: plan_mod.Plan, store: store_mod.Store, executor: base.Executor,
        on_change: Callable[[dict[str, StepStatus], str], None] = lambda statuses, event: None,
        poll_s: float = 1.0, clock: Callable[[], float] = time.monotonic, verify: bool = False) -> SweepResult:
    """Run what is not committed. ``verify``: first check the sha256 of every committed output and
    rebuild those whose files no longer match their manifest."""
    t0 = clock()
    corrupted = uncommit_corrupted(plan, store) if verify else []
    done = committed_keys(plan, store)
    statuses = {s.key: StepStatus(DONE if s.key in done else PENDING, s.title, s.stage, s.out, s.log)
                for s in plan.steps}
    steps = plan.by_key()
    running: dict[str, float] = {}
    ran = 0

    def changed(event: str) -> None:
        write_status(plan, store, statuses, "running" if running else "finished")
        on_change(statuses, event)

    checked = (f"; checksums verified, {len(corrupted)} corrupted output(s) to rebuild: {'; '.join(corrupted)}"
               if corrupted else "; checksums verified, all match")
    changed(f"{len(done)} of {len(plan.steps)} steps already committed" + (checked if verify else ""))
    try:
        while True:
            for step in plan.steps:
                st = statuses[step.key]
                if st.state != PENDING or not all(statuses[d].state == DONE for d in step.deps):
                    continue
                if not executor.can_start(step, [steps[k] for k in running]):
                    continue
                executor.start(step)
                running[step.key] = clock()
                st.state, st.started = RUNNING, _now()
                ran += 1
                changed(f"started {step.title}")
            if not running:
                break
            ended = executor.wait(poll_s)
            if not ended:
                on_change(statuses, "")  # a tick: lets a progress display refresh
            for step, outcome in ended:
                st = statuses[step.key]
                st.finished, st.exit_code = _now(), outcome.exit_code
                st.seconds = round(clock() - running.pop(step.key), 3)
                committed = commit.read_manifest(store.child(step.out)) is not None
                if outcome.exit_code == 0 and committed:
                    st.state = DONE
                    changed(f"finished {step.title} in {st.seconds:.1f}s")
                    continue
                st.state = FAILED
                st.reason = outcome.reason or "exited 0 but committed no output"
                st.log_tail = outcome.log_tail
                for k in _dependents(plan, step.key):
                    if statuses[k].state == PENDING:
                        statuses[k].state, statuses[k].reason = BLOCKED, f"needs {step.title}, which failed"
                changed(f"FAILED {step.title}: {st.reason}")
    except BaseException:
        executor.stop()
        for k in running:
            statuses[k].state, statuses[k].reason = FAILED, "interrupted"
        write_status(plan, store, statuses, "interrupted")
        raise
    result = SweepResult(plan.sweep, statuses, clock() - t0, ran)
    if result.ok:
        _publish_reports(plan, store)
    write_status(plan, store, statuses, "succeeded" if result.ok else "failed")
    return result


def _publish_reports(plan: plan_mod.Plan, store: store_mod.Store) -> None:
    """Copy the eval step's reports into the sweep's folder, where users look for them."""
    evals = [s for s in plan.steps if s.stage == "eval"]
    for step in evals:
        out = store.child(step.out)
        manifest = commit.read_manifest(out)
        for name in REPORT_FILES:
            if manifest is not None and any(f["name"] == name for f in manifest["files"]):
                store.write_bytes(f"{sweep_dir(plan.sweep)}/{name}", commit.read_verified(out, manifest, name))
