"""An S3-compatible bucket as a store (AWS S3, MinIO, SeaweedFS, Huawei OBS), through boto3.

``S3Store`` maps store names to keys below ``s3://bucket/prefix``: large objects move with boto3's managed
transfers between a local file and the bucket, ``open_read`` streams and resumes a broken read at the byte
it reached (``If-Match`` on the first ETag), and ``create_exclusive`` is a conditional PUT. The client,
its settings and retries are ``jobs.store.s3_connection``; how failures become one line,
``jobs.store.s3_errors``. The settings as users see them (URI, credentials, endpoint, checksums, retries,
fail-fast, logs): ``docs/architecture.md`` ("S3 stores").
"""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
import shutil
import tempfile
import urllib.parse
from collections.abc import Iterator
from typing import Any, BinaryIO

import botocore.exceptions

from jobs import errors
from jobs.store import base as store_base
from jobs.store import s3_connection, s3_errors
from jobs.store.s3_connection import READ_CHUNK, TRANSFER


class _ObjectReader(io.RawIOBase):
    """An object as a stream: one GET, and after a broken connection a ranged GET from where it broke.

    The re-request carries ``If-Match`` with the first response's ETag, so a reader never stitches
    two versions of an object together.
    """

    def __init__(self, conn: s3_connection.Connection, key: str, what: str):
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
            raise s3_errors.Truncated(f"the response ended at byte {self._pos} of {self._size}")
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

    def __init__(self, conn: s3_connection.Connection, prefix: str = ""):
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
        return cls(s3_connection.Connection(bucket, deadline_s), urllib.parse.unquote(parsed.path))

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
                code, status = s3_errors.error_code(e)
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
                code, status = s3_errors.error_code(e)
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
