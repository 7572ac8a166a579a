"""An S3-compatible bucket as a store (AWS S3, MinIO, SeaweedFS, Huawei OBS), through boto3.

Where the settings come from, and nothing else:

- **The URI**: ``s3://BUCKET[/PREFIX]``. Credentials in the URI are refused.
- **Credentials**: boto3's standard chain: ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``
  (/ ``AWS_SESSION_TOKEN``), ``AWS_PROFILE`` and the shared files ``~/.aws/credentials`` and
  ``~/.aws/config``, web identity (EKS), container and instance roles.
- **Endpoint** (for servers other than AWS): ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``, or
  ``endpoint_url`` in the profile; boto3 reads them itself. **Region**: ``AWS_REGION`` /
  ``AWS_DEFAULT_REGION`` or the profile's ``region``.
- **Addressing**: path style (``http://host/bucket/key``) whenever an endpoint URL is configured,
  which is what MinIO, SeaweedFS and most S3-compatible servers need; boto3's default
  (virtual-hosted) on AWS. The profile's ``s3 = addressing_style = ...`` overrides both.
- **Checksums**: botocore 1.36+ sends integrity checksums by default (an ``aws-chunked`` body with
  an ``x-amz-trailer``), which older MinIO and Ceph refuse (``XAmzContentSHA256Mismatch``). With a
  configured endpoint the client uses ``request_checksum_calculation`` and
  ``response_checksum_validation`` ``when_required``, unless ``AWS_REQUEST_CHECKSUM_CALCULATION`` /
  ``AWS_RESPONSE_CHECKSUM_VALIDATION`` or the profile's settings of the same names say otherwise;
  on AWS, botocore's default. A server refusing the checksums is one line naming the setting.
- **Retries**: botocore's ``standard`` mode (throttling, 5xx and connection errors, with jittered
  exponential backoff; ``AWS_RETRY_MODE`` / ``AWS_MAX_ATTEMPTS`` are honoured), and on top of it
  this module retries connection errors, 5xx and throttling with backoff until
  ``GHOSTBENCH_S3_DEADLINE_S`` seconds (default 60) have passed since the first failure of an
  operation, so a server that is away for a while is waited for; past that, one line says so.
  Except where retrying cannot help: a refused connection or an unknown host while nothing has
  answered yet (no request to this endpoint has had a response in this process, nor in the
  controller that started it: ``GHOSTBENCH_S3_REACHED``) is one line at once, without retries;
  so is a TLS certificate that does not verify (``AWS_CA_BUNDLE`` names the CA to trust).
- **Logs**: botocore's and boto3's own log lines (``Found credentials in environment variables.``)
  are kept below WARNING unless the logging level is DEBUG.

Large objects move with boto3's managed transfers (multipart upload, ranged parallel download)
straight between a local file and the bucket; ``open_read`` streams, resuming after a broken
connection at the byte it stopped. Errors are one line naming the object and the endpoint, never a
credential: wrong credentials, access denied, a missing bucket and an unreachable endpoint are
configuration errors (``errors.BadInput``, exit 2).
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import pathlib
import shutil
import socket
import ssl
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, TypeVar

import boto3
import boto3.exceptions
import boto3.s3.transfer
import botocore.config
import botocore.exceptions
import botocore.session
import s3transfer.exceptions
import urllib3.exceptions

from jobs import errors
from jobs.store import base as store_base

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
THROTTLING = {"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
              "RequestThrottledException", "SlowDown", "TooManyRequestsException", "RequestLimitExceeded",
              "RequestTimeout", "RequestTimeoutException", "InternalError", "ServiceUnavailable"}
# Error codes of a server that does not understand the checksums botocore >= 1.36 sends by default
# (aws-chunked bodies with a trailer): older MinIO and Ceph, and others that refuse chunked uploads.
CHECKSUM_CODES = {"XAmzContentSHA256Mismatch", "XAmzContentChecksumMismatch", "BadDigest", "InvalidDigest",
                  "MissingContentLength"}
# ... and codes that mean the same when their message is about those headers.
_CHECKSUM_MAYBE_CODES = {"InvalidArgument", "InvalidRequest", "NotImplemented", "UnsupportedHeader"}
_CHECKSUM_WORDS = ("checksum", "trailer", "aws-chunked", "transfer-encoding", "content-sha256",
                   "decoded-content-length", "header you provided")
REQUEST_CHECKSUM_ENV = "AWS_REQUEST_CHECKSUM_CALCULATION"
RESPONSE_CHECKSUM_ENV = "AWS_RESPONSE_CHECKSUM_VALIDATION"
# botocore before 1.36 has neither setting (nor sends the checksums).
_HAS_CHECKSUM_CONFIG = "request_checksum_calculation" in getattr(botocore.config.Config, "OPTION_DEFAULTS", {})
_SDK_LOGGERS = ("botocore", "boto3", "s3transfer")
_quieted: set[str] = set()
_reached_lock = threading.Lock()
# What a dropped or refused connection looks like, from botocore, urllib3 or a response body.
_CONNECTION_ERRORS = (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError,
                      botocore.exceptions.ResponseStreamingError, botocore.exceptions.IncompleteReadError,
                      urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)


class _Truncated(Exception):
    """A response body ended before the object did."""


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


def _causes(e: BaseException) -> Iterator[BaseException]:
    """``e``, the error botocore wrapped, and their causes and contexts (a few levels)."""
    todo, seen = [e], set()
    while todo and len(seen) < 12:
        x = todo.pop(0)
        if id(x) in seen:
            continue
        seen.add(id(x))
        yield x
        kwargs = getattr(x, "kwargs", None)
        wrapped = kwargs.get("error") if isinstance(kwargs, dict) else None
        todo += [c for c in (wrapped, x.__cause__, x.__context__) if isinstance(c, BaseException)]


def _nobody_there(e: BaseException) -> str | None:
    """"connection refused" or "unknown host" when ``e`` is one (no server at that address, no such
    name), else None. Timeouts, dropped connections and a name server that failed for now are not."""
    if not isinstance(e, botocore.exceptions.EndpointConnectionError):
        return None
    for c in _causes(e):
        if isinstance(c, ConnectionRefusedError) or (isinstance(c, OSError) and c.errno == errno.ECONNREFUSED):
            return "connection refused"
        if isinstance(c, socket.gaierror) and c.errno not in (socket.EAI_AGAIN, getattr(socket, "EAI_SYSTEM", None)):
            return "unknown host"
    return None


def _untrusted_certificate(e: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind ``e``, if that is what it is: retrying cannot help."""
    if not isinstance(e, (botocore.exceptions.SSLError, urllib3.exceptions.SSLError, ssl.SSLError)):
        return None
    return next((c for c in _causes(e) if isinstance(c, ssl.SSLCertVerificationError)), None)


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


def _public_endpoint(url: str | None) -> str:
    """The endpoint as host[:port] with its scheme, without any user info."""
    if not url:
        return "AWS S3"
    p = urllib.parse.urlsplit(url)
    host = p.hostname or ""
    if p.port:
        host += f":{p.port}"
    return f"{p.scheme}://{host}" if p.scheme else host


def _unwrap(e: BaseException) -> BaseException:
    """The underlying error of boto3's transfer wrappers (which keep it only as the context)."""
    seen = 0
    while seen < 5 and isinstance(e, (boto3.exceptions.S3UploadFailedError, s3transfer.exceptions.RetriesExceededError,
                                      boto3.exceptions.RetriesExceededError)):
        inner = getattr(e, "last_exception", None) or e.__cause__ or e.__context__
        if inner is None:
            break
        e = inner
        seen += 1
    return e


def _code(e: botocore.exceptions.ClientError) -> tuple[str, int]:
    err = e.response.get("Error", {}) or {}
    status = (e.response.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode") or 0
    return str(err.get("Code", "") or status), int(status)


def _is_transient(e: BaseException) -> bool:
    if _untrusted_certificate(e) is not None:
        return False
    if isinstance(e, (_Truncated, *_CONNECTION_ERRORS)):
        return True
    if isinstance(e, botocore.exceptions.ClientError):
        code, status = _code(e)
        return status >= 500 or status == 429 or code in THROTTLING
    return False


class _Connection:
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
                for key, env in (("request_checksum_calculation", REQUEST_CHECKSUM_ENV),
                                 ("response_checksum_validation", RESPONSE_CHECKSUM_ENV)):
                    if env not in os.environ and key not in scoped:
                        extra[key] = "when_required"
            if extra or client is None:
                config = config.merge(botocore.config.Config(**extra))
                client = session.client("s3", config=config)
            creds = session.get_credentials()
        except botocore.exceptions.ProfileNotFound as e:
            raise errors.BadInput(f"s3://{self.bucket}: {_one_line(e)}") from e
        except botocore.exceptions.BotoCoreError as e:
            raise errors.BadInput(f"s3://{self.bucket}: S3 client configuration: {self._redact(str(e))}") from e
        self.endpoint = _public_endpoint(client.meta.endpoint_url)
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
        if caught_exception is not None and (_untrusted_certificate(caught_exception) is not None
                                             or (not self.answered and _nobody_there(caught_exception))):
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
        text = _one_line(text)
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
                e = _unwrap(raised)
                if isinstance(e, botocore.exceptions.ClientError):
                    self._note_answer()  # an error, but the server answered
                if not self.answered and (nobody := _nobody_there(e)):
                    raise self._nothing_answered(nobody, what) from raised
                if not _is_transient(e):
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
            code, status = _code(e)
            return f"{code} (HTTP {status})"
        if isinstance(e, botocore.exceptions.EndpointConnectionError):
            return f"cannot connect to {self.endpoint}"
        return self._redact(f"{type(e).__name__}: {e}")

    def _nothing_answered(self, reason: str, what: str) -> errors.GhostbenchError:
        return errors.BadInput(f"{what}: nothing answered at S3 endpoint {self.endpoint} ({reason}; the first "
                               "request to it, so not retried); check AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL "
                               "and that the server is up")

    def _checksum_refused(self, e: botocore.exceptions.ClientError) -> bool:
        """The server refused the checksums botocore sent (only when it was asked to send them)."""
        if getattr(self.client.meta.config, "request_checksum_calculation", None) != "when_supported":
            return False  # none were sent unless an operation required one: something else is wrong
        code, status = _code(e)
        if code in CHECKSUM_CODES:
            return True
        err = e.response.get("Error", {}) or {}
        text = " ".join(str(v) for v in err.values()).lower()
        return code in _CHECKSUM_MAYBE_CODES and any(w in text for w in _CHECKSUM_WORDS)

    def _gave_up(self, e: BaseException, what: str) -> errors.GhostbenchError:
        waited = f"gave up after {self.deadline_s:g}s of retries ({DEADLINE_ENV})"
        if isinstance(e, botocore.exceptions.ClientError):
            return errors.StoreError(f"{what}: S3 server {self.endpoint} kept failing: {self._reason(e)}; {waited}")
        return errors.BadInput(f"{what}: S3 endpoint {self.endpoint} unreachable ({self._reason(e)}); {waited}; "
                               "check AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL and that the server is up")

    def translate(self, e: BaseException, what: str) -> BaseException:
        """A one-line ghostbench error for a boto3/botocore failure; other exceptions unchanged."""
        where = f"at {self.endpoint}"
        if isinstance(e, botocore.exceptions.ClientError):
            code, status = _code(e)
            if self._checksum_refused(e):
                return errors.BadInput(f"{what}: the S3 server refused the request's integrity checksum ({code} "
                                       f"{where}): it predates the checksums boto3 >= 1.36 sends; set "
                                       f"{REQUEST_CHECKSUM_ENV}=when_required (and "
                                       f"{RESPONSE_CHECKSUM_ENV}=when_required)")
            if code == "NoSuchBucket":
                return errors.BadInput(f"{what}: bucket {self.bucket!r} does not exist {where}")
            if code == "SignatureDoesNotMatch":
                return errors.BadInput(f"{what}: wrong credentials: the secret access key does not match the "
                                       f"access key id (SignatureDoesNotMatch {where}); check AWS_SECRET_ACCESS_KEY "
                                       "or the profile")
            if code in ("InvalidAccessKeyId", "InvalidToken", "ExpiredToken", "InvalidClientTokenId"):
                return errors.BadInput(f"{what}: wrong credentials: {code} {where}; check AWS_ACCESS_KEY_ID, "
                                       "AWS_SESSION_TOKEN or the profile")
            if code in ("AccessDenied", "AllAccessDisabled", "AccountProblem", "403") or status == 403:
                return errors.BadInput(f"{what}: access denied ({code} {where}): these credentials may not do "
                                       "this; check the bucket policy or the credentials")
            if code in ("NoSuchKey", "404", "NotFound") or status == 404:
                return errors.StoreError(f"{what}: no such object")
            if code in ("PreconditionFailed", "412"):
                return errors.StoreError(f"{what}: the object changed while it was being read")
            if code in ("InvalidBucketName", "PermanentRedirect", "AuthorizationHeaderMalformed",
                        "IllegalLocationConstraintException"):
                return errors.BadInput(f"{what}: {code} {where}: check the bucket name and AWS_REGION")
            return errors.StoreError(f"{what}: S3 error {code} (HTTP {status}) {where}")
        if isinstance(e, (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError)):
            return errors.BadInput(f"{what}: no usable AWS credentials ({type(e).__name__}); set "
                                   "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or give the "
                                   "machine a role")
        if (bad_cert := _untrusted_certificate(e)) is not None:
            return errors.BadInput(f"{what}: the TLS certificate of S3 endpoint {self.endpoint} is not trusted "
                                   f"({_one_line(bad_cert.verify_message or bad_cert.reason or bad_cert)}); set "
                                   "AWS_CA_BUNDLE to the file of the CA that signed it")
        if isinstance(e, botocore.exceptions.FlexibleChecksumError):
            return errors.StoreError(f"{what}: the response's checksum did not match its data ({where}); if the "
                                     "server is an older S3-compatible one, set "
                                     f"{RESPONSE_CHECKSUM_ENV}=when_required")
        if isinstance(e, botocore.exceptions.ParamValidationError):
            return errors.BadInput(f"{what}: {self._redact(str(e))}")
        if isinstance(e, (botocore.exceptions.BotoCoreError, boto3.exceptions.Boto3Error,
                          s3transfer.exceptions.S3UploadFailedError, s3transfer.exceptions.S3DownloadFailedError)):
            return errors.StoreError(f"{what}: {self._redact(f'{type(e).__name__}: {e}')}")
        return e


class _ObjectReader(io.RawIOBase):
    """An object as a stream: one GET, and after a broken connection a ranged GET from where it broke.

    The re-request carries ``If-Match`` with the first response's ETag, so a reader never stitches
    two versions of an object together.
    """

    def __init__(self, conn: _Connection, key: str, what: str):
        super().__init__()
        self._conn = conn
        self._key = key
        self._what = what
        self._pos = 0
        self._size: int | None = None
        self._etag: str | None = None
        self._body: Any = None
        conn.call(what, self._open)

    def _open(self) -> None:
        kwargs: dict[str, Any] = {"Bucket": self._conn.bucket, "Key": self._key}
        if self._pos:
            kwargs["Range"] = f"bytes={self._pos}-"
            if self._etag:
                kwargs["IfMatch"] = self._etag
        r = self._conn.client.get_object(**kwargs)
        if self._size is None:
            self._size = int(r["ContentLength"])
            self._etag = r.get("ETag")
        self._body = r["Body"]

    def _drop(self) -> None:
        if self._body is not None:
            with contextlib.suppress(Exception):
                self._body.close()
            self._body = None

    def _read_some(self, n: int) -> bytes:
        if self._body is None:
            self._open()
        try:
            data = self._body.read(n)
        except Exception:
            self._drop()
            raise
        if not data and self._size is not None and self._pos < self._size:
            self._drop()
            raise _Truncated(f"the response ended at byte {self._pos} of {self._size}")
        return data

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when negative), straight from the response: no copy."""
        if size is None or size < 0:
            return self.readall()
        if size == 0 or (self._size is not None and self._pos >= self._size):
            return b""
        data = self._conn.call(self._what, lambda: self._read_some(size), check=False)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        parts = []
        while chunk := self.read(READ_CHUNK):
            parts.append(chunk)
        return b"".join(parts)

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        data = self.read(len(view))
        view[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self._drop()
        super().close()


class S3Store(store_base.Store):
    """Objects below ``s3://bucket/prefix``."""

    def __init__(self, conn: _Connection, prefix: str = ""):
        self._conn = conn
        self.bucket = conn.bucket
        self.prefix = store_base.check_name(prefix)
        self.uri = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @classmethod
    def from_uri(cls, uri: str, deadline_s: float | None = None) -> S3Store:
        """``s3://bucket[/prefix]``; does no I/O (the bucket is checked on the first request)."""
        parsed = urllib.parse.urlsplit(uri)
        if "@" in parsed.netloc:
            raise errors.BadInput("store URI s3://...@" + parsed.netloc.rsplit("@", 1)[1] + "/...: credentials "
                                  "in the URI are not accepted; use the AWS credential chain (AWS_ACCESS_KEY_ID "
                                  "and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role)")
        bucket = parsed.netloc
        if not bucket:
            raise errors.BadInput(f"store URI {uri!r}: no bucket; expected s3://bucket/prefix")
        if parsed.query or parsed.fragment or ":" in bucket:
            raise errors.BadInput(f"store URI {uri!r}: expected s3://bucket/prefix, without port, query or "
                                  "fragment (the endpoint comes from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL)")
        return cls(_Connection(bucket, deadline_s), urllib.parse.unquote(parsed.path))

    def _key(self, name: str) -> str:
        name = store_base.check_name(name)
        return f"{self.prefix}/{name}" if self.prefix and name else (self.prefix or name)

    def _object_key(self, name: str) -> str:
        if not store_base.check_name(name):
            raise errors.BadInput("store object name must not be empty")
        return self._key(name)

    def _where(self, name: str) -> str:
        return f"s3://{self.bucket}/{self._key(name)}"

    def child(self, name: str) -> S3Store:
        return S3Store(self._conn, self._key(name))

    def _head(self, name: str) -> dict[str, Any] | None:
        key = self._object_key(name)

        def head() -> dict[str, Any] | None:
            try:
                return self._conn.client.head_object(Bucket=self.bucket, Key=key)
            except botocore.exceptions.ClientError as e:
                code, status = _code(e)
                if status == 404 or code in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise

        return self._conn.call(f"reading {self._where(name)}", head)

    def exists(self, name: str) -> bool:
        return self._head(name) is not None

    def size(self, name: str) -> int:
        head = self._head(name)
        if head is None:
            raise errors.StoreError(f"{self._where(name)}: no such object")
        return int(head["ContentLength"])

    def list(self, prefix: str = "") -> list[str]:
        key = self._key(prefix)
        base = key + "/" if key else ""
        cut = len(self.prefix) + 1 if self.prefix else 0

        def listing() -> list[str]:
            names = []
            pages = self._conn.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base)
            for page in pages:
                for obj in page.get("Contents", ()):
                    k = obj["Key"]
                    if k.endswith("/") or any(p.startswith(store_base.TMP_MARK) for p in k.split("/")):
                        continue  # folder markers that some tools write; in-flight names
                    names.append(k[cut:])
            return names

        names = self._conn.call(f"listing {self._where(prefix)}", listing)
        if not names and store_base.check_name(prefix) and self.exists(prefix):
            return [store_base.check_name(prefix)]
        return sorted(names)

    def read_bytes(self, name: str) -> bytes:
        key = self._object_key(name)
        what = f"reading {self._where(name)}"

        def get() -> bytes:
            body = self._conn.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            with contextlib.closing(body):
                return body.read()

        return self._conn.call(what, get)

    def write_bytes(self, name: str, data: bytes) -> None:
        key = self._object_key(name)
        self._conn.call(f"writing {self._where(name)}",
                        lambda: self._conn.client.put_object(Bucket=self.bucket, Key=key, Body=data))

    @contextlib.contextmanager
    def open_read(self, name: str) -> Iterator[BinaryIO]:
        with _ObjectReader(self._conn, self._object_key(name), f"reading {self._where(name)}") as f:
            yield f  # type: ignore[misc]

    def put_file(self, name: str, path: pathlib.Path) -> None:
        key = self._object_key(name)
        self._conn.call(f"writing {self._where(name)}", lambda: self._conn.client.upload_file(
            os.fspath(path), self.bucket, key, Config=TRANSFER))

    def get_file(self, name: str, path: pathlib.Path) -> None:
        key = self._object_key(name)
        self._conn.call(f"reading {self._where(name)}", lambda: self._conn.client.download_file(
            self.bucket, key, os.fspath(path), Config=TRANSFER))

    def delete(self, name: str) -> None:
        key = self._object_key(name)
        self._conn.call(f"deleting {self._where(name)}",
                        lambda: self._conn.client.delete_object(Bucket=self.bucket, Key=key))

    def local_path(self, name: str) -> pathlib.Path | None:
        return None

    def create_exclusive(self, name: str, data: bytes) -> bool:
        """A conditional PUT (``If-None-Match: *``; AWS since 2024, MinIO, SeaweedFS): 412 means the object
        was there. A PUT retried after a lost response also gets 412: the object then holds these very bytes
        and counts as created. A server that refuses the condition (501) gets the base class's fallback
        (check, write, read back); one that silently ignores it cannot be told apart here."""
        key = self._object_key(name)

        def put() -> bool | None:
            try:
                self._conn.client.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*")
                return True
            except botocore.exceptions.ClientError as e:
                code, status = _code(e)
                if status == 412 or code == "PreconditionFailed":
                    return False
                if status == 409 or code == "ConditionalRequestConflict":  # another conditional write won
                    return False
                if status == 501 or code == "NotImplemented":
                    return None
                raise

        created = self._conn.call(f"creating {self._where(name)}", put)
        if created is None:
            return super().create_exclusive(name, data)
        if not created:
            with contextlib.suppress(errors.StoreError):
                return self.read_bytes(name) == data
        return created

    @contextlib.contextmanager
    def staging_dir(self) -> Iterator[pathlib.Path]:
        path = pathlib.Path(tempfile.mkdtemp(prefix=store_base.tmp_prefix("staging-")))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
