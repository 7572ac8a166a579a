"""Runs a plan with an executor: dependency order, failures contained, state kept in the store.

State lives in the store: a step is done exactly when its output is committed (and current: an output
whose upstream outputs were rebuilt since it was made is stale and is rebuilt too, ``check_outputs``), so
a controller killed at any moment resumes where it stopped. The sweep's folder (``sweeps/<id>/``) keeps
the resolved spec, the plan, each step's status and, at the end, the reports.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import pathlib
import posixpath
import tempfile
import time
from collections.abc import Callable
from typing import Any

import yaml

from controller import lease as lease_mod
from controller import plan as plan_mod
from controller import spec as spec_mod
from controller.executors import base
from jobs import store as store_mod
from jobs.artifacts import commit, records
from jobs.store import base as store_base

DONE, PENDING, RUNNING, FAILED, BLOCKED = "done", "pending", "running", "failed", "blocked"
QUEUED = "queued"
"""Started, but held in a queue (a Kubernetes Job that Kueue has not admitted yet): not running yet."""
ACTIVE = (RUNNING, QUEUED)
"""The states of a step the executor has started and not seen end."""
REPORT_FILES = records.REPORT_FILES + records.PLOT_FILES
"""What the sweep's folder gets from its eval output: the reports and their plots."""


def sweep_dir(sweep: str) -> str:
    return f"sweeps/{sweep}"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclasses.dataclass
class StepStatus:
    """One step's entry in ``status.json`` (``SweepStatus.steps``), rewritten whenever the step changes state.

    The store decides what is done (a committed, current output); this entry says what the controller saw."""

    state: str
    """``done``, ``pending``, ``queued`` (started, held in a queue), ``running``, ``failed`` or ``blocked`` (a
    dependency failed); ``ghostbench status``
    shows a ``running`` step of a sweep whose controller is gone as ``interrupted``."""
    title: str
    """Human label, e.g. ``infer ort-cpu bs8``."""
    stage: str
    """export, convert, preprocess, infer or eval."""
    out: str
    """The step's output, relative to the store root (``artifacts/<stage>/<key>``)."""
    log: str
    """Where its log is kept in the store (``<out>.log``)."""
    log_missing: str = ""
    """Why its log could not be kept there, in one line (e.g. the pod was deleted before it was read); empty
    when it was. Set whether the step succeeded or failed."""
    started: str | None = None
    """ISO 8601 UTC time the executor started it (None: not in this run)."""
    finished: str | None = None
    """ISO 8601 UTC time it ended."""
    seconds: float | None = None
    """Wall time from start to end (s)."""
    exit_code: int | None = None
    """The stage process's exit code (``jobs.errors``: 2 bad input, 3 a missing dependency, 1 other)."""
    reason: str = ""
    """Why it failed or is blocked, in one line (empty when done)."""
    log_tail: str = ""
    """The last lines of its log when it failed."""
    waiting: str = ""
    """Why a running step does not run yet, in one line (its pod cannot start its container, or the scheduler
    finds no node: the reason, the message, the pod, for how long so far); empty otherwise."""


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


def check_outputs(plan: plan_mod.Plan, store: store_mod.Store, uncommit: bool = False
                  ) -> tuple[set[str], list[str]]:
    """(keys of the steps that are done, titles of the committed steps that are stale, with why).

    A step is done when its output is committed and current: every step it depends on is done, and the
    upstream outputs it read are the ones there now (``commit.upstream_changed``: a rebuilt upstream output
    has a new manifest). So whatever is derived from an output that is rebuilt, or was rebuilt since, is
    rebuilt too, transitively. ``uncommit``: remove the stale outputs' manifests, so that their stages
    rebuild them rather than finding them committed."""
    done: set[str] = set()
    stale: list[str] = []
    fingerprints: dict[str, str] = {}
    steps = plan.by_key()
    for s in plan.steps:  # in dependency order
        out = store.child(s.out)
        manifest = commit.read_manifest(out)
        if manifest is None:
            continue
        redo = [steps[d].title for d in s.deps if d not in done]
        if redo:
            why = f"{redo[0]}{f' and {len(redo) - 1} more' if len(redo) > 1 else ''} to be built again"
        elif commit.upstream_changed(manifest, s.params.upstream(), fingerprints, store):
            why = "an output it was built from was rebuilt since"
        else:
            done.add(s.key)
            continue
        stale.append(f"{s.title} ({why})")
        if uncommit:
            commit.uncommit(out)
    return done, stale


def committed_keys(plan: plan_mod.Plan, store: store_mod.Store) -> set[str]:
    """Keys of the steps whose outputs are committed and current (``check_outputs``); reads only."""
    return check_outputs(plan, store)[0]


def clean_stale_tmp(plan: plan_mod.Plan, store: store_mod.Store) -> list[str]:
    """Remove the staging folders and temporary files that writers which died (a killed stage, a killed
    controller) left in the sweep's folders: each step's output (recursively), the folder holding it and
    its log, the sweep's folder, and this machine's temporary folder (where stages build outputs for an S3
    store). Only leftovers of writers that are gone are removed (``Store.clean_stale_tmp``: the writer's pid
    in the name no longer runs on this host, or nothing changed in them for a day), so the work of another
    sweep's steps in the same folders is left alone."""
    removed: list[str] = []
    seen: set[tuple[str, bool]] = set()
    places = [(s.out, True) for s in plan.steps] + [(posixpath.dirname(s.out), False) for s in plan.steps]
    for prefix, recursive in [*places, (sweep_dir(plan.sweep), False)]:
        if (prefix, recursive) in seen:
            continue
        seen.add((prefix, recursive))
        removed += store.clean_stale_tmp(prefix, recursive=recursive)
    removed += [str(p) for p in store_base.remove_stale_tmp(pathlib.Path(tempfile.gettempdir()), recursive=False)]
    return removed


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
    """The resolved ``spec.yaml`` (with the store the sweep really ran in, so it plans the same sweep again
    from anywhere) and ``plan.json``."""
    d = sweep_dir(plan.sweep)
    resolved = dataclasses.replace(spec, store=store.uri)
    store.write_text(f"{d}/spec.yaml", yaml.safe_dump(resolved.to_dict(), sort_keys=False))
    store.write_text(f"{d}/plan.json", json.dumps(plan.to_dict(), indent=1) + "\n")


@dataclasses.dataclass
class SweepStatus:
    """``status.json``: the sweep's state and each step's, rewritten on every change."""

    sweep: str
    state: str
    """running, succeeded, failed or interrupted."""
    updated: str
    """ISO 8601 UTC time of the last change."""
    counts: dict[str, int]
    """Steps per state."""
    steps: dict[str, StepStatus]
    """Step key -> its status, in plan order."""
    interrupted: str = ""
    """Why a sweep that says running is taken as interrupted (its controller is gone); empty otherwise."""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"sweep": self.sweep, "state": self.state, "updated": self.updated,
                             "counts": dict(self.counts),
                             "steps": {k: dataclasses.asdict(v) for k, v in self.steps.items()}}
        if self.interrupted:
            d["interrupted"] = self.interrupted
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepStatus:
        return cls(sweep=d["sweep"], state=d["state"], updated=d["updated"], counts=dict(d["counts"]),
                   steps={k: StepStatus(**v) for k, v in d["steps"].items()}, interrupted=d.get("interrupted", ""))


def write_status(plan: plan_mod.Plan, store: store_mod.Store, statuses: dict[str, StepStatus],
                 state: str) -> None:
    counts: dict[str, int] = {}
    for s in statuses.values():
        counts[s.state] = counts.get(s.state, 0) + 1
    doc = SweepStatus(sweep=plan.sweep, state=state, updated=_now(), counts=counts, steps=dict(statuses))
    store.write_text(f"{sweep_dir(plan.sweep)}/status.json", json.dumps(doc.to_dict(), indent=1) + "\n")


def read_status(store: store_mod.Store, sweep: str) -> SweepStatus | None:
    """The sweep's ``status.json``, or None when it has none."""
    name = f"{sweep_dir(sweep)}/status.json"
    return SweepStatus.from_dict(json.loads(store.read_text(name))) if store.exists(name) else None


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
        poll_s: float = 1.0, clock: Callable[[], float] = time.monotonic, verify: bool = False,
        check: Callable[[], None] = lambda: None) -> SweepResult:
    """Run what is not committed and current (``check_outputs``: stale outputs are uncommitted first, and
    the sweep's copied reports removed until the eval step is done again). ``verify``: first check the
    sha256 of every committed output and rebuild those whose files no longer match their manifest.
    ``check()`` is called on every turn of the loop; what it raises stops the sweep (a lost lease)."""
    t0 = clock()
    cleaned = clean_stale_tmp(plan, store)
    corrupted = uncommit_corrupted(plan, store) if verify else []
    done, stale = check_outputs(plan, store, uncommit=True)
    if any(s.stage == "eval" and s.key not in done for s in plan.steps):
        for name in REPORT_FILES:  # never a report that disagrees with the outputs it was made from
            store.delete(f"{sweep_dir(plan.sweep)}/{name}")
    statuses = {s.key: StepStatus(DONE if s.key in done else PENDING, s.title, s.stage, s.out, s.log)
                for s in plan.steps}
    steps = plan.by_key()
    running: dict[str, float] = {}
    shown: dict[str, str] = {}  # step key -> the waiting cause last printed
    ran = 0

    def changed(event: str) -> None:
        write_status(plan, store, statuses, "running" if running else "finished")
        on_change(statuses, event)

    checked = (f"; checksums verified, {len(corrupted)} corrupted output(s) to rebuild: {'; '.join(corrupted)}"
               if corrupted else "; checksums verified, all match")
    rebuilt = (f"; {len(stale)} output(s) to rebuild because what they were built from changed: "
               f"{'; '.join(stale[:3])}{' ...' if len(stale) > 3 else ''}") if stale else ""
    tidied = f"; removed {len(cleaned)} staging leftover(s) of writers that are gone" if cleaned else ""
    changed(f"{len(done)} of {len(plan.steps)} steps already committed" + (checked if verify else "") + rebuilt
            + tidied)
    try:
        while True:
            check()
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
            noted = _note_waiting(statuses, running, executor.waiting(), shown)
            if noted is not None:
                changed(noted)  # (a new cause: a progress line; else only status.json's times change)
            elif not ended:
                on_change(statuses, "")  # a tick: lets a progress display refresh
            for step, outcome in ended:
                st = statuses[step.key]
                st.waiting = ""
                st.finished, st.exit_code = _now(), outcome.exit_code
                st.log_missing = outcome.log_missing
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
    except BaseException as e:
        executor.stop()
        for k in running:
            statuses[k].state, statuses[k].reason = FAILED, "interrupted"
        if not isinstance(e, lease_mod.LeaseLost):  # the status is the new lease holder's to write now
            write_status(plan, store, statuses, "interrupted")
        raise
    result = SweepResult(plan.sweep, statuses, clock() - t0, ran)
    if result.ok:
        _publish_reports(plan, store)
    write_status(plan, store, statuses, "succeeded" if result.ok else "failed")
    return result


def _note_waiting(statuses: dict[str, StepStatus], running: dict[str, float], waiting: dict[str, base.Waiting],
                  shown: dict[str, str]) -> str | None:
    """Copy the executor's waiting notes into the running steps' statuses. Returns a progress line naming
    the causes that are new, "" when only the times changed (status.json is written again, no line), None
    when nothing changed."""
    new, touched = [], False
    for key in running:
        st, note = statuses[key], waiting.get(key)
        line = note.line if note else ""
        if line != st.waiting:
            st.waiting, touched = line, True
        state = QUEUED if note is not None and note.queued else RUNNING
        if state != st.state:
            st.state, touched = state, True
        why = note.why if note else ""
        if why != shown.get(key, ""):
            shown[key] = why
            if why:
                new.append(f"waiting {st.title}: {line}")
    return "; ".join(new) if new else ("" if touched else None)


def _publish_reports(plan: plan_mod.Plan, store: store_mod.Store) -> None:
    """Copy the eval step's reports and plots (every file of its output that is one: ``records.REPORT_FILES``,
    ``records.PLOT_FILES``) into the sweep's folder, where users look for them; report.md links the plots."""

    published = set(REPORT_FILES)
    evals = [s for s in plan.steps if s.stage == "eval"]
    for step in evals:
        out = store.child(step.out)
        manifest = commit.read_manifest(out)
        for name in [f["name"] for f in manifest["files"]] if manifest is not None else []:
            if name in published:
                store.write_bytes(f"{sweep_dir(plan.sweep)}/{name}", commit.read_verified(out, manifest, name))
