"""The ``Store`` interface every store implements, and the object-name rules they share."""

from __future__ import annotations

import abc
import contextlib
import os
import pathlib
import re
import shutil
import socket
import time
from collections.abc import Iterator
from typing import BinaryIO

from jobs import errors

# Names starting with this are in-flight writes or staging areas; listings never show them.
TMP_MARK = ".ghostbench-tmp-"
STALE_TMP_AGE_S = 24 * 3600.0
"""A temporary name whose writer cannot be checked (another host, or a name without a writer) is left
alone until nothing below it has changed for this long."""
_WRITER = re.compile(r"^(?:staging-)?(\d+)@([A-Za-z0-9._-]+)\.[A-Za-z0-9_]+$")


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

    def create_exclusive(self, name: str, data: bytes) -> bool:
        """Write the object only if there is none under ``name``, atomically: True when this call created it,
        False when an object was already there. Implementations do it in one step (a directory: a hard link of
        a complete temporary file; S3: a conditional PUT); this default is the fallback for a store that has
        no such step: check, write, read back (two writers racing within a moment can both believe they won)."""
        if self.exists(name):
            return False
        self.write_bytes(name, data)
        return self.read_bytes(name) == data

    def clean_stale_tmp(self, prefix: str = "", recursive: bool = True) -> list[str]:
        """Remove the temporary objects and staging folders (``TMP_MARK`` names) below ``prefix`` that their
        writers left behind: the writer's pid (in the name) is not running on this host, or, where that
        cannot be told, nothing below them changed for ``STALE_TMP_AGE_S``. Returns their names. A store
        that keeps no temporary objects (S3: each PUT is atomic) has nothing to remove."""
        return []

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


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "localhost"


def tmp_prefix(kind: str = "") -> str:
    """The prefix of a temporary name this process makes (``kind``: "" or "staging-"): it carries the
    writer's pid and host, ``.ghostbench-tmp-[staging-]<pid>@<host>.``, so that leftovers of a writer that
    died can be told from the work of one still running (``clean_stale_tmp``)."""
    return f"{TMP_MARK}{kind}{os.getpid()}@{_host()}."


def tmp_writer(name: str) -> tuple[int, str] | None:
    """(pid, host) of the process that made the temporary name ``name``, or None when it does not say."""
    if not name.startswith(TMP_MARK):
        return None
    m = _WRITER.match(name[len(TMP_MARK):])
    return (int(m.group(1)), m.group(2)) if m else None


def pid_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, Linux), to tell a reused pid; None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()
    except (OSError, IndexError):
        return None


def pid_alive(pid: int, started: str | None = None) -> bool:
    """Whether process ``pid`` runs on this host (a zombie does not; with ``started``, a pid reused by another
    process does not either)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                return False
    except (OSError, IndexError):
        pass
    return not (started and pid_start(pid) not in (None, started))


def _newest_mtime(path: pathlib.Path) -> float:
    try:
        newest = path.lstat().st_mtime
    except OSError:
        return 0.0
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirnames, filenames in os.walk(path):
            for n in (*dirnames, *filenames):
                with contextlib.suppress(OSError):
                    newest = max(newest, os.lstat(os.path.join(dirpath, n)).st_mtime)
    return newest


def is_stale_tmp(path: pathlib.Path, max_age_s: float = STALE_TMP_AGE_S) -> bool:
    """Whether the temporary file or folder ``path`` was left by a writer that is gone (see ``tmp_prefix``)."""
    writer = tmp_writer(path.name)
    if writer is not None and writer[1] == _host():
        return not pid_alive(writer[0])
    return time.time() - _newest_mtime(path) > max_age_s


def remove_stale_tmp(directory: pathlib.Path, recursive: bool = True,
                     max_age_s: float = STALE_TMP_AGE_S) -> list[pathlib.Path]:
    """Remove the stale temporary files and folders (``is_stale_tmp``) in ``directory`` (and below it when
    ``recursive``, never inside a temporary folder); what cannot be removed (another user's) is left."""
    removed: list[pathlib.Path] = []
    if not directory.is_dir():
        return removed
    for dirpath, dirnames, filenames in os.walk(directory):
        for n in (*dirnames, *filenames):
            path = pathlib.Path(dirpath, n)
            if not n.startswith(TMP_MARK) or not is_stale_tmp(path, max_age_s):
                continue
            try:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except FileNotFoundError:
                continue
            except OSError:
                continue
            removed.append(path)
        dirnames[:] = [d for d in dirnames if not d.startswith(TMP_MARK)] if recursive else []
    return removed
