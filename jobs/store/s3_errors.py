"""How an S3 request failed, in one line: boto3's and botocore's errors classified and translated.

Transient failures (dropped connections, timeouts, 5xx, throttling) are retried by
``jobs.store.s3_connection``; a refused connection or an unknown host is "nothing there"; an untrusted
certificate, wrong credentials, a missing bucket and checksums the server refuses are configuration
errors (``errors.BadInput``, exit 2). The rules as users see them: ``docs/architecture.md`` ("S3 stores").
"""

from __future__ import annotations

import errno
import socket
import ssl
import urllib.parse
from collections.abc import Callable, Iterator

import boto3.exceptions
import botocore.exceptions
import s3transfer.exceptions
import urllib3.exceptions

from jobs import errors

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
# What a dropped or refused connection looks like, from botocore, urllib3 or a response body.
CONNECTION_ERRORS = (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError,
                      botocore.exceptions.ResponseStreamingError, botocore.exceptions.IncompleteReadError,
                      urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)


class Truncated(Exception):
    """A response body ended before the object did."""


def causes(e: BaseException) -> Iterator[BaseException]:
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


def nobody_there(e: BaseException) -> str | None:
    """"connection refused" or "unknown host" when ``e`` is one (no server at that address, no such
    name), else None. Timeouts, dropped connections and a name server that failed for now are not."""
    if not isinstance(e, botocore.exceptions.EndpointConnectionError):
        return None
    for c in causes(e):
        if isinstance(c, ConnectionRefusedError) or (isinstance(c, OSError) and c.errno == errno.ECONNREFUSED):
            return "connection refused"
        if isinstance(c, socket.gaierror) and c.errno not in (socket.EAI_AGAIN, getattr(socket, "EAI_SYSTEM", None)):
            return "unknown host"
    return None


def untrusted_certificate(e: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind ``e``, if that is what it is: retrying cannot help."""
    if not isinstance(e, (botocore.exceptions.SSLError, urllib3.exceptions.SSLError, ssl.SSLError)):
        return None
    return next((c for c in causes(e) if isinstance(c, ssl.SSLCertVerificationError)), None)


def one_line(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


def public_endpoint(url: str | None) -> str:
    """The endpoint as host[:port] with its scheme, without any user info."""
    if not url:
        return "AWS S3"
    p = urllib.parse.urlsplit(url)
    host = p.hostname or ""
    try:
        port = p.port
    except ValueError:  # not a number, or out of range: shown as written
        port = p.netloc.rpartition(":")[2]
    if port:
        host += f":{port}"
    return f"{p.scheme}://{host}" if p.scheme else host


def public_endpoint_text(url: str) -> str:
    """An endpoint URL as the user wrote it, less any user info (``user:secret@``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    netloc, slash, path = rest.partition("/")
    netloc = netloc.rpartition("@")[2]
    return f"{scheme}{sep}{netloc}{slash}{path}"


def unwrap(e: BaseException) -> BaseException:
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


def error_code(e: botocore.exceptions.ClientError) -> tuple[str, int]:
    err = e.response.get("Error", {}) or {}
    status = (e.response.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode") or 0
    return str(err.get("Code", "") or status), int(status)


def is_transient(e: BaseException) -> bool:
    if untrusted_certificate(e) is not None:
        return False
    if isinstance(e, (Truncated, *CONNECTION_ERRORS)):
        return True
    if isinstance(e, botocore.exceptions.ClientError):
        code, status = error_code(e)
        return status >= 500 or status == 429 or code in THROTTLING
    return False


def checksum_refused(e: botocore.exceptions.ClientError, checksums_sent: bool) -> bool:
    """The server refused the checksums botocore sent (only when it was asked to send them)."""
    if not checksums_sent:
        return False  # none were sent unless an operation required one: something else is wrong
    code, status = error_code(e)
    if code in CHECKSUM_CODES:
        return True
    err = e.response.get("Error", {}) or {}
    text = " ".join(str(v) for v in err.values()).lower()
    return code in _CHECKSUM_MAYBE_CODES and any(w in text for w in _CHECKSUM_WORDS)


def translate(e: BaseException, what: str, *, endpoint: str, bucket: str, checksums_sent: bool,
              redact: Callable[[str], str]) -> BaseException:
    """A one-line ghostbench error for a boto3/botocore failure; other exceptions unchanged.

    ``endpoint``: where (no credentials); ``checksums_sent``: the client sends checksums whenever supported;
    ``redact``: removes credentials from a text."""
    where = f"at {endpoint}"
    if isinstance(e, botocore.exceptions.ClientError):
        code, status = error_code(e)
        if checksum_refused(e, checksums_sent):
            return errors.BadInput(f"{what}: the S3 server refused the request's integrity checksum ({code} "
                                   f"{where}): it predates the checksums boto3 >= 1.36 sends; set "
                                   f"{REQUEST_CHECKSUM_ENV}=when_required (and "
                                   f"{RESPONSE_CHECKSUM_ENV}=when_required)")
        if code == "NoSuchBucket":
            return errors.BadInput(f"{what}: bucket {bucket!r} does not exist {where}")
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
    if (bad_cert := untrusted_certificate(e)) is not None:
        return errors.BadInput(f"{what}: the TLS certificate of S3 endpoint {endpoint} is not trusted "
                               f"({one_line(bad_cert.verify_message or bad_cert.reason or bad_cert)}); set "
                               "AWS_CA_BUNDLE to the file of the CA that signed it")
    if isinstance(e, botocore.exceptions.FlexibleChecksumError):
        return errors.StoreError(f"{what}: the response's checksum did not match its data ({where}); if the "
                                 "server is an older S3-compatible one, set "
                                 f"{RESPONSE_CHECKSUM_ENV}=when_required")
    if isinstance(e, botocore.exceptions.ParamValidationError):
        return errors.BadInput(f"{what}: {redact(str(e))}")
    if isinstance(e, (botocore.exceptions.BotoCoreError, boto3.exceptions.Boto3Error,
                      s3transfer.exceptions.S3UploadFailedError, s3transfer.exceptions.S3DownloadFailedError)):
        return errors.StoreError(f"{what}: {redact(f'{type(e).__name__}: {e}')}")
    return e
