"""Read and write objects by URI: a local directory now, S3-compatible buckets later.

A store is rooted at a URI (``file:///dir``, a plain path, or later ``s3://bucket/prefix``) and
addresses objects by '/'-separated names below that root. Every write is atomic: a reader sees
either the whole previous object or the whole new one, never a partial file.

This is the only module that knows how objects are kept; stages go through ``open_store``.
"""

from __future__ import annotations

import abc
import contextlib
import os
import pathlib
import shutil
import tempfile
import urllib.parse
from typing import BinaryIO, Iterator

from jobs import errors

# mkstemp creates files readable by their owner only; objects get the usual umask-based mode.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK

# Names starting with this are in-flight writes or staging areas; listings never show them.
_TMP_MARK = ".ghostbench-tmp-"


class Store(abc.ABC):
    """Objects below one root URI."""

    uri: str

    @abc.abstractmethod
    def child(self, name: str) -> "Store":
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


def _check_name(name: str) -> str:
    parts = [p for p in name.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise errors.BadInput(f"store object name {name!r}: '.' and '..' are not allowed")
    return "/".join(parts)


class FileStore(Store):
    """A directory on the local file system."""

    def __init__(self, root: pathlib.Path):
        self.root = root.resolve()
        self.uri = self.root.as_uri()

    def _path(self, name: str) -> pathlib.Path:
        name = _check_name(name)
        return self.root / name if name else self.root

    def child(self, name: str) -> "FileStore":
        return FileStore(self._path(name))

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def size(self, name: str) -> int:
        try:
            return self._path(name).stat().st_size
        except FileNotFoundError:
            raise errors.StoreError(f"{self.uri}/{name}: no such object") from None

    def list(self, prefix: str = "") -> list[str]:
        base = self._path(prefix)
        if base.is_file():
            return [_check_name(prefix)]
        if not base.is_dir():
            return []
        names = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(_TMP_MARK)]
            for f in filenames:
                if not f.startswith(_TMP_MARK):
                    names.append(pathlib.Path(dirpath, f).relative_to(self.root).as_posix())
        return sorted(names)

    def read_bytes(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            raise errors.StoreError(f"{self.uri}/{name}: no such object") from None

    def _atomic_target(self, name: str) -> tuple[pathlib.Path, pathlib.Path]:
        path = self._path(name)
        if not _check_name(name):
            raise errors.BadInput("store object name must not be empty")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TMP_MARK, dir=path.parent)
        os.fchmod(fd, _FILE_MODE)
        os.close(fd)
        return path, pathlib.Path(tmp)

    def write_bytes(self, name: str, data: bytes) -> None:
        path, tmp = self._atomic_target(name)
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @contextlib.contextmanager
    def open_read(self, name: str) -> Iterator[BinaryIO]:
        try:
            f = open(self._path(name), "rb")
        except FileNotFoundError:
            raise errors.StoreError(f"{self.uri}/{name}: no such object") from None
        with f:
            yield f

    def put_file(self, name: str, path: pathlib.Path) -> None:
        target, tmp = self._atomic_target(name)
        try:
            try:
                os.replace(path, tmp)  # same file system: a rename, no copy
            except OSError:
                shutil.copyfile(path, tmp)
            with open(tmp, "rb+") as f:
                os.fchmod(f.fileno(), _FILE_MODE)
                os.fsync(f.fileno())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def get_file(self, name: str, path: pathlib.Path) -> None:
        try:
            shutil.copyfile(self._path(name), path)
        except FileNotFoundError:
            raise errors.StoreError(f"{self.uri}/{name}: no such object") from None

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def local_path(self, name: str) -> pathlib.Path | None:
        return self._path(name)

    @contextlib.contextmanager
    def staging_dir(self) -> Iterator[pathlib.Path]:
        # Inside the store's root, so that put_file is a rename rather than a copy.
        self.root.mkdir(parents=True, exist_ok=True)
        path = pathlib.Path(tempfile.mkdtemp(prefix=_TMP_MARK + "staging-", dir=self.root))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)


def open_store(uri: str | os.PathLike) -> Store:
    """The store rooted at ``uri``: ``file:///dir``, a plain path, or (later) ``s3://bucket/prefix``."""
    text = os.fspath(uri)
    if not text:
        raise errors.BadInput("store URI is empty; expected file:///dir, a path, or s3://bucket/prefix")
    parsed = urllib.parse.urlparse(text)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise errors.BadInput(f"store URI {text!r}: file URIs must be file:///absolute/path")
        return FileStore(pathlib.Path(urllib.parse.unquote(parsed.path)))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        return FileStore(pathlib.Path(text))
    if parsed.scheme == "s3":
        raise errors.BadInput(f"store URI {text!r}: s3:// stores are not supported yet")
    raise errors.BadInput(f"store URI {text!r}: unknown scheme {parsed.scheme!r}; expected file:// or s3://")


def split_object_uri(uri: str) -> tuple[Store, str]:
    """Split the URI of one object into the store holding it and its name there."""
    text = os.fspath(uri).rstrip("/")
    parent, _, name = text.rpartition("/") if "/" in text else (".", "/", text)
    if not name:
        raise errors.BadInput(f"{uri!r}: expected the URI of an object, not of a store root")
    return open_store(parent or "/"), name
