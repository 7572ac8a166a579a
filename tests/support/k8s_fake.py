"""A test double of the Kubernetes API server, spoken to over HTTP by the official ``kubernetes`` client.

It serves what the Kubernetes executor and ``ghostbench cancel`` call: Jobs create/get/list/watch/delete,
Pods list and pod logs (plus ConfigMaps and Secrets, which it keeps so that pods can use them). It
"runs" a Job the way the Job controller and a kubelet would, but locally: each pod is a process
running the container's command and arguments with the pod's environment (``env`` and ``envFrom``
resolved from the ConfigMaps and Secrets it holds, ``$(VAR)`` expanded, the downward API's completion
index), emptyDir mounts mapped to scratch directories. Job status follows: ``active``, ``succeeded``,
``failed``, ``completedIndexes`` for Indexed Jobs (one process per index, ``parallelism`` at once),
``backoffLimit`` retries, ``podFailurePolicy`` (FailJob on exit codes; the other pods are killed),
and the ``Complete``/``Failed`` conditions.

Watches are chunked streams of JSON events with resourceVersions. Tests can inject faults:
``drop_next_watch()`` cuts the next watch stream that is about to deliver an event (the client must
resume from its last resourceVersion), ``expire_next_watch()`` answers it with a 410 Gone error and
makes every older resourceVersion too old (the client must list again). ``hold(predicate)`` keeps the
pods of matching Jobs from starting until ``release(name)``, so a test can act while a Job is running.
Every request is recorded, and ``creates`` counts Jobs created per name.

Error answers: ``fault(code, ...)`` answers matching requests with a Status of that code (429 with a
``Retry-After`` header, 500, 503 ...) while a condition holds; ``deny(verb, resource)`` answers 403
Forbidden as the RBAC authorizer does for a Role without that verb (``Forbidden`` message naming the
user, ``service_account`` by default). Pods that never start: ``stall(predicate, waiting=(reason,
message))`` leaves the matching Jobs' pods Pending with that container waiting reason
(``ImagePullBackOff``, ``InvalidImageName`` ...), ``stall(predicate, unschedulable=message)`` leaves them
Pending with the condition ``PodScheduled`` False, reason ``Unschedulable`` and the scheduler's message,
until the Job is deleted. A Job gets ``spec.selector`` (``batch.kubernetes.io/controller-uid``) and its
pods the labels a real Job controller gives them.

Authentication: by default the fake asks for none. ``require_token(token)`` makes it accept only that
bearer token from then on (a rotation, or an expiry: every other token, and none, gets 401
Unauthorized, as a real server answers an expired token); streams already open go on, as on a real
server, which authenticates a request once. ``unauthorized`` counts the 401s. With ``tls=(cert, key)``
it serves HTTPS (for the client's in-cluster loader, which speaks only HTTPS).
"""

from __future__ import annotations

import base64
import collections
import contextlib
import datetime
import functools
import http.server
import itertools
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import yaml

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_EXPAND = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_FIELD_REF = re.compile(r"^metadata\.(annotations|labels)\['([^']+)'\]$")
NOT_RUN = -1  # exit code recorded for a pod that was killed


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def _matches(labels: dict[str, str], selector: str) -> bool:
    """Equality-based label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``, comma-joined."""
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = re.split(r"==?", term, maxsplit=1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _index_ranges(indexes: set[int]) -> str:
    """``{0, 1, 2, 5}`` -> ``"0-2,5"`` (the Job status format)."""
    parts = []
    for _, group in itertools.groupby(enumerate(sorted(indexes)), lambda p: p[1] - p[0]):
        run = [i for _, i in group]
        parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(parts)


class ApiFailure(Exception):
    def __init__(self, code: int, reason: str, message: str):
        super().__init__(message)
        self.status = _status(code, reason, message)


class FakeCluster:
    """The API server, the Job controller and the kubelets of a pretend cluster. Use as a context manager."""

    def __init__(self, workdir: str | os.PathLike, python: str = sys.executable, env: dict[str, str] | None = None,
                 tls: tuple[str | os.PathLike, str | os.PathLike] | None = None):
        """``tls``: a certificate (PEM, valid for 127.0.0.1) and its key: serve HTTPS."""
        self.workdir = str(workdir)
        self.python = python
        self.base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": self.workdir,
                         **(env or {})}
        self._cond = threading.Condition(threading.RLock())
        self.rv = 1000  # ("0" means "any version" to a watch; a real server never lists at 0)
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.config_maps: dict[tuple[str, str], dict[str, str]] = {}
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}
        self.events: list[tuple[int, str, str, dict[str, Any]]] = []
        """(resourceVersion, namespace, type, Job) for every change to a Job."""
        self.expired_below = 0
        self.creates: collections.Counter[str] = collections.Counter()
        self.conflicts: collections.Counter[str] = collections.Counter()
        self.deletes: collections.Counter[str] = collections.Counter()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.watch_versions: list[str] = []
        """The resourceVersion of every watch request, in order."""
        self.lists = 0
        self.dropped = 0
        self.expired = 0
        self.pod_env: dict[str, dict[str, str]] = {}
        """Pod name -> the environment its process got."""
        self.config_errors: list[str] = []
        self.tokens: set[str] | None = None
        """The bearer tokens accepted (None: no authentication, every request is served)."""
        self.unauthorized = 0
        """Requests answered 401 Unauthorized."""
        self.service_account = "system:serviceaccount:ghostbench-test:ghostbench"
        """The user named in 403 answers."""
        self.denied: set[tuple[str, str]] = set()
        """(verb, resource) the RBAC authorizer refuses, e.g. ("list", "jobs"), ("get", "pods/log")."""
        self.forbidden = 0
        """Requests answered 403 Forbidden."""
        self.faults: list[dict[str, Any]] = []
        self.faulted = 0
        """Requests answered by a fault."""
        self._stalls: list[tuple[Callable[[dict[str, Any]], bool], dict[str, Any]]] = []
        self._drop_next = 0
        self._expire_next = 0
        self._holds: list[Callable[[dict[str, Any]], bool]] = []
        self._held: set[str] = set()
        self._procs: dict[str, subprocess.Popen] = {}
        self._closing = False
        self._scratch = tempfile.mkdtemp(prefix="k8s-fake-")
        self._names = itertools.count()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="k8s-fake", daemon=True)
        self.version = (1, 30)
        """The Kubernetes version ``GET /version`` reports (1.30: before backoffLimitPerIndex is GA)."""
        self.kueue = False
        """Kueue installed: a Job created with the label ``kueue.x-k8s.io/queue-name`` is made suspended (its
        webhook) and stays so until ``admit(name)``."""

    # -- lifecycle --

    def __enter__(self):  # -> FakeCluster
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._held.clear()
            procs = list(self._procs.values())
            self._cond.notify_all()
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self._scratch, ignore_errors=True)

    def kubeconfig(self, path: str | os.PathLike, namespace: str = "default", user: dict[str, Any] | None = None,
                   user_name: str = "fake", context: str = "fake") -> pathlib.Path:
        """A kubeconfig file pointing at this server. ``user``: its user's entry, e.g. ``{"exec": {...}}`` or
        ``{"tokenFile": ...}`` (default: no credentials, which the fake asks for only after ``require_token``)."""
        doc = {"apiVersion": "v1", "kind": "Config", "current-context": context,
               "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
               "users": [{"name": user_name, "user": dict(user or {})}],
               "contexts": [{"name": context, "context": {"cluster": "fake", "user": user_name,
                                                          "namespace": namespace}}]}
        path = pathlib.Path(path)
        path.write_text(yaml.safe_dump(doc))
        return path

    # -- what tests set up and inspect --

    def add_config_map(self, namespace: str, name: str, data: dict[str, str]) -> None:
        with self._cond:
            self.config_maps[(namespace, name)] = dict(data)

    def add_secret(self, namespace: str, name: str, string_data: dict[str, str]) -> None:
        with self._cond:
            self.secrets[(namespace, name)] = dict(string_data)

    def hold(self, predicate: Callable[[dict[str, Any]], bool]) -> None:
        """Jobs created from now on that match stay without pods until ``release(name)``."""
        with self._cond:
            self._holds.append(predicate)

    def release(self, name: str) -> None:
        with self._cond:
            self._held.discard(name)
            self._cond.notify_all()

    def admit(self, name: str, namespace: str | None = None) -> None:
        """Resume a suspended Job, as Kueue does when its queue admits it (its start time is reset)."""
        with self._cond:
            job = next((j for (ns, n), j in self.jobs.items() if n == name and namespace in (None, ns)), None)
            assert job is not None and job["spec"].get("suspend"), f"{name} is not a suspended Job"
            job["spec"]["suspend"] = False
            job["status"]["conditions"] = [c for c in job["status"].get("conditions") or [] if c["type"] != "Suspended"]
            self._bump(job)
            self._record("MODIFIED", job["metadata"]["namespace"], job)
            self._held.discard(name)
            self._cond.notify_all()

    def require_token(self, *tokens: str) -> None:
        """From now on accept only these bearer tokens: the others (an old, rotated or expired one) get 401."""
        with self._cond:
            self.tokens = set(tokens)

    def authorized(self, header: str | None) -> bool:
        """Whether a request with this Authorization header is served (401 Unauthorized if not)."""
        with self._cond:
            if self.tokens is None:
                return True
            scheme, _, token = (header or "").partition(" ")
            if scheme.lower() == "bearer" and token.strip() in self.tokens:
                return True
            self.unauthorized += 1
            self._cond.notify_all()
            return False

    def deny(self, verb: str, resource: str) -> None:
        """The RBAC authorizer refuses ``verb`` (create, get, list, watch, delete) on ``resource`` (jobs, pods,
        pods/log) from now on: 403 Forbidden."""
        with self._cond:
            self.denied.add((verb, resource))

    def fault(self, code: int, method: str = "", path: str = "", when: Callable[[], bool] = lambda: True,
              times: int | None = None, retry_after: str | None = None, reason: str = "") -> None:
        """Answer requests whose method is ``method`` (any if empty) and whose path contains ``path`` with a
        Status of ``code`` while ``when()`` holds, at most ``times`` times (None: no limit); ``retry_after``:
        the ``Retry-After`` header."""
        with self._cond:
            self.faults.append({"code": code, "method": method, "path": path, "when": when, "times": times,
                                "retry_after": retry_after,
                                "reason": reason or {429: "TooManyRequests", 500: "InternalError",
                                                     503: "ServiceUnavailable"}.get(code, "Failure")})

    def _fault(self, method: str, path: str) -> dict[str, Any] | None:
        with self._cond:
            for f in self.faults:
                if f["method"] in ("", method) and f["path"] in path and f["times"] != 0 and f["when"]():
                    if f["times"] is not None:
                        f["times"] -= 1
                    self.faulted += 1
                    self._cond.notify_all()
                    return f
        return None

    def _denial(self, verb: str, resource: str, namespace: str) -> dict[str, Any] | None:
        """The 403 Status the RBAC authorizer answers, or None when the call is allowed."""
        with self._cond:
            if (verb, resource) not in self.denied:
                return None
            self.forbidden += 1
            self._cond.notify_all()
        group = "batch" if resource == "jobs" else ""
        kind = f"{resource}.{group}" if group else resource.split("/")[0]
        message = (f'{kind} is forbidden: User "{self.service_account}" cannot {verb} resource "{resource}" in API '
                   f'group "{group}" in the namespace "{namespace}"')
        return {**_status(403, "Forbidden", message), "details": {"group": group, "kind": resource.split("/")[0]}}

    def stall(self, predicate: Callable[[dict[str, Any]], bool], waiting: tuple[str, str] | None = None,
              unschedulable: str | None = None) -> None:
        """Pods of Jobs created from now on that match never start: their container waits with ``waiting``
        (reason, message), or the scheduler finds no node (``unschedulable``: its message)."""
        with self._cond:
            self._stalls.append((predicate, {"waiting": waiting, "unschedulable": unschedulable}))

    def drop_next_watch(self) -> None:
        """The next watch stream about to deliver an event is cut instead (the event stays to be delivered)."""
        with self._cond:
            self._drop_next += 1

    def expire_next_watch(self) -> None:
        """The next watch stream about to deliver an event gets 410 Gone; older versions stay too old."""
        with self._cond:
            self._expire_next += 1

    def wait_for(self, predicate: Callable[[FakeCluster], bool], timeout: float = 120.0) -> None:
        """Block until ``predicate(self)`` holds (checked on every change); the timeout only guards a hang."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self), timeout=timeout):
                raise AssertionError("the fake cluster never reached the awaited state")

    def job(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        with self._cond:
            for (ns, n), job in self.jobs.items():
                if n == name and namespace in (None, ns):
                    return json.loads(json.dumps(job))
        return None

    def job_names(self) -> list[str]:
        with self._cond:
            return [n for _, n in self.jobs]

    # -- the API: Jobs --

    def _bump(self, obj: dict[str, Any]) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)

    def _record(self, kind: str, namespace: str, job: dict[str, Any]) -> None:
        self.events.append((self.rv, namespace, kind, json.loads(json.dumps(job))))
        self._cond.notify_all()

    def create_job(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        meta = body.get("metadata") or {}
        name = meta.get("name", "")
        if not _DNS_LABEL.match(name) or len(name) > 63:
            raise ApiFailure(422, "Invalid", f"Job.batch {name!r} is invalid: metadata.name: not a DNS-1123 label")
        for key, value in {**(meta.get("labels") or {}),
                           **(((body.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
                               "labels", {})}.items():
            if len(value) > 63 or not _LABEL_VALUE.match(value):
                raise ApiFailure(422, "Invalid", f"Job.batch {name!r} is invalid: label {key}={value!r}")
        spec = body.get("spec") or {}
        pod_spec = (spec.get("template") or {}).get("spec") or {}
        if not pod_spec.get("containers"):
            raise ApiFailure(422, "Invalid", f"Job.batch {name!r} is invalid: spec.template.spec.containers: Required")
        if spec.get("podFailurePolicy") and pod_spec.get("restartPolicy") != "Never":
            raise ApiFailure(422, "Invalid", f"Job.batch {name!r} is invalid: podFailurePolicy needs restartPolicy Never")
        with self._cond:
            if (namespace, name) in self.jobs:
                self.conflicts[name] += 1
                self._cond.notify_all()
                raise ApiFailure(409, "AlreadyExists", f'jobs.batch "{name}" already exists')
            job = json.loads(json.dumps(body))
            job.setdefault("apiVersion", "batch/v1")
            job.setdefault("kind", "Job")
            job["metadata"].update(namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
            job["spec"].setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid":
                                                                job["metadata"]["uid"]}})
            job["status"] = {}
            if self.kueue and "kueue.x-k8s.io/queue-name" in job["metadata"].get("labels", {}):
                job["spec"]["suspend"] = True  # Kueue's webhook: held until the queue admits it
            if job["spec"].get("suspend"):  # the Job controller says so, and runs no pod
                job["status"]["conditions"] = [{"type": "Suspended", "status": "True", "reason": "JobSuspended",
                                                "message": "Job suspended", "lastTransitionTime": _now()}]
            self._bump(job)
            self.jobs[(namespace, name)] = job
            self.creates[name] += 1
            if any(p(job) for p in self._holds) or job["spec"].get("suspend"):
                self._held.add(name)
            self._record("ADDED", namespace, job)
            uid = job["metadata"]["uid"]
        threading.Thread(target=self._run_job, args=(namespace, name, uid), name=f"job-{name}", daemon=True).start()
        return job

    def get_job(self, namespace: str, name: str) -> dict[str, Any]:
        with self._cond:
            job = self.jobs.get((namespace, name))
            if job is None:
                raise ApiFailure(404, "NotFound", f'jobs.batch "{name}" not found')
            return json.loads(json.dumps(job))

    def list_jobs(self, namespace: str, selector: str) -> dict[str, Any]:
        with self._cond:
            self.lists += 1
            items = [json.loads(json.dumps(j)) for (ns, _), j in self.jobs.items()
                     if ns == namespace and _matches(j["metadata"].get("labels") or {}, selector)]
            return {"kind": "JobList", "apiVersion": "batch/v1", "metadata": {"resourceVersion": str(self.rv)},
                    "items": items}

    def delete_job(self, namespace: str, name: str, options: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            job = self.jobs.get((namespace, name))
            if job is None:
                raise ApiFailure(404, "NotFound", f'jobs.batch "{name}" not found')
            want = ((options or {}).get("preconditions") or {}).get("uid")
            if want and want != job["metadata"]["uid"]:
                raise ApiFailure(409, "Conflict", f"Precondition failed: UID in precondition: {want}, UID in object "
                                                  f"meta: {job['metadata']['uid']}")
            del self.jobs[(namespace, name)]
            self.deletes[name] += 1
            self._held.discard(name)
            job["metadata"]["deletionTimestamp"] = _now()
            self._bump(job)
            self._record("DELETED", namespace, job)
            orphan = (options or {}).get("propagationPolicy") == "Orphan"
            victims = [] if orphan else [k for k, p in self.pods.items() if k[0] == namespace and any(
                o.get("uid") == job["metadata"]["uid"] for o in p["metadata"].get("ownerReferences", []))]
            procs = [self._procs.get(k[1]) for k in victims]
            for k in victims:
                del self.pods[k]
        for proc in procs:
            if proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": "batch", "kind": "jobs", "uid": job["metadata"]["uid"]}}

    # -- the API: Pods --

    def list_pods(self, namespace: str, selector: str) -> dict[str, Any]:
        with self._cond:
            items = [json.loads(json.dumps(p)) for (ns, _), p in self.pods.items()
                     if ns == namespace and _matches(p["metadata"].get("labels") or {}, selector)]
            return {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": str(self.rv)},
                    "items": items}

    def pod_log(self, namespace: str, name: str, tail_lines: int | None, limit_bytes: int | None) -> bytes:
        with self._cond:
            if (namespace, name) not in self.pods:
                raise ApiFailure(404, "NotFound", f'pods "{name}" not found')
        path = pathlib.Path(self._scratch, name, "log")
        data = path.read_bytes() if path.exists() else b""
        if tail_lines is not None:
            data = b"".join(data.splitlines(keepends=True)[-tail_lines:]) if tail_lines else b""
        if limit_bytes is not None:
            data = data[:limit_bytes]
        return data

    # -- the Job controller and the kubelet --

    def _alive(self, namespace: str, name: str, uid: str) -> dict[str, Any] | None:
        job = self.jobs.get((namespace, name))
        return job if job is not None and job["metadata"]["uid"] == uid and not self._closing else None

    def _newer_than(self, position: int) -> bool:
        return self._closing or self.rv > position

    def _update(self, namespace: str, name: str, uid: str, patch: dict[str, Any]) -> bool:
        """Change the Job's status (None values remove a field), as the Job controller would."""
        with self._cond:
            job = self._alive(namespace, name, uid)
            if job is None:
                return False
            job["status"].update(patch)
            job["status"] = {k: v for k, v in job["status"].items() if v is not None}
            self._bump(job)
            self._record("MODIFIED", namespace, job)
            return True

    def _run_job(self, namespace: str, name: str, uid: str) -> None:
        with self._cond:
            self._cond.wait_for(lambda: name not in self._held or self._alive(namespace, name, uid) is None)
            job = self._alive(namespace, name, uid)
            if job is None:
                return
            spec = json.loads(json.dumps(job["spec"]))
        indexed = spec.get("completionMode") == "Indexed"
        completions = int(spec.get("completions") or 1)
        parallelism = int(spec.get("parallelism") or 1) if indexed else 1
        per_index = spec.get("backoffLimitPerIndex")  # (then backoffLimit defaults to no limit)
        backoff_limit = int(spec.get("backoffLimit", 6 if per_index is None else 2 ** 31 - 1))
        max_failed = spec.get("maxFailedIndexes")
        rules = (spec.get("podFailurePolicy") or {}).get("rules") or []
        todo = collections.deque(range(completions))
        running: dict[int, threading.Thread] = {}
        results: dict[int, int] = {}
        done: set[int] = set()
        failed_indexes: set[int] = set()
        index_failures: collections.Counter[int] = collections.Counter()
        failures = 0
        self._update(namespace, name, uid, {"startTime": _now(), "active": 0})
        outcome: tuple[str, str, str] | None = None
        while outcome is None:
            while todo and len(running) < parallelism:
                index = todo.popleft()
                thread = threading.Thread(target=self._run_pod, args=(namespace, name, uid, spec, index, indexed,
                                                                      results), daemon=True)
                running[index] = thread
                thread.start()
            self._update(namespace, name, uid, {"active": len(running)})
            with self._cond:
                self._cond.wait_for(lambda: any(i in results for i in running)
                                    or self._alive(namespace, name, uid) is None)
                if self._alive(namespace, name, uid) is None:
                    return
                finished = {i: results.pop(i) for i in list(running) if i in results}
            for index, code in finished.items():
                running.pop(index).join()
                if code == 0:
                    done.add(index)
                    self._update(namespace, name, uid, {
                        "succeeded": len(done), "completedIndexes": _index_ranges(done) if indexed else None})
                    continue
                failures += 1
                index_failures[index] += 1
                self._update(namespace, name, uid, {"failed": failures})
                rule = next((r for r in rules if r.get("action") in ("FailJob", "FailIndex") and code in
                             ((r.get("onExitCodes") or {}).get("values") or [])), None)
                if rule is not None and rule["action"] == "FailJob":
                    message = (f"Container stage for pod {namespace}/{name}-{index} failed with exit code {code} "
                               "matching FailJob rule at index 0")
                    outcome = ("Failed", "PodFailurePolicy", message)
                    break
                if per_index is not None and (rule is not None or index_failures[index] > int(per_index)):
                    failed_indexes.add(index)  # this index is over; the others go on
                    self._update(namespace, name, uid, {"failedIndexes": _index_ranges(failed_indexes)})
                    if max_failed is not None and len(failed_indexes) > int(max_failed):
                        outcome = ("Failed", "MaxFailedIndexesExceeded", "Job has exceeded maxFailedIndexes")
                        break
                    continue
                if failures > backoff_limit:
                    outcome = ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
                    break
                todo.append(index)
            if outcome is None and len(done) == completions:
                outcome = ("Complete", "", "")
            elif outcome is None and len(done) + len(failed_indexes) == completions:
                outcome = ("Failed", "FailedIndexes", "Job has failed indexes")
        if outcome[0] == "Failed":  # the Job controller terminates the pods still running
            with self._cond:
                procs = [p for pod, p in self._procs.items() if pod.startswith(f"{name}-")]
            for proc in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            for thread in running.values():
                thread.join()
        kind, reason, message = outcome
        condition = {"type": kind, "status": "True", "lastProbeTime": _now(), "lastTransitionTime": _now()}
        if reason:
            condition.update(reason=reason, message=message)
        self._update(namespace, name, uid, {"active": 0, "completionTime": _now() if kind == "Complete" else None,
                                            "conditions": [condition]})

    def _resolve_env(self, namespace: str, pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for kind, store in (("configMapRef", self.config_maps), ("secretRef", self.secrets)):
                ref = source.get(kind)
                if ref is None:
                    continue
                data = store.get((namespace, ref["name"]))
                if data is None:
                    if ref.get("optional"):
                        continue
                    raise LookupError(f"{kind} {ref['name']} not found")
                env.update({prefix + k: v for k, v in data.items()})
        for var in container.get("env") or []:
            if "valueFrom" not in var:
                env[var["name"]] = self._expand(var.get("value", ""), env)
                continue
            source = var["valueFrom"]
            if "fieldRef" in source:
                path = source["fieldRef"]["fieldPath"]
                m = _FIELD_REF.match(path)
                if m:
                    env[var["name"]] = (pod["metadata"].get(m.group(1)) or {}).get(m.group(2), "")
                elif path in ("metadata.name", "metadata.namespace"):
                    env[var["name"]] = pod["metadata"][path.split(".")[1]]
                else:
                    raise LookupError(f"fieldRef {path} is not supported by the fake")
                continue
            for kind, store in (("secretKeyRef", self.secrets), ("configMapKeyRef", self.config_maps)):
                ref = source.get(kind)
                if ref is None:
                    continue
                value = (store.get((namespace, ref["name"])) or {}).get(ref["key"])
                if value is None and not ref.get("optional"):
                    raise LookupError(f"{kind} {ref['name']}/{ref['key']} not found")
                if value is not None:
                    env[var["name"]] = value
        return env

    @staticmethod
    def _expand(text: str, env: dict[str, str]) -> str:
        """Kubernetes' ``$(VAR)`` expansion: defined variables are replaced, ``$$`` escapes a ``$``."""
        def sub(m: re.Match) -> str:
            if m.group(0) == "$$":
                return "$"
            return env[m.group(1)] if m.group(1) in env else m.group(0)
        return _EXPAND.sub(sub, text)

    def _run_pod(self, namespace: str, job_name: str, uid: str, spec: dict[str, Any], index: int, indexed: bool,
                 results: dict[int, int]) -> None:
        template = spec["template"]
        pod_name = f"{job_name}-{index}-{next(self._names):05d}" if indexed else f"{job_name}-{next(self._names):05d}"
        labels = {**(template.get("metadata") or {}).get("labels", {}), "controller-uid": uid, "job-name": job_name,
                  "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": job_name}
        annotations = dict((template.get("metadata") or {}).get("annotations") or {})
        if indexed:
            labels["batch.kubernetes.io/job-completion-index"] = str(index)
            annotations["batch.kubernetes.io/job-completion-index"] = str(index)
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": pod_name, "namespace": namespace, "uid": str(uuid.uuid4()), "labels": labels,
                            "annotations": annotations, "creationTimestamp": _now(),
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job_name, "uid": uid,
                                                 "controller": True, "blockOwnerDeletion": True}]},
               "spec": json.loads(json.dumps(template["spec"])), "status": {"phase": "Pending"}}
        container = pod["spec"]["containers"][0]
        workdir = pathlib.Path(self._scratch, pod_name)
        workdir.mkdir(parents=True)
        with self._cond:
            if self._alive(namespace, job_name, uid) is None:
                results[index] = NOT_RUN
                self._cond.notify_all()
                return
            self.pods[(namespace, pod_name)] = pod
            stall = next((how for predicate, how in self._stalls if predicate(self.jobs[(namespace, job_name)])),
                         None)
            if stall is not None:  # Pending until the Job is deleted, as a real cluster leaves it
                if stall["unschedulable"] is not None:
                    pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                                                    "lastTransitionTime": _now(), "reason": "Unschedulable",
                                                    "message": stall["unschedulable"]}]
                else:
                    reason, message = stall["waiting"]
                    pod["status"].update(conditions=[
                        {"type": "PodScheduled", "status": "True", "lastTransitionTime": _now()},
                        {"type": "ContainersReady", "status": "False", "lastTransitionTime": _now(),
                         "reason": "ContainersNotReady", "message": "containers with unready status: [stage]"}],
                        containerStatuses=[{"name": container["name"], "image": container.get("image", ""),
                                            "imageID": "", "ready": False, "restartCount": 0, "started": False,
                                            "state": {"waiting": {"reason": reason, "message": message}}}])
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._alive(namespace, job_name, uid) is None)
                results[index] = NOT_RUN
                self._cond.notify_all()
                return
            try:
                env = self._resolve_env(namespace, pod, container)
            except LookupError as e:  # a kubelet would leave the pod waiting: CreateContainerConfigError
                self.config_errors.append(f"{pod_name}: {e}")
                pod["status"]["containerStatuses"] = [{"name": container["name"], "state": {"waiting": {
                    "reason": "CreateContainerConfigError", "message": str(e)}}}]
                self._cond.notify_all()
                return
        # emptyDir volumes become scratch directories; paths under their mount points are mapped there
        empty_dirs = {v["name"] for v in pod["spec"].get("volumes") or [] if "emptyDir" in v}
        mounts = {}
        for m in container.get("volumeMounts") or []:
            if m["name"] in empty_dirs:
                local = workdir / "volumes" / m["name"]
                local.mkdir(parents=True, exist_ok=True)
                mounts[m["mountPath"].rstrip("/")] = str(local)
        for key, value in env.items():
            for mount, local in mounts.items():
                if value == mount or value.startswith(mount + "/"):
                    env[key] = local + value[len(mount):]
        argv = [self._expand(a, env) for a in (container.get("command") or []) + (container.get("args") or [])]
        if argv and argv[0] in ("python", "python3"):
            argv[0] = self.python
        log = open(workdir / "log", "wb")  # noqa: SIM115 - closed when the process ends
        with self._cond:
            if self._alive(namespace, job_name, uid) is None:
                log.close()
                results[index] = NOT_RUN
                self._cond.notify_all()
                return
            proc = subprocess.Popen(argv, cwd=self.workdir, env={**self.base_env, **env}, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            self._procs[pod_name] = proc
            self.pod_env[pod_name] = dict(env)
            pod["status"].update(phase="Running", startTime=_now(), containerStatuses=[
                {"name": container["name"], "ready": True, "state": {"running": {"startedAt": _now()}}}])
            self._cond.notify_all()
        code = proc.wait()
        log.close()
        with self._cond:
            self._procs.pop(pod_name, None)
            pod["status"].update(phase="Succeeded" if code == 0 else "Failed", containerStatuses=[
                {"name": container["name"], "ready": False, "state": {"terminated": {
                    "exitCode": code if code >= 0 else 128 - code, "reason": "Completed" if code == 0 else "Error",
                    "finishedAt": _now()}}}])
            results[index] = code
            self._cond.notify_all()

    # -- watches --

    def watch(self, namespace: str, selector: str, version: str, write: Callable[[dict[str, Any]], None],
              drop: Callable[[], None], timeout: float | None) -> None:
        """Stream Job events after ``version`` until the timeout, the server's close, or an injected fault."""
        with self._cond:
            self.watch_versions.append(version)
            self._cond.notify_all()  # (wait_for may be waiting for a watch to begin)
            if version not in ("", "0") and int(version) < self.expired_below:
                self.expired += 1
                write({"type": "ERROR", "object": _status(410, "Expired", f"too old resource version: {version}")})
                return
            if version in ("", "0"):
                pending = [{"type": "ADDED", "object": json.loads(json.dumps(j))} for (ns, _), j in self.jobs.items()
                           if ns == namespace and _matches(j["metadata"].get("labels") or {}, selector)]
                position = self.rv
            else:
                pending, position = [], int(version)
        for event in pending:
            write(event)
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._cond:
                remaining = None if end is None else max(0.0, end - time.monotonic())
                if not self._cond.wait_for(functools.partial(self._newer_than, position), timeout=remaining) \
                        or self._closing:
                    return  # the request's timeout, or the server going away: a clean end of the stream
                batch = [(kind, job) for rv, ns, kind, job in self.events
                         if rv > position and ns == namespace and _matches(job["metadata"].get("labels") or {},
                                                                           selector)]
                if batch and self._drop_next:
                    self._drop_next -= 1
                    self.dropped += 1
                    drop()
                    return
                if batch and self._expire_next:
                    self._expire_next -= 1
                    self.expired += 1
                    self.expired_below = self.rv  # a list now gives a version that is not too old
                    write({"type": "ERROR", "object": _status(410, "Expired", "too old resource version")})
                    return
                position = self.rv
            for kind, job in batch:
                write({"type": kind, "object": job})


def _handler(cluster: FakeCluster) -> type[http.server.BaseHTTPRequestHandler]:
    routes = [  # (method, path, action, RBAC verb and resource)
        ("GET", re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs$"), "jobs", ("list", "jobs")),
        ("POST", re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs$"), "create_job", ("create", "jobs")),
        ("GET", re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs/([^/]+)$"), "get_job", ("get", "jobs")),
        ("DELETE", re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs/([^/]+)$"), "delete_job", ("delete", "jobs")),
        ("GET", re.compile(r"^/api/v1/namespaces/([^/]+)/pods$"), "list_pods", ("list", "pods")),
        ("GET", re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/log$"), "pod_log", ("get", "pods/log")),
        ("POST", re.compile(r"^/api/v1/namespaces/([^/]+)/(configmaps|secrets)$"), "create_config", None),
        ("GET", re.compile(r"^/version/?$"), "version", None),
    ]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length)) if length else {}

        def _send(self, code: int, payload: Any, content_type: str = "application/json",
                  headers: dict[str, str] | None = None) -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(code)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _dispatch(self, method: str) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
            cluster.requests.append((method, url.path, query))
            if not cluster.authorized(self.headers.get("Authorization")):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))  # keep the connection usable
                self._send(401, _status(401, "Unauthorized", "Unauthorized"))
                return
            for m, pattern, action, rbac in routes:
                match = pattern.match(url.path)
                if m == method and match:
                    fault = cluster._fault(method, url.path)
                    if fault is not None:
                        self.rfile.read(int(self.headers.get("Content-Length") or 0))
                        self._send(fault["code"], _status(fault["code"], fault["reason"], "injected by the test"),
                                   headers={"Retry-After": fault["retry_after"]} if fault["retry_after"] else None)
                        return
                    if rbac is not None:
                        verb = "watch" if action == "jobs" and query.get("watch", "").lower() in ("true", "1", "t") \
                            else rbac[0]
                        denial = cluster._denial(verb, rbac[1], match.group(1))
                        if denial is not None:
                            self.rfile.read(int(self.headers.get("Content-Length") or 0))
                            self._send(403, denial)
                            return
                    try:
                        getattr(self, action)(*match.groups(), query)
                    except ApiFailure as e:
                        self._send(e.status["code"], e.status)
                    return
            self._send(404, _status(404, "NotFound", f"the fake serves no {method} {url.path}"))

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_DELETE(self) -> None:
            self._dispatch("DELETE")

        # -- actions --

        def jobs(self, namespace: str, query: dict[str, str]) -> None:
            selector = query.get("labelSelector", "")
            if query.get("watch", "").lower() not in ("true", "1", "t"):  # Go's ParseBool; older clients send True
                self._send(200, cluster.list_jobs(namespace, selector))
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

            def write(event: dict[str, Any]) -> None:
                data = json.dumps(event).encode() + b"\n"
                self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def drop() -> None:  # cut the connection mid-stream, without the last chunk
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

            timeout = float(query["timeoutSeconds"]) if "timeoutSeconds" in query else None
            try:
                cluster.watch(namespace, selector, query.get("resourceVersion", ""), write, drop, timeout)
                if not self.close_connection:
                    self.wfile.write(b"0\r\n\r\n")
            except OSError:  # the client went away
                self.close_connection = True

        def create_job(self, namespace: str, query: dict[str, str]) -> None:
            self._send(201, cluster.create_job(namespace, self._body()))

        def version(self, query: dict[str, str]) -> None:
            major, minor = cluster.version
            self._send(200, {"major": str(major), "minor": str(minor), "gitVersion": f"v{major}.{minor}.0",
                             "platform": "linux/amd64"})

        def get_job(self, namespace: str, name: str, query: dict[str, str]) -> None:
            self._send(200, cluster.get_job(namespace, name))

        def delete_job(self, namespace: str, name: str, query: dict[str, str]) -> None:
            options = self._body()
            if "propagationPolicy" in query:
                options["propagationPolicy"] = query["propagationPolicy"]
            self._send(200, cluster.delete_job(namespace, name, options))

        def list_pods(self, namespace: str, query: dict[str, str]) -> None:
            self._send(200, cluster.list_pods(namespace, query.get("labelSelector", "")))

        def pod_log(self, namespace: str, name: str, query: dict[str, str]) -> None:
            tail = int(query["tailLines"]) if "tailLines" in query else None
            limit = int(query["limitBytes"]) if "limitBytes" in query else None
            self._send(200, cluster.pod_log(namespace, name, tail, limit), "text/plain")

        def create_config(self, namespace: str, kind: str, query: dict[str, str]) -> None:
            body = self._body()
            name = body["metadata"]["name"]
            if kind == "configmaps":
                cluster.add_config_map(namespace, name, body.get("data") or {})
            else:
                data = {k: base64.b64decode(v).decode() for k, v in (body.get("data") or {}).items()}
                cluster.add_secret(namespace, name, {**data, **(body.get("stringData") or {})})
            self._send(201, body)

    return Handler
