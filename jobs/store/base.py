"""The ``Store`` interface every store implements, and the object-name rules they share."""

from __future__ import annotations

import abc
import contextlib
import pathlib
from collections.abc import Iterator
from typing import BinaryIO

from jobs import errors

# Names starting with this are in-flight writes or staging areas; listings never show them.
TMP_MARK = ".ghostbench-tmp-"


class Store(abc.ABC):
    """Objects below one root URI.

    Errors every implementation raises: ``errors.StoreError`` (exit 1) when an object is missing or the
    store cannot be read or written; ``errors.BadInput`` (exit 2) for a bad object name ('.', '..') and,
    on S3, for wrong credentials, a missing bucket or an endpoint that does not answer. Each message is
    one line naming the object or the store; the cause is chained.
    """

    uri: str

    @abc.abstractmethod
    def child(self, name: str) -> Store:
        """The store rooted at ``name`` below this one."""

    @abc.abstractmethod
    def exists(self, name: str) -> bool:
        """Whether an object ``name`` exists (a folder of objects does not count)."""

    @abc.abstractmethod
    def size(self, name: str) -> int:
        """The object's size in bytes; ``StoreError`` when there is none."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Names of all objects below ``prefix`` (recursively), relative to this root, sorted."""

    @abc.abstractmethod
    def read_bytes(self, name: str) -> bytes:
        """The whole object (small objects only: use ``open_read`` for large ones); ``StoreError`` when missing."""

    @abc.abstractmethod
    def write_bytes(self, name: str, data: bytes) -> None:
        """Write the object atomically: readers see the old object or the new one, never a part."""

    @abc.abstractmethod
    def open_read(self, name: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """A binary stream over the object, for reading large objects piece by piece; ``StoreError`` when missing."""

    @abc.abstractmethod
    def put_file(self, name: str, path: pathlib.Path) -> None:
        """Store a local file as ``name``; the local file may be moved away."""

    @abc.abstractmethod
    def get_file(self, name: str, path: pathlib.Path) -> None:
        """Copy the object to a local file; ``StoreError`` when missing."""

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
