"""One S3 client for one bucket: its configuration, its retries until a deadline, and what answered.

The client follows boto3's own settings (credentials chain, endpoint, region, profile) and adds what
S3-compatible servers need (path-style addressing, checksums only where required). Every call is retried
on transient failures with backoff until ``GHOSTBENCH_S3_DEADLINE_S`` seconds after its first failure; a
first contact that nothing answers fails at once. The rules as users see them: ``docs/architecture.md``
("S3 stores").
"""

from __future__ import annotations

import logging
import os
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
import boto3.s3.transfer
import botocore.config
import botocore.exceptions
import botocore.session

from jobs import errors
from jobs.store import s3_errors

log = logging.getLogger("ghostbench.store")

T = TypeVar("T")

DEADLINE_ENV = "GHOSTBENCH_S3_DEADLINE_S"
"""Seconds an operation keeps retrying after its first failure before giving up (default below)."""
DEFAULT_DEADLINE_S = 60.0
REACHED_ENV = "GHOSTBENCH_S3_REACHED"
"""Endpoints that have answered in this process or the controller that started it (space-separated;
set by this module, inherited by stage subprocesses): a refused connection to one of them is a
server away for a while and is waited for, not a wrong endpoint."""
FIRST_BACKOFF_S = 0.25
MAX_BACKOFF_S = 4.0
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0
MiB = 1 << 20
# Multipart above 8 MiB, in 8 MiB parts, 10 at once (boto3's defaults, spelled out): on the benchmark
# (benchmarks/s3_throughput.py) larger parts or fewer threads were no faster.
TRANSFER = boto3.s3.transfer.TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB,
                                            max_concurrency=10, use_threads=True)
READ_CHUNK = 8 * MiB
# botocore before 1.36 has neither setting (nor sends the checksums).
_HAS_CHECKSUM_CONFIG = "request_checksum_calculation" in getattr(botocore.config.Config, "OPTION_DEFAULTS", {})
_SDK_LOGGERS = ("botocore", "boto3", "s3transfer")
_quieted: set[str] = set()
_reached_lock = threading.Lock()


ENDPOINT_SOURCES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
"""Where botocore takes an S3 endpoint from, first wins (then the profile's ``endpoint_url``)."""


def endpoint_problem(url: str) -> str | None:
    """What is wrong with an S3 endpoint URL for ghostbench, or None: it must be ``http(s)://host[:port]`` with at
    most a ``/`` after it, as the chart's ``store.endpoint`` schema says. A path is refused because S3 requests
    are signed over the path: behind a reverse proxy that strips it the server answers SignatureDoesNotMatch
    (right credentials, wrong path signed), and one that keeps it makes the bucket "not exist"."""
    try:
        p = urllib.parse.urlsplit(url)
        port = p.port  # parsed on access: "host:notaport" and ports over 65535 raise here
    except ValueError as e:
        return f"expected http(s)://host[:port] ({e})"
    if p.scheme not in ("http", "https") or not p.hostname:
        return "expected http://host[:port] or https://host[:port]"
    if port == 0:
        return "expected a port from 1 to 65535"
    if "@" in p.netloc:
        return "credentials in the URL are not accepted; use the AWS credential chain"
    if p.path not in ("", "/"):
        return (f"an S3 endpoint is a host and port only; its path {p.path!r} is not supported: requests are "
                "signed over the path, so a reverse proxy that strips it answers SignatureDoesNotMatch and one "
                "that keeps it answers that the bucket does not exist; give the server a host name or port of its "
                "own (or point at the server itself)")
    if p.query or p.fragment:
        return "expected no query or fragment"
    return None


def endpoint_source() -> str:
    """The name of the setting the S3 endpoint came from, for messages."""
    return next((env for env in ENDPOINT_SOURCES if os.environ.get(env)), "the AWS profile's endpoint_url")


def deadline_from_env() -> float:
    text = os.environ.get(DEADLINE_ENV, "").strip()
    if not text:
        return DEFAULT_DEADLINE_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise errors.BadInput(f"{DEADLINE_ENV}={text!r}: expected a number of seconds >= 0")
    return value


def quiet_sdk_logs() -> None:
    """botocore's, boto3's and s3transfer's own log lines (``Found credentials in environment
    variables.``, ...) kept below WARNING, unless the logging level is DEBUG (then left alone).

    Only loggers nobody else has set a level on are touched; the root logger never is."""
    debug = min(logging.getLogger().getEffectiveLevel(), logging.getLogger("ghostbench").getEffectiveLevel())
    for name in _SDK_LOGGERS:
        logger = logging.getLogger(name)
        if debug <= logging.DEBUG:
            if name in _quieted and logger.level == logging.WARNING:
                logger.setLevel(logging.NOTSET)  # asked for since: let them through
                _quieted.discard(name)
        elif logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
            _quieted.add(name)


def reached(endpoint: str) -> bool:
    """Whether ``endpoint`` has answered a request, in this process or the controller that started it."""
    return endpoint in os.environ.get(REACHED_ENV, "").split()


def mark_reached(endpoint: str) -> None:
    """Note that ``endpoint`` answered; stage subprocesses started from now on inherit it."""
    with _reached_lock:
        known = os.environ.get(REACHED_ENV, "").split()
        if endpoint not in known:
            os.environ[REACHED_ENV] = " ".join([*known, endpoint])


class Connection:
    """One client for one bucket, shared by a store and its children; checks the bucket once."""

    def __init__(self, bucket: str, deadline_s: float | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.bucket = bucket
        self.deadline_s = deadline_from_env() if deadline_s is None else deadline_s
        self._sleep = sleep
        self._clock = clock
        self._client: Any = None
        self._secrets: tuple[str, ...] = ()
        self._checked = False
        self._answered = False  # has the endpoint ever answered (here, or in the controller)?
        self.endpoint = "AWS S3"

    # -- set-up -----------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        quiet_sdk_logs()  # before the client: it logs where it found the credentials
        for variable in ENDPOINT_SOURCES:  # before botocore, which fails on some of them with a bare ValueError
            value = os.environ.get(variable)
            if value and (problem := endpoint_problem(value)):
                raise errors.BadInput(f"{variable}={s3_errors.public_endpoint_text(value)}: {problem}")
        try:
            core = botocore.session.Session()  # reads the environment and the profile, as boto3 does
            session = boto3.session.Session(botocore_session=core)
            scoped = core.get_scoped_config() or {}
            endpoint = core.get_config_variable("endpoint_url")  # AWS_ENDPOINT_URL, the profile
            s3_settings = dict(scoped.get("s3") or {}) if isinstance(scoped.get("s3"), dict) else {}
            retry_mode = core.get_config_variable("retry_mode")
            config = botocore.config.Config(
                retries={"mode": "standard" if retry_mode in (None, "legacy") else retry_mode},
                connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                max_pool_connections=max(10, TRANSFER.max_request_concurrency + 2),
            )
            client = None
            if endpoint:
                custom = True
            else:
                client = session.client("s3", config=config)
                host = urllib.parse.urlsplit(client.meta.endpoint_url or "").hostname or ""
                custom = not host.endswith((".amazonaws.com", ".amazonaws.com.cn"))
            extra: dict[str, Any] = {}
            if custom and "addressing_style" not in s3_settings:
                extra["s3"] = {"addressing_style": "path"}
            if custom and _HAS_CHECKSUM_CONFIG:
                # S3-compatible servers: no checksums they may not understand, unless the user asks.
                for key, env in (("request_checksum_calculation", s3_errors.REQUEST_CHECKSUM_ENV),
                                 ("response_checksum_validation", s3_errors.RESPONSE_CHECKSUM_ENV)):
                    if env not in os.environ and key not in scoped:
                        extra[key] = "when_required"
            if extra or client is None:
                config = config.merge(botocore.config.Config(**extra))
                client = session.client("s3", config=config)
            creds = session.get_credentials()
        except botocore.exceptions.ProfileNotFound as e:
            raise errors.BadInput(f"s3://{self.bucket}: {s3_errors.one_line(e)}") from e
        except botocore.exceptions.BotoCoreError as e:
            raise errors.BadInput(f"s3://{self.bucket}: S3 client configuration: {self._redact(str(e))}") from e
        except ValueError as e:  # botocore's "Invalid endpoint: ..." (from the profile: the variables were checked)
            raise errors.BadInput(f"{endpoint_source()}: {self._redact(str(e))}; expected http(s)://host[:port]") from e
        if endpoint or custom:  # a configured endpoint (AWS's own are built by botocore)
            problem = endpoint_problem(client.meta.endpoint_url or "")
            if problem:
                raise errors.BadInput(f"{endpoint_source()}={self._redact(client.meta.endpoint_url)}: {problem}")
        self.endpoint = s3_errors.public_endpoint(client.meta.endpoint_url)
        # runs before botocore's own retry handler: notes answers, and stops its retries of a first
        # contact that nothing answered
        client.meta.events.register_first("needs-retry.s3", self._on_attempt)
        if creds is not None:
            frozen = creds.get_frozen_credentials()
            self._secrets = tuple(s for s in (frozen.access_key, frozen.secret_key, frozen.token) if s)
        return client

    def _on_attempt(self, response: Any = None, caught_exception: BaseException | None = None,
                    **_: Any) -> bool | None:
        """botocore's ``needs-retry`` event, after every attempt: False stops its retries, None lets
        its retry handler decide."""
        if response is not None:
            self._note_answer()
            return None
        if caught_exception is not None and (s3_errors.untrusted_certificate(caught_exception) is not None
                                             or (not self.answered and s3_errors.nobody_there(caught_exception))):
            return False
        return None

    @property
    def answered(self) -> bool:
        """Whether the endpoint has answered, here or in this process's controller: from then on a
        refused connection is a server away for a while, waited for until the deadline."""
        if not self._answered and self._client is not None and reached(self.endpoint):
            self._answered = True
        return self._answered

    def _note_answer(self) -> None:
        if not self._answered:
            self._answered = True
            mark_reached(self.endpoint)

    def _redact(self, text: str) -> str:
        text = s3_errors.one_line(text)
        for s in self._secrets:
            text = text.replace(s, "***")
        return text

    # -- calls, retries and errors ---------------------------------------------------------

    def check(self) -> None:
        """Once per connection: the bucket exists and these credentials may list it."""
        if self._checked:
            return
        self.call(f"checking bucket s3://{self.bucket}",
                  lambda: self.client.list_objects_v2(Bucket=self.bucket, MaxKeys=1), check=False)
        self._checked = True

    def call(self, what: str, fn: Callable[[], T], check: bool = True) -> T:
        """``fn()``, retried on transient failures until the deadline; failures become one-line errors."""
        if check:
            self.check()
        first_failure: float | None = None
        delay = FIRST_BACKOFF_S
        attempt = 0
        while True:
            try:
                result = fn()
                self._note_answer()
                return result
            except Exception as raised:  # classified below; anything unknown is re-raised as is
                e = s3_errors.unwrap(raised)
                if isinstance(e, botocore.exceptions.ClientError):
                    self._note_answer()  # an error, but the server answered
                if not self.answered and (nobody := s3_errors.nobody_there(e)):
                    raise self._nothing_answered(nobody, what) from raised
                if not s3_errors.is_transient(e):
                    mapped = self.translate(e, what)
                    if mapped is raised or mapped is e:
                        raise
                    raise mapped from raised
                now = self._clock()
                if first_failure is None:
                    first_failure = now
                left = self.deadline_s - (now - first_failure)
                if left <= 0:
                    raise self._gave_up(e, what) from raised
                attempt += 1
                wait = min(delay, left)
                log.warning("s3: %s: %s; retry %d in %.1fs (giving up %.0fs after the first failure)",
                            what, self._reason(e), attempt, wait, self.deadline_s)
                self._sleep(wait)
                delay = min(delay * 2, MAX_BACKOFF_S)

    def _reason(self, e: BaseException) -> str:
        if isinstance(e, botocore.exceptions.ClientError):
            code, status = s3_errors.error_code(e)
            return f"{code} (HTTP {status})"
        if isinstance(e, botocore.exceptions.EndpointConnectionError):
            return f"cannot connect to {self.endpoint}"
        return self._redact(f"{type(e).__name__}: {e}")

    def _nothing_answered(self, reason: str, what: str) -> errors.GhostbenchError:
        return errors.BadInput(f"{what}: nothing answered at S3 endpoint {self.endpoint} ({reason}; the first "
                               "request to it, so not retried); check AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL "
                               "and that the server is up")

    def _gave_up(self, e: BaseException, what: str) -> errors.GhostbenchError:
        waited = f"gave up after {self.deadline_s:g}s of retries ({DEADLINE_ENV})"
        if isinstance(e, botocore.exceptions.ClientError):
            return errors.StoreUnavailable(f"{what}: S3 server {self.endpoint} kept failing: {self._reason(e)}; "
                                           f"{waited}; rerun once it is back")
        return errors.StoreUnavailable(f"{what}: S3 endpoint {self.endpoint} unreachable ({self._reason(e)}); "
                                       f"{waited}; check that the server is up, and rerun once it is back")


    def translate(self, e: BaseException, what: str) -> BaseException:
        """A one-line ghostbench error for a boto3/botocore failure; other exceptions unchanged."""
        sent = getattr(self.client.meta.config, "request_checksum_calculation", None) == "when_supported"
        return s3_errors.translate(e, what, endpoint=self.endpoint, bucket=self.bucket, checksums_sent=sent,
                                   redact=self._redact)
