"""A directory on the local file system as a store: atomic writes by temporary file, fsync, rename."""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from jobs import errors
from jobs.store import base

# mkstemp creates files readable by their owner only; objects get the usual umask-based mode.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK



def _write_durably(f: BinaryIO, data: bytes) -> None:
    """Write ``data`` and make it reach the disk before the file is renamed or linked into place."""
    f.write(data)
    f.flush()
    os.fsync(f.fileno())


class FileStore(base.Store):
    """A directory on the local file system."""

    def __init__(self, root: pathlib.Path):
        self.root = root.resolve()
        self.uri = self.root.as_uri()

    def _path(self, name: str) -> pathlib.Path:
        name = base.check_name(name)
        return self.root / name if name else self.root

    def child(self, name: str) -> FileStore:
        return FileStore(self._path(name))

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def size(self, name: str) -> int:
        try:
            return self._path(name).stat().st_size
        except FileNotFoundError as e:
            raise errors.StoreError(f"{self.uri}/{name}: no such object") from e

    def list(self, prefix: str = "") -> list[str]:
        top = self._path(prefix)
        if top.is_file():
            return [base.check_name(prefix)]
        if not top.is_dir():
            return []
        names = []
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if not d.startswith(base.TMP_MARK)]
            for f in filenames:
                if not f.startswith(base.TMP_MARK):
                    names.append(pathlib.Path(dirpath, f).relative_to(self.root).as_posix())
        return sorted(names)

    def read_bytes(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError as e:
            raise errors.StoreError(f"{self.uri}/{name}: no such object") from e

    def _atomic_target(self, name: str) -> tuple[pathlib.Path, pathlib.Path]:
        path = self._path(name)
        if not base.check_name(name):
            raise errors.BadInput("store object name must not be empty")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=base.tmp_prefix(), dir=path.parent)
        os.fchmod(fd, _FILE_MODE)
        os.close(fd)
        return path, pathlib.Path(tmp)

    def write_bytes(self, name: str, data: bytes) -> None:
        path, tmp = self._atomic_target(name)
        try:
            with open(tmp, "wb") as f:
                _write_durably(f, data)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @contextlib.contextmanager
    def open_read(self, name: str) -> Iterator[BinaryIO]:
        try:
            f = open(self._path(name), "rb")  # noqa: SIM115 (closed by the with below)
        except FileNotFoundError as e:
            raise errors.StoreError(f"{self.uri}/{name}: no such object") from e
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
        except FileNotFoundError as e:
            raise errors.StoreError(f"{self.uri}/{name}: no such object") from e

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def local_path(self, name: str) -> pathlib.Path | None:
        return self._path(name)

    @contextlib.contextmanager
    def staging_dir(self) -> Iterator[pathlib.Path]:
        # Inside the store's root, so that put_file is a rename rather than a copy.
        self.root.mkdir(parents=True, exist_ok=True)
        path = pathlib.Path(tempfile.mkdtemp(prefix=base.tmp_prefix("staging-"), dir=self.root))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def create_exclusive(self, name: str, data: bytes) -> bool:
        # A complete temporary file, hard-linked to the name: link() fails if the name exists, and a reader
        # never sees a partial object. Where the file system has no hard links, O_EXCL (a reader may then
        # briefly see an empty or partial object).
        path, tmp = self._atomic_target(name)
        try:
            with open(tmp, "wb") as f:
                _write_durably(f, data)
            try:
                os.link(tmp, path)
                return True
            except FileExistsError:
                return False
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise errors.StoreError(f"{self.uri}/{name}: cannot create: {e}") from e
        finally:
            tmp.unlink(missing_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            _write_durably(f, data)
        return True

    def clean_stale_tmp(self, prefix: str = "", recursive: bool = True) -> list[str]:
        top = self._path(prefix)
        return [p.relative_to(self.root).as_posix() for p in base.remove_stale_tmp(top, recursive)]
