"""Runs each step as a Kubernetes Job (``controller.kubernetes.manifests``), through ``controller.kubernetes.api``.

- ``start`` creates the step's Job, or adopts the Job already there under the same name (a restarted
  controller never submits work twice). A finished Job whose output the store lacks (it failed, or
  ran before the store was cleaned) is deleted and created again. The preprocessing shards of one
  output root share one Indexed Job: the first shard creates it, the others join it.
- One thread watches the sweep's Jobs by label selector: a list, then a watch from the list's
  resourceVersion, resumed from the last version seen when the stream ends or breaks, and a new list
  when the server answers 410 Gone. A step ends when its Job has the ``Complete`` or ``Failed``
  condition, or, for a shard, when its index is in the Job's ``completedIndexes``; the runner then
  checks the store for the committed output.
- When a step ends, its pod's log is copied into the store next to its output (as the local executor
  keeps it); a failed step's outcome carries the Job's reason, the pod's exit code and the log's tail.
  A log that could not be kept (its pod was deleted first) is said so: console, status.json, the stored log.
- Jobs run at once are bounded per device class (``KubernetesSettings.max_running``).
- Stuck pods (``pods``) show in ``waiting()`` and fail their step after a timeout (the Job is deleted).
  A create that fails for one shard fails every shard of its Indexed Job: no other shard creates it.
- A 403 or credentials refused again end the sweep (exit 2); after a 403, ``stop`` deletes the Jobs
  this run created: they were started for nothing.
- ``stop`` (the sweep is interrupted) stops watching and leaves the Jobs running: a rerun adopts
  them. ``ghostbench cancel SWEEP`` deletes them.
"""

from __future__ import annotations

import collections
import dataclasses
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from controller import plan as plan_mod
from controller.executors import base
from controller.kubernetes import api as k8s_api
from controller.kubernetes import jobstatus, logs, manifests, pods
from controller.kubernetes import settings as k8s_settings
from jobs import errors
from jobs import store as store_mod

POD_CHECK_S = 30.0
"""How often the pods of the active Jobs are read (``KubernetesExecutor(pod_check_s=)``)."""

finished = jobstatus.finished
_uid, _name = jobstatus.uid, jobstatus.name


@dataclasses.dataclass
class _Tracked:
    """A Job this executor waits on, and the steps it stands for (index -> step; 0 for a plain Job)."""

    name: str
    uid: str
    indexed: bool
    steps: dict[int, plan_mod.Step]
    reported: set[int] = dataclasses.field(default_factory=set)
    selector: str = ""
    """Label selector of its pods (``pods.selector``)."""


@dataclasses.dataclass(frozen=True)
class _Ended:
    step: plan_mod.Step
    index: int
    job: str
    uid: str
    indexed: bool
    failure: str | None
    """None when the step's pod succeeded, else why the Job failed."""


class KubernetesExecutor(base.Executor):
    def __init__(self, store: store_mod.Store, max_parallel: int | None = None, *, sweep: str,
                 settings: k8s_settings.KubernetesSettings | None = None, api: k8s_api.Api | None = None,
                 sleep: Callable[[float], None] | None = None, clock: Callable[[], float] = time.monotonic,
                 notify: Callable[[str], None] | None = None, pod_check_s: float = POD_CHECK_S):
        """``max_parallel``: Jobs at once over all device classes (None: only the per-class limits).
        ``api``: default, a connection from the kubeconfig or the pod's service account, retrying until
        ``api_deadline_seconds`` with this ``sleep`` and ``clock``.
        ``sleep``/``clock``: for the watch's backoff, the API deadline and the pods' waiting times (tests
        pass fakes). ``pod_check_s``: how often the active Jobs' pods are read."""
        self.store = store
        self.sweep = sweep
        self.settings = settings or k8s_settings.KubernetesSettings()
        self.max_parallel = max_parallel
        self._stopping = threading.Event()
        self._sleep = sleep or self._stopping.wait
        self._clock = clock
        self._own_api = api is None
        self.api = api or k8s_api.Api.connect(self.settings.namespace, self.settings.context,
                                              deadline_s=self.settings.api_deadline_seconds, sleep=self._sleep,
                                              clock=clock)
        self._pod_check = pods.Checker(lambda selector: self.api.list_pods(selector, retry=False), clock,
                                       pod_check_s, self.settings.pod_start_timeout_seconds,
                                       self.settings.unschedulable_timeout_seconds)
        self._created: dict[str, str] = {}
        """Job name -> uid of the Jobs this run created (deleted after a 403: started for nothing)."""
        self._unsubmitted: dict[str, str] = {}
        """Job name -> why its creation failed: the other shards of that Indexed Job fail with it."""
        self._notify = notify or (lambda text: print(text, file=sys.stderr, flush=True))
        self._lock = threading.Lock()
        self._done: queue.Queue[tuple[plan_mod.Step, base.Outcome] | None] = queue.Queue()  # None: _fatal set
        self._tracked: dict[str, _Tracked] = {}
        self._seen: dict[str, dict[str, Any]] = {}
        """Job name -> the latest version the watch delivered (a Job may change before start() tracks it)."""
        self._deleted: set[str] = set()
        """UIDs of Jobs the watch saw deleted."""
        self._noted_paths: set[str] = set()
        self._per_index: bool | None = None
        """Whether shards' Indexed Jobs retry each index on its own (``manifests.per_index``); None: not asked yet."""
        self._suspended_since: dict[str, float] = {}
        """UID -> when this controller first saw the Job suspended (queued), in ``clock``'s time."""
        self._watcher: threading.Thread | None = None
        self._fatal: errors.BadInput | None = None
        """Set when the API server rejects the credentials or forbids a call (CredentialsRejected, Forbidden):
        wait() raises it."""
        self.stats: collections.Counter[str] = collections.Counter()
        """created, adopted, recreated, lists, watches, watch_errors, gone: for tests and diagnostics."""
        if store.local_path("sweeps") is not None:
            self._notify(f"note: the store {store.uri} is a local directory: pods see it only where it is "
                         "mounted at the same path; use an s3:// store on a cluster")

    # -- Executor interface --

    def _device_limit(self, device_class: str) -> int:
        return self.settings.max_running.get(device_class, self.settings.max_running_default)

    def check(self, plan: plan_mod.Plan) -> None:
        manifests.jobs_for(plan, self.settings)  # every Job builds, or the line that says why (SettingsError)

    def can_start(self, step: plan_mod.Step, running: list[plan_mod.Step]) -> bool:
        name = manifests.job_name(self.sweep, step)
        with self._lock:
            if name in self._tracked:
                return True  # a shard joining its Indexed Job: no new Job
        jobs = {manifests.job_name(self.sweep, s): manifests.device_class(s) for s in running}
        if self.max_parallel and len(jobs) >= self.max_parallel:
            return False
        cls = manifests.device_class(step)
        return sum(1 for c in jobs.values() if c == cls) < self._device_limit(cls)

    def start(self, step: plan_mod.Step) -> None:
        name = manifests.job_name(self.sweep, step)
        for path in set(manifests.local_inputs(step)) - self._noted_paths:  # (once each)
            self._noted_paths.add(path)
            self._notify(f"note: {step.title} reads {path}, a path on this machine: its pod sees it only where it "
                         "is mounted at the same path; give an s3:// or https:// URI on a cluster")
        index = manifests.shard_index(step)
        with self._lock:
            tracked = self._tracked.get(name)
            if tracked is not None:
                tracked.steps[index or 0] = step
                ended = self._evaluate(tracked, self._seen.get(name))
            unsubmitted = self._unsubmitted.get(name)
        if tracked is not None:
            self._finish(ended)
            return
        if unsubmitted is not None:  # another shard of this Indexed Job could not create it: neither may this one
            self._done.put((step, base.Outcome(None, unsubmitted)))
            return
        try:
            job = self._submit(name, step)
        except (k8s_api.ApiError, _Refused) as e:
            why = f"could not submit Job {name}: {e}" if isinstance(e, k8s_api.ApiError) else str(e)
            with self._lock:
                self._unsubmitted[name] = why
            self._done.put((step, base.Outcome(None, why)))
            return
        except (k8s_api.Forbidden, k8s_api.CredentialsRejected) as e:
            self._fatal = e
            raise
        with self._lock:
            tracked = _Tracked(name, _uid(job), index is not None, {index or 0: step}, selector=pods.selector(job))
            self._tracked[name] = tracked
            ended = self._evaluate(tracked, job)
            seen = self._seen.get(name)
            if seen is not None and _uid(seen) == tracked.uid:
                ended += self._evaluate(tracked, seen)
            else:  # (what the create or the adoption returned, until the watch delivers a newer version)
                self._seen[name] = job
            if tracked.uid in self._deleted:
                ended += self._fail_all(tracked, "the Job was deleted")
        self._ensure_watching()  # (its first list shows whatever happened to the Job meanwhile)
        self._finish(ended)

    def wait(self, timeout: float) -> list[tuple[plan_mod.Step, base.Outcome]]:
        try:
            self._check_pods()
        except (k8s_api.Forbidden, k8s_api.CredentialsRejected) as e:
            self._fatal = e
        ended = [] if self._fatal else [e for e in base.drain(self._done, timeout) if e is not None]  # type: ignore
        if self._fatal is not None:
            raise self._fatal  # retrying cannot help: the sweep ends (exit 2)
        return ended

    def waiting(self) -> dict[str, base.Waiting]:
        notes = dict(self._pod_check.waiting)
        notes.update(self._queued())
        return notes

    def _queued(self) -> dict[str, base.Waiting]:
        """Steps whose Job is suspended (Kueue holds it until its queue admits it): queued, not running. How
        long counts from when this controller first saw it suspended."""
        now = self._clock()
        notes: dict[str, base.Waiting] = {}
        with self._lock:
            for t in self._tracked.values():
                job = self._seen.get(t.name)
                if job is None or _uid(job) != t.uid or not jobstatus.suspended(job) or len(t.reported) == len(t.steps):
                    self._suspended_since.pop(t.uid, None)
                    continue
                since = self._suspended_since.setdefault(t.uid, now)
                why = jobstatus.why_suspended(job)
                line = f"{why}; {pods.duration(now - since)} so far; its deadline starts when it runs"
                notes.update({s.key: base.Waiting(why, line, queued=True)
                              for i, s in t.steps.items() if i not in t.reported})
        return notes

    def stop(self) -> None:
        """The sweep is interrupted: stop watching; the Jobs go on, and a rerun adopts them. After a 403 the
        Jobs this run created are deleted instead: nothing is left running that was started for nothing."""
        with self._lock:
            running = sorted(t.name for t in self._tracked.values() if len(t.reported) < len(t.steps))
        if isinstance(self._fatal, k8s_api.Forbidden):
            running = self._delete_created(running)
        self.close()
        if running:
            self._notify(f"{len(running)} Job(s) left running in namespace {self.settings.namespace} "
                         f"({', '.join(running[:3])}{' ...' if len(running) > 3 else ''}); rerun the sweep to "
                         f"adopt them, or delete them with: ghostbench cancel {self.sweep}")

    def close(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        self.api.interrupt_watches()
        if self._watcher is not None:
            self._watcher.join(timeout=k8s_api.REQUEST_TIMEOUT_S)
        if self._own_api:
            self.api.close()

    def _delete_created(self, running: list[str]) -> list[str]:
        """Delete the Jobs in ``running`` that this run created; the names left running."""
        deleted: list[str] = []
        try:
            for name in (n for n in running if n in self._created):
                self.api.delete_job(name, uid=self._created[name])
                deleted.append(name)
        except (k8s_api.ApiError, k8s_api.Forbidden, k8s_api.CredentialsRejected) as e:
            self._notify(f"could not delete the Jobs this run had created ({e})")
        if deleted:
            self._notify(f"deleted {len(deleted)} Job(s) this run had created, for nothing: {', '.join(deleted)}")
        return [n for n in running if n not in deleted]

    # -- submitting --

    def _submit(self, name: str, step: plan_mod.Step) -> dict[str, Any]:
        if self._per_index is None:
            self._per_index = manifests.per_index(self.settings, self._server_version())
        body = manifests.job(self.sweep, step, self.settings, self._per_index)
        try:
            return self._create(body)
        except k8s_api.Conflict:
            pass  # (also when a retried create had reached the server: adopted below)
        existing = self.api.get_job(name)
        if existing is None:  # deleted in between
            return self._create(body)
        labels = (existing.get("metadata") or {}).get("labels") or {}
        if labels.get(manifests.SWEEP_LABEL) != self.sweep:
            raise _Refused(f"a Job named {name} exists and is not this sweep's (label {manifests.SWEEP_LABEL}="
                           f"{labels.get(manifests.SWEEP_LABEL)!r}); delete it or rename the sweep")
        same = ((existing.get("metadata") or {}).get("annotations") or {}).get(manifests.SPEC_ANNOTATION) == \
            body["metadata"]["annotations"][manifests.SPEC_ANNOTATION]
        if not finished(existing) and same:
            self.stats["adopted"] += 1
            self._notify(f"adopted running Job {name}")
            return existing
        if not finished(existing):
            raise _Refused(f"a Job named {name} is running another command (older settings or store?); wait for "
                           f"it to end or delete it with: ghostbench cancel {self.sweep}")
        # Finished, yet the runner wants the step: its output is not in the store. Run it again.
        self.api.delete_job(name, uid=_uid(existing))
        job = self._create(body)
        self.stats["recreated"] += 1
        return job

    def _server_version(self) -> tuple[int, int] | None:
        """The API server's (major, minor), where a setting depends on it; None when it does not say."""
        if self.settings.per_index_backoff != "auto":
            return None
        try:
            return self.api.server_version()
        except k8s_api.ApiError as e:  # (a Forbidden or CredentialsRejected ends the sweep, as any call's)
            self._notify(f"note: the API server did not say its version ({e}); shards share one backoffLimit")
            return None

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        job = self.api.create_job(body)
        self.stats["created"] += 1
        with self._lock:
            self._created[_name(job)] = _uid(job)
        return job

    # -- tracking --

    def _evaluate(self, tracked: _Tracked, job: dict[str, Any] | None) -> list[_Ended]:
        """Steps of ``tracked`` that ``job`` shows ended and that were not reported yet (call with the lock). With
        ``backoffLimitPerIndex`` a shard whose index failed ends at once, while the other shards go on."""
        if job is None or _uid(job) != tracked.uid:
            return []
        conditions = jobstatus.conditions(job)
        completed = jobstatus.completed_indexes(job) if tracked.indexed else set()
        failed = jobstatus.failed_indexes(job) if tracked.indexed else set()
        failure = None
        if jobstatus.FAILED in conditions:
            c = conditions[jobstatus.FAILED]
            failure = f"Job {tracked.name} failed ({c.get('reason') or 'Failed'})" + (
                f": {c['message']}" if c.get("message") else "")
        ended = []
        for index, step in tracked.steps.items():
            if index in tracked.reported:
                continue
            if jobstatus.COMPLETE in conditions or index in completed:
                ended.append(_Ended(step, index, tracked.name, tracked.uid, tracked.indexed, None))
            elif index in failed:
                ended.append(_Ended(step, index, tracked.name, tracked.uid, tracked.indexed,
                                    f"Job {tracked.name}: index {index} failed (backoffLimitPerIndex)"))
            elif failure is not None:
                ended.append(_Ended(step, index, tracked.name, tracked.uid, tracked.indexed, failure))
            else:
                continue
            tracked.reported.add(index)
        return ended

    def _fail_all(self, tracked: _Tracked, why: str) -> list[_Ended]:
        ended = [_Ended(step, index, tracked.name, tracked.uid, tracked.indexed, f"Job {tracked.name}: {why}")
                 for index, step in tracked.steps.items() if index not in tracked.reported]
        tracked.reported.update(e.index for e in ended)
        return ended

    def _observe(self, kind: str, job: dict[str, Any]) -> None:
        name, uid = _name(job), _uid(job)
        with self._lock:
            if kind == "DELETED":
                self._deleted.add(uid)
                if _uid(self._seen.get(name) or {}) == uid:
                    del self._seen[name]
            else:
                self._seen[name] = job
            tracked = self._tracked.get(name)
            if tracked is None or tracked.uid != uid:
                return
            ended = self._fail_all(tracked, "the Job was deleted") if kind == "DELETED" \
                else self._evaluate(tracked, job)
        self._finish(ended)

    def _check_missing(self, listed: set[str]) -> None:
        """After a list: tracked Jobs that were not in it were deleted while nobody watched."""
        with self._lock:
            candidates = [t for t in self._tracked.values()
                          if t.name not in listed and len(t.reported) < len(t.steps)]
        for tracked in candidates:
            job = self.api.get_job(tracked.name, retry=False)  # (the watch's loop retries)
            if job is None or _uid(job) != tracked.uid:
                with self._lock:
                    ended = self._fail_all(tracked, "the Job was deleted")
                self._finish(ended)

    def _fail_everything(self, why: str) -> None:
        with self._lock:
            ended = [e for t in self._tracked.values() for e in self._fail_all(t, why)]
        self._finish(ended)

    # -- ends: logs and outcomes --

    def _pods(self, ended: _Ended, cache: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """The pods of the ended step's Job incarnation (and index), newest first."""
        if ended.uid not in cache:
            selector = f"{manifests.SWEEP_LABEL}={self.sweep},{manifests.STEP_LABEL}={manifests.job_key(ended.step)}"
            try:
                pods = self.api.list_pods(selector)
            except k8s_api.ApiError:
                pods = []
            cache[ended.uid] = [p for p in pods if any(
                o.get("uid") == ended.uid for o in (p.get("metadata") or {}).get("ownerReferences") or [])]
        pods = cache[ended.uid]
        if ended.indexed:
            pods = [p for p in pods if ((p.get("metadata") or {}).get("annotations") or {}).get(
                manifests.COMPLETION_INDEX_ANNOTATION) == str(ended.index)]
        return sorted(pods, key=lambda p: ((p.get("metadata") or {}).get("creationTimestamp") or "",
                                           (p.get("metadata") or {}).get("name") or ""), reverse=True)

    def _finish(self, ended: list[_Ended]) -> None:
        cache: dict[str, list[dict[str, Any]]] = {}
        for e in ended:
            found = self._pods(e, cache)
            phase = "Succeeded" if e.failure is None else "Failed"
            pod = next((p for p in found if (p.get("status") or {}).get("phase") == phase), None)
            log, missing = self._copy_log(e, pod)
            if e.failure is None:
                self._done.put((e.step, base.Outcome(0, log_missing=missing)))
                continue
            exit_code = jobstatus.exit_code(pod, manifests.CONTAINER) if pod is not None else None
            reason = e.failure + (f"; exit code {exit_code}" if exit_code is not None else "")
            tail = "\n".join(log.splitlines()[-self.settings.log_tail_lines:])
            self._done.put((e.step, base.Outcome(exit_code, reason, tail, log_missing=missing)))

    def _copy_log(self, ended: _Ended, pod: dict[str, Any] | None) -> tuple[str, str]:
        text, missing = logs.copy(self.api, self.store, ended.step.log, ended.job, pod, self.settings)
        if missing:
            self._notify(f"note: the log of {ended.step.title} could not be kept: {missing}")
        return text, missing

    # -- watching --

    def _ensure_watching(self) -> None:
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name=f"watch-{self.sweep}", daemon=True)
            self._watcher.start()

    def _watch(self) -> None:
        selector = manifests.selector(self.sweep)
        version = ""
        failures = 0
        failing_since: float | None = None
        while not self._stopping.is_set():
            try:
                if not version:
                    items, version = self.api.list_jobs(selector, retry=False)  # (this loop retries)
                    self.stats["lists"] += 1
                    for job in items:
                        self._observe("MODIFIED", job)
                    self._check_missing({_name(j) for j in items})
                self.stats["watches"] += 1
                for event in self.api.watch_jobs(selector, version, self.settings.watch_timeout_seconds):
                    failures, failing_since = 0, None
                    if event.type != "BOOKMARK":
                        self._observe(event.type, event.object)
                    version = event.resource_version or version
                failures, failing_since = 0, None
            except k8s_api.Gone:
                self.stats["gone"] += 1
                version = ""  # too old: list again
            except (k8s_api.CredentialsRejected, k8s_api.Forbidden) as e:  # answers: no retrying, the sweep ends
                self._fatal = e
                self._done.put(None)
                return
            except Exception as e:  # noqa: BLE001 - ApiError, or a bug: the watch must go on, or the sweep hangs
                if self._stopping.is_set():
                    break
                if not isinstance(e, k8s_api.ApiError):
                    self._notify(f"watch: unexpected {type(e).__name__}: {e}")
                self.stats["watch_errors"] += 1
                failures += 1
                now = self._clock()
                failing_since = now if failing_since is None else failing_since
                if now - failing_since >= self.settings.api_deadline_seconds:
                    self._fail_everything(f"no answer from the API server for {now - failing_since:.0f}s ({e}); the "
                                          "Job may still be running: rerun the sweep to adopt it")
                    failing_since = None
                retry_after = getattr(e, "retry_after", None)  # a 429's Retry-After, honoured
                self._sleep(retry_after if retry_after is not None else k8s_api.backoff(failures))


    # -- pods that do not run --

    def _check_pods(self) -> None:
        """Note the active Jobs' stuck pods (``waiting()``); fail the steps of a Job whose pod has been stuck
        past its timeout, and delete the Job (a rerun creates it again)."""
        with self._lock:
            active = [pods.Active(t, t.selector, t.indexed, {i: s.key for i, s in t.steps.items()
                                                            if i not in t.reported})
                      for t in self._tracked.values() if len(t.reported) < len(t.steps)]
        for tracked, s in self._pod_check.check(active):
            with self._lock:  # (reported first: the watch then takes the deletion for what it is)
                ended = self._fail_all(tracked, f"{s.failure()}; its Job is deleted; {s.fix()}")
            try:
                self.api.delete_job(tracked.name, uid=tracked.uid)
            except k8s_api.ApiError as e:
                self._notify(f"could not delete Job {tracked.name}: {e}")
            self._finish(ended)


class _Refused(Exception):
    """A Job under the step's name exists and cannot be adopted."""


def cancel(api: k8s_api.Api, sweep: str) -> list[str]:
    """Delete every Job of the sweep (their pods go with them); the names deleted."""
    jobs, _ = api.list_jobs(manifests.selector(sweep))
    deleted = []
    for job in jobs:
        if api.delete_job(_name(job), uid=_uid(job)):
            deleted.append(_name(job))
    return deleted
