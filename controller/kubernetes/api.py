"""The only module that talks to the Kubernetes API (through the official ``kubernetes`` client).

A thin, typed wrapper over the calls the Kubernetes executor and ``ghostbench cancel`` need: create,
get, list, watch and delete Jobs; list Pods; read a pod's log. Objects go in and come out as the plain
JSON the API server speaks (``dict``), so that callers need no client models and this wrapper works
the same across client versions. Configuration comes from a kubeconfig (``KUBECONFIG`` or
``~/.kube/config``, as kubectl reads it) or, inside a cluster, from the pod's service account.

Credentials that expire are loaded again: on a 401 Unauthorized the wrapper loads the configuration
afresh (an ``exec`` credential plugin runs again, a ``tokenFile`` or the service account's token file,
which the kubelet rotates, is read again) and repeats the call once. A second 401 raises
``CredentialsRejected``, a ``BadInput`` (exit code 2) and deliberately not an ``ApiError``: callers
that retry ApiErrors until a deadline must not retry credentials that the server keeps refusing.
A 403 Forbidden is an answer too: ``Forbidden`` (exit 2) names the verb, the resource and who asked.

Transient failures (429 Too Many Requests, 5xx, timeouts and broken connections) are retried with
backoff, honouring ``Retry-After``, until the server has given no other answer for ``deadline_s`` (the
settings' ``api_deadline_seconds``, as the executor's watch does); then the last ApiError is raised.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from jobs import errors

try:
    import kubernetes.client
    import kubernetes.config
    import urllib3.util.retry
    from kubernetes.client.exceptions import ApiException
except ImportError:  # pragma: no cover - exercised only without the extra
    kubernetes = None  # type: ignore[assignment]
    ApiException = Exception  # type: ignore[assignment,misc]

INSTALL_HINT = "pip install 'ghostbench[kubernetes]'"
CONNECT_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 60.0
DEADLINE_S = 600.0
"""Default of ``Api(deadline_s=)``: the settings' ``api_deadline_seconds``."""
MAX_BACKOFF_S = 30.0


def backoff(failures: int) -> float:
    """Seconds to wait after the ``failures``-th failure in a row: 0.5, 1, 2, ... at most MAX_BACKOFF_S."""
    return min(MAX_BACKOFF_S, 0.5 * 2 ** min(max(failures, 1) - 1, 8))


class ApiError(errors.GhostbenchError):
    """The API server refused a call or could not be reached."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        """Seconds the server asked to wait (``Retry-After``), if it said."""

    @property
    def transient(self) -> bool:
        """429, 5xx, or no HTTP answer at all (a timeout, a refused or broken connection): worth retrying."""
        return self.status is None or self.status == 429 or self.status >= 500


class CredentialsRejected(errors.BadInput):
    """401 Unauthorized, again after the credentials were loaded afresh: only the user can fix that.

    Not an ``ApiError`` on purpose: nothing that retries ApiErrors may swallow it; it ends the command."""

    status = 401


class Forbidden(errors.BadInput):
    """403 Forbidden: the server knows who asks, and their Role does not allow the call. Only a change to the
    RBAC rules can fix it, so nothing retries it: like ``CredentialsRejected``, not an ``ApiError``."""

    status = 403


_FORBIDDEN_RE = re.compile(r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]*)"'
                           r'(?: in API group "(?P<group>[^"]*)")?(?: in the namespace "(?P<ns>[^"]*)")?')


class NotFound(ApiError):
    """404: no such object."""


class Conflict(ApiError):
    """409: the object already exists (create), or a precondition did not hold (delete)."""


class Gone(ApiError):
    """410: the resourceVersion a watch asked for is too old; list again."""


@dataclasses.dataclass(frozen=True)
class WatchEvent:
    type: str
    """ADDED, MODIFIED, DELETED or BOOKMARK."""
    object: dict[str, Any]
    """The Job as the API server sent it (for BOOKMARK: only its metadata.resourceVersion)."""

    @property
    def resource_version(self) -> str:
        return str(self.object.get("metadata", {}).get("resourceVersion", ""))


def _require_client() -> None:
    if kubernetes is None:
        raise errors.MissingDependency(f"the kubernetes client is not installed; install it with: {INSTALL_HINT}")


def models() -> Any:
    """The client's models of the API objects (``kubernetes.client``: ``V1Affinity`` ...), None without the client."""
    return None if kubernetes is None else kubernetes.client


def _message(e: Exception) -> str:
    """The message of the Status the server answered with (else the HTTP reason)."""
    message = getattr(e, "reason", "") or ""
    body = getattr(e, "body", None)
    if body:
        try:
            message = json.loads(body).get("message") or message
        except (ValueError, AttributeError):
            pass
    return str(message)


def _retry_after(e: Exception) -> float | None:
    """``Retry-After`` (seconds or an HTTP date), parsed by urllib3's Retry, as the client's pool would."""
    value = (getattr(e, "headers", None) or {}).get("Retry-After")
    if value is None:
        return None
    try:
        return float(urllib3.util.retry.Retry().parse_retry_after(str(value)))
    except Exception:  # noqa: BLE001 - urllib3's InvalidHeader: a malformed header is ignored
        return None


def _error(e: Exception, what: str) -> ApiError:
    """One ApiError naming the call, from whatever the client raised."""
    status = getattr(e, "status", None)
    if isinstance(e, ApiException) and status:
        cls = {404: NotFound, 409: Conflict, 410: Gone}.get(status, ApiError)
        return cls(f"{what}: {status} {_message(e)}".rstrip(), status, _retry_after(e))
    return ApiError(f"{what}: {type(e).__name__}: {e}")


class Api:
    """Calls against one namespace. Thread-safe: the client's connection pool is shared, and a reload of
    the credentials (after a 401) replaces the client for every thread at once."""

    def __init__(self, api_client: Any, namespace: str, *, reload: Callable[[], Any] | None = None,
                 credentials: str = "no credentials", deadline_s: float = DEADLINE_S,
                 sleep: Callable[[float], Any] = time.sleep, clock: Callable[[], float] = time.monotonic):
        """``reload``: returns a freshly loaded ``Configuration`` (None: nothing to reload);
        ``credentials``: names them in messages (a kubeconfig's context and user, the service account);
        ``deadline_s``: how long transient failures of one call are retried; ``sleep``/``clock``: the
        backoff's (tests pass fakes; the executor passes its stop Event's wait(): when that returns True,
        the retries end with the last error)."""
        _require_client()
        self.namespace = namespace
        self.credentials = credentials
        self.deadline_s = deadline_s
        self.sleep = sleep
        self.clock = clock
        self.reloads = 0
        """How many times the credentials were loaded again after a 401 (for tests and diagnostics)."""
        self.retries = 0
        """Calls repeated after a transient failure (for tests and diagnostics)."""
        self._reload = reload
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._watches: set[Any] = set()
        self._retired: list[Any] = []
        """Clients replaced by a reload: a watch may still be reading from one; closed by close()."""
        self._generation = 0
        self._use(api_client)

    def _use(self, api_client: Any) -> None:
        clients = {"batch": kubernetes.client.BatchV1Api(api_client),
                   "core": kubernetes.client.CoreV1Api(api_client),
                   "version": kubernetes.client.VersionApi(api_client)}
        with self._lock:
            self.api_client = api_client
            self.host = api_client.configuration.host
            self._clients = clients
            self._generation += 1

    @classmethod
    def connect(cls, namespace: str, context: str = "", **options: Any) -> Api:
        """Inside a cluster: the pod's service account; elsewhere: the kubeconfig (``KUBECONFIG``, else
        ``~/.kube/config``) and its current context, or ``context``."""
        _require_client()
        in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not os.environ.get("KUBECONFIG")
        # KUBECONFIG read now (the client reads it once, when it is imported), and kept for reloads
        config_file = os.environ.get("KUBECONFIG") or None

        def load() -> Any:
            configuration = _configuration()
            if in_cluster:
                kubernetes.config.load_incluster_config(client_configuration=configuration)
            else:
                kubernetes.config.load_kube_config(config_file=config_file, context=context or None,
                                                   client_configuration=configuration)
            return configuration

        try:
            configuration = load()
        except kubernetes.config.ConfigException as e:
            where = "the pod's service account" if in_cluster else (config_file or "~/.kube/config")
            raise errors.BadInput(f"no Kubernetes configuration from {where}: {e} (set KUBECONFIG, or run the "
                                  "controller in the cluster)") from None
        except OSError as e:
            raise errors.BadInput(f"cannot read the Kubernetes configuration: {e}") from None
        credentials = _in_cluster_credentials() if in_cluster else _kubeconfig_credentials(config_file, context)
        return cls(kubernetes.client.ApiClient(configuration), namespace, reload=load, credentials=credentials,
                   **options)

    @classmethod
    def for_host(cls, host: str, namespace: str, **options: Any) -> Api:
        """An unauthenticated client for ``host`` (a test server, or ``kubectl proxy``); ``options``: as __init__."""
        _require_client()
        configuration = _configuration()
        configuration.host = host
        return cls(kubernetes.client.ApiClient(configuration), namespace,
                   credentials="no credentials (an unauthenticated client)", **options)

    def close(self) -> None:
        self.interrupt_watches()
        with self._lock:
            clients, self._retired = [*self._retired, self.api_client], []
        for api_client in clients:
            api_client.close()

    # -- helpers --

    @staticmethod
    def _json(response: Any) -> Any:
        try:
            return json.loads(response.data)
        finally:
            response.release_conn()

    def _call(self, what: str, group: str, method: str, *args: Any, retry: bool = True, **kwargs: Any) -> Any:
        """``method`` of the ``group`` API ("batch" or "core"), raw. Transient failures (``ApiError.transient``)
        are repeated after a backoff (or the server's ``Retry-After``) until ``deadline_s`` has passed since
        the first (``retry``: False for callers with their own loop, the watch). 403 raises Forbidden."""
        failing_since: float | None = None
        failures = 0
        while True:
            try:
                return self._call_once(what, group, method, *args, **kwargs)
            except ApiError as e:
                if not (retry and e.transient):
                    raise
                now = self.clock()
                failing_since = now if failing_since is None else failing_since
                waited = now - failing_since
                if waited >= self.deadline_s:
                    raise ApiError(f"{e} (no other answer for {waited:.0f}s, {failures + 1} tries)", e.status) from None
                failures += 1
                self.retries += 1
                delay = e.retry_after if e.retry_after is not None else backoff(failures)
                if self.sleep(max(0.0, min(delay, self.deadline_s - waited))) is True:
                    raise  # an Event's wait() that was set: the caller is closing, retry no more

    def _call_once(self, what: str, group: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """One call; on a 401 the credentials are loaded again and the call repeated once (a second 401
        raises CredentialsRejected)."""
        kwargs.setdefault("_request_timeout", (CONNECT_TIMEOUT_S, REQUEST_TIMEOUT_S))
        for attempt in (1, 2):
            with self._lock:
                generation, client = self._generation, self._clients[group]
            try:
                return getattr(client, method)(*args, _preload_content=False, **kwargs)
            except Exception as e:  # noqa: BLE001 - ApiException, urllib3 and socket errors alike
                if isinstance(e, ApiException) and getattr(e, "status", None) == 403:
                    raise self._forbidden(e, what) from None
                if not (isinstance(e, ApiException) and getattr(e, "status", None) == 401):
                    raise _error(e, what) from None
                if attempt == 2 or self._reload is None:
                    raise self._rejected(_error(e, what), reloaded=attempt == 2) from None
                self._renew(generation, what)
        raise AssertionError("unreachable")  # pragma: no cover

    def _renew(self, generation: int, what: str) -> None:
        """Load the credentials again, unless another thread did since ``generation`` was in use."""
        with self._reload_lock:
            with self._lock:
                if self._generation != generation:
                    return  # another call got its 401 first and reloaded: just repeat ours
            try:
                configuration = self._reload()  # type: ignore[misc]
            except Exception as e:  # noqa: BLE001 - ConfigException, OSError, a kubeconfig edited into nonsense
                raise CredentialsRejected(
                    f"the API server at {self.host} rejected the credentials of {self.credentials} ({what}: 401 "
                    f"Unauthorized), and loading them again failed: {e}; renew them (log in again) and rerun"
                ) from None
            old = self.api_client
            self._use(kubernetes.client.ApiClient(configuration))
            with self._lock:
                self._retired.append(old)
            self.reloads += 1

    def _rejected(self, error: ApiError, reloaded: bool) -> CredentialsRejected:
        """One line: whose credentials, that a reload did not help, the call, what to do."""
        why = ""
        if reloaded:
            configuration = self.api_client.configuration
            empty = not (configuration.api_key.get("BearerToken") or configuration.cert_file
                         or configuration.username)
            why = ", also after loading them again" + (
                " (which gave no token or certificate: did the exec plugin fail?)" if empty else "")
        return CredentialsRejected(f"the API server at {self.host} rejected the credentials of {self.credentials}"
                                   f"{why} ({error}); renew them (log in again) and rerun")

    def _forbidden(self, e: Exception, what: str) -> Forbidden:
        """One line: who may not do what, on which resource, and where to allow it."""
        message = _message(e)
        m = _FORBIDDEN_RE.search(message)
        if m is None:
            return Forbidden(f"the API server at {self.host} forbids {what} to {self.credentials} (403 Forbidden: "
                             f"{message}); allow it in the controller's Role (docs/kubernetes.md#rbac) and rerun")
        user, verb = m["user"], m["verb"]
        resource = m["resource"] + (f".{m['group']}" if m["group"] else "")
        parts = user.split(":")
        who = (f'service account "{parts[3]}" of namespace "{parts[2]}"'
               if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"] else f'user "{user}"')
        where = f' in namespace "{m["ns"]}"' if m["ns"] else ""
        return Forbidden(f"the API server at {self.host} forbids {who} to {verb} {resource}{where} (403 Forbidden, "
                         f"{what}); add the verb {verb!r} on {resource!r} to the Role bound to it "
                         "(docs/kubernetes.md#rbac) and rerun")

    # -- Jobs --

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        return self._json(self._call(f"create Job {name}", "batch", "create_namespaced_job", self.namespace, body))

    def get_job(self, name: str, retry: bool = True) -> dict[str, Any] | None:
        try:
            return self._json(self._call(f"get Job {name}", "batch", "read_namespaced_job", name, self.namespace,
                                         retry=retry))
        except NotFound:
            return None

    def list_jobs(self, label_selector: str, retry: bool = True) -> tuple[list[dict[str, Any]], str]:
        """The Jobs matching the selector, and the list's resourceVersion (to watch from)."""
        doc = self._json(self._call(f"list Jobs {label_selector}", "batch", "list_namespaced_job", self.namespace,
                                    label_selector=label_selector, retry=retry))
        return doc.get("items") or [], str(doc.get("metadata", {}).get("resourceVersion", ""))

    def watch_jobs(self, label_selector: str, resource_version: str, timeout_seconds: int) -> Iterator[WatchEvent]:
        """Changes to the matching Jobs after ``resource_version``, until the server ends the request
        (after about ``timeout_seconds``). Raises ``Gone`` when that version is too old (list again),
        and ApiError when the stream breaks (watch again from the last version seen)."""
        what = f"watch Jobs {label_selector}"
        response = self._call(what, "batch", "list_namespaced_job", self.namespace, label_selector=label_selector,
                              retry=False, resource_version=resource_version, timeout_seconds=timeout_seconds,
                              watch=True, allow_watch_bookmarks=True,
                              _request_timeout=(CONNECT_TIMEOUT_S, timeout_seconds + REQUEST_TIMEOUT_S))
        with self._lock:
            self._watches.add(response)
        complete = False
        try:
            buffer = b""
            for chunk in response.stream(amt=None, decode_content=True):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        status = event.get("object", {})
                        code = status.get("code")
                        message = f"{what}: {code} {status.get('reason', '')}: {status.get('message', '')}"
                        raise (Gone if code == 410 else ApiError)(message, code)
                    yield WatchEvent(event["type"], event.get("object") or {})
            complete = True
        except ApiError:
            raise
        except Exception as e:  # noqa: BLE001 - a dropped connection, a protocol error
            raise _error(e, what) from None
        finally:
            with self._lock:
                self._watches.discard(response)
            if not complete:  # never hand a half-read connection back to the pool
                response.close()
            response.release_conn()

    def interrupt_watches(self) -> None:
        """End every watch in progress now (from another thread): their readers get an ApiError."""
        with self._lock:
            responses = list(self._watches)
        for response in responses:
            sock = getattr(getattr(response, "connection", None), "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def delete_job(self, name: str, uid: str | None = None) -> bool:
        """Delete the Job and, in the background, its pods. With ``uid``: only that incarnation of the name.
        False if it was already gone."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            self._json(self._call(f"delete Job {name}", "batch", "delete_namespaced_job", name, self.namespace,
                                  body=body))
        except NotFound:
            return False
        return True

    # -- the server --

    def server_version(self) -> tuple[int, int] | None:
        """(major, minor) of the API server's Kubernetes (``GET /version``, open to every authenticated user
        through the ``system:discovery`` role); None when it does not say (a minor such as ``33+`` is 33)."""
        doc = self._json(self._call("read the server version", "version", "get_code"))
        try:
            return int(str(doc.get("major", "")).rstrip("+")), int(str(doc.get("minor", "")).rstrip("+"))
        except ValueError:
            return None

    # -- Pods --

    def list_pods(self, label_selector: str, retry: bool = True) -> list[dict[str, Any]]:
        doc = self._json(self._call(f"list Pods {label_selector}", "core", "list_namespaced_pod", self.namespace,
                                    label_selector=label_selector, retry=retry))
        return doc.get("items") or []

    def read_pod_log(self, name: str, container: str, tail_lines: int | None = None,
                     limit_bytes: int | None = None) -> str:
        kwargs: dict[str, Any] = {"container": container}
        if tail_lines is not None:
            kwargs["tail_lines"] = tail_lines
        if limit_bytes is not None:
            kwargs["limit_bytes"] = limit_bytes
        response = self._call(f"read log of Pod {name}", "core", "read_namespaced_pod_log", name, self.namespace,
                              **kwargs)
        try:
            return response.data.decode("utf-8", "replace")
        finally:
            response.release_conn()


def _configuration() -> Any:
    """A client Configuration whose connection pool retries a failed connection (urllib3's Retry, 3 times) but
    never sleeps on a status itself: 429 and 5xx are ``Api._call``'s to retry, with an interruptible sleep,
    until the deadline (urllib3 would sleep whatever ``Retry-After`` says, uninterruptibly, on GETs only)."""
    configuration = kubernetes.client.Configuration()
    configuration.retries = urllib3.util.retry.Retry(total=3, respect_retry_after_header=False)
    return configuration


def _kubeconfig_credentials(config_file: str | None, context: str) -> str:
    """``context "c" (user "u") of <file>``, for messages."""
    where = config_file or "~/.kube/config"
    try:
        contexts, current = kubernetes.config.list_kube_config_contexts(config_file)
        chosen = next((c for c in contexts if c.get("name") == context), None) if context else current
        user = ((chosen or {}).get("context") or {}).get("user")
        return f'context "{(chosen or {}).get("name") or context}" (user "{user}") of {where}'
    except Exception:  # noqa: BLE001 - only a message: whatever the kubeconfig holds
        return f'context "{context or "(current)"}" of {where}'


def _in_cluster_credentials() -> str:
    token = getattr(getattr(kubernetes.config, "incluster_config", None), "SERVICE_TOKEN_FILENAME", "")
    return f"the pod's service account (in-cluster, token file {token})"
