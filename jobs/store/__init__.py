"""Read and write objects by URI: a local directory or an S3-compatible bucket.

A store is rooted at a URI (``file:///dir``, a plain path, or ``s3://bucket/prefix``) and
addresses objects by '/'-separated names below that root. Every write is atomic: a reader sees
either the whole previous object or the whole new one, never a partial object.

This package is the only code that knows how objects are kept; stages go through ``open_store``.
``local`` holds the directory store, ``s3`` the bucket store (the only module that imports boto3).
"""

from __future__ import annotations

import abc
import contextlib
import os
import pathlib
import urllib.parse
from collections.abc import Iterator
from typing import BinaryIO

from jobs import errors

# Names starting with this are in-flight writes or staging areas; listings never show them.
TMP_MARK = ".ghostbench-tmp-"
_TMP_MARK = TMP_MARK  # the name this module had before it became a package


class Store(abc.ABC):
    """Objects below one root URI."""

    uri: str

    @abc.abstractmethod
    def child(self, name: str) -> Store:
        """The store rooted at ``name`` below this one."""

    @abc.abstractmethod
    def exists(self, name: str) -> bool: ...

    @abc.abstractmethod
    def size(self, name: str) -> int: ...

    @abc.abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Names of all objects below ``prefix`` (recursively), relative to this root, sorted."""

    @abc.abstractmethod
    def read_bytes(self, name: str) -> bytes: ...

    @abc.abstractmethod
    def write_bytes(self, name: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def open_read(self, name: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """A binary stream over the object, for reading large objects piece by piece."""

    @abc.abstractmethod
    def put_file(self, name: str, path: pathlib.Path) -> None:
        """Store a local file as ``name``; the local file may be moved away."""

    @abc.abstractmethod
    def get_file(self, name: str, path: pathlib.Path) -> None:
        """Copy the object to a local file."""

    @abc.abstractmethod
    def delete(self, name: str) -> None:
        """Delete one object (no error if it is already gone)."""

    @abc.abstractmethod
    def local_path(self, name: str) -> pathlib.Path | None:
        """The object's path on this machine's file system, where it has one."""

    @abc.abstractmethod
    @contextlib.contextmanager
    def staging_dir(self) -> Iterator[pathlib.Path]:
        """A scratch directory for building outputs before they are put, removed afterwards."""

    def read_text(self, name: str) -> str:
        return self.read_bytes(name).decode("utf-8")

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode("utf-8"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


def check_name(name: str) -> str:
    """``name`` normalized ('a//b/' -> 'a/b'); '.' and '..' are bad input."""
    parts = [p for p in name.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise errors.BadInput(f"store object name {name!r}: '.' and '..' are not allowed")
    return "/".join(parts)


_check_name = check_name


def open_store(uri: str | os.PathLike) -> Store:
    """The store rooted at ``uri``: ``file:///dir``, a plain path, or ``s3://bucket/prefix``.

    Opening does no I/O; an S3 store checks its bucket and credentials on its first request.
    """
    text = os.fspath(uri)
    if not text:
        raise errors.BadInput("store URI is empty; expected file:///dir, a path, or s3://bucket/prefix")
    parsed = urllib.parse.urlparse(text)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise errors.BadInput(f"store URI {text!r}: file URIs must be file:///absolute/path")
        return local.FileStore(pathlib.Path(urllib.parse.unquote(parsed.path)))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        return local.FileStore(pathlib.Path(text))
    if parsed.scheme == "s3":
        try:
            from jobs.store import s3
        except ModuleNotFoundError as e:
            if e.name and e.name.split(".")[0] in ("boto3", "botocore", "s3transfer"):
                raise errors.MissingDependency(
                    f"s3:// stores need {e.name.split('.')[0]!r}; install ghostbench[s3]") from None
            raise
        return s3.S3Store.from_uri(text)
    raise errors.BadInput(f"store URI {text!r}: unknown scheme {parsed.scheme!r}; expected file:// or s3://")


def split_object_uri(uri: str) -> tuple[Store, str]:
    """Split the URI of one object into the store holding it and its name there."""
    text = os.fspath(uri).rstrip("/")
    parsed = urllib.parse.urlparse(text)
    if parsed.scheme and len(parsed.scheme) > 1 and not parsed.path.strip("/"):
        raise errors.BadInput(f"{uri!r}: expected the URI of an object, not of a store root")
    parent, _, name = text.rpartition("/") if "/" in text else (".", "/", text)
    if not name:
        raise errors.BadInput(f"{uri!r}: expected the URI of an object, not of a store root")
    return open_store(parent or "/"), name


# The directory store is always there (no extra dependency); imported last, since it subclasses Store.
from jobs.store import local

FileStore = local.FileStore
