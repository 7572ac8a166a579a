"""Commit a stage's output: every file first, then one manifest object last.

The manifest (``_manifest.json``) lists each file with its size and sha256, the producer, the
parameters and the timings. Its presence is the one sign that an output is finished: a stage
that died halfway left files but no manifest, and a rerun starts over.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import pathlib
import platform
import socket
import time
from collections.abc import Iterator, Sequence
from typing import Any

from jobs import errors
from jobs import store as store_mod

MANIFEST = "_manifest.json"
FORMAT_VERSION = 1
_CHUNK = 1 << 20


def file_digest(path: pathlib.Path, algo: str = "sha256") -> str:
    """The hex digest of a file's bytes (``algo``: a ``hashlib`` name), read in 1 MiB chunks."""
    digest = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(store: store_mod.Store) -> dict[str, Any] | None:
    """The committed manifest at this location, or None when nothing is committed there."""
    if not store.exists(MANIFEST):
        return None
    try:
        manifest = json.loads(store.read_text(MANIFEST))
    except (ValueError, UnicodeDecodeError):
        return None  # unreadable: treat as not committed, the stage rebuilds
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        return None
    return manifest


def require_committed(uri: str, what: str) -> tuple[store_mod.Store, dict[str, Any]]:
    """Open an upstream output; a missing manifest is bad input naming ``what`` and the URI."""
    store = store_mod.open_store(uri)
    manifest = read_manifest(store)
    if manifest is None:
        raise errors.NotCommitted(f"{what} {store.uri}: no committed output there (no {MANIFEST})")
    return store, manifest


def fingerprint(uri: str, within: store_mod.Store | None = None) -> str:
    """What a step read from the upstream output at ``uri``, in one hash: the sha256 of the committed
    manifest there, or of every manifest below it (a preprocessing root: one per shard); "" when nothing is
    committed there. A rebuilt output has a new manifest (its timings, its producer), so a new fingerprint.
    ``within``: an open store that ``uri`` may lie below (its connection is then reused)."""
    root = within.uri.rstrip("/") + "/" if within is not None else None
    store = within.child(uri[len(root):]) if within is not None and root and uri.startswith(root) \
        else store_mod.open_store(uri)
    if store.exists(MANIFEST):
        names = [MANIFEST]
    else:
        names = sorted(n for n in store.list() if n.endswith("/" + MANIFEST))
    if not names:
        return ""
    digest = hashlib.sha256()
    for name in names:
        try:
            data = store.read_bytes(name)
        except errors.StoreError:
            data = b""  # removed meanwhile: the fingerprint then matches nothing recorded
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()


def upstream_changed(manifest: dict[str, Any], uris: list[str], cache: dict[str, str] | None = None,
                     within: store_mod.Store | None = None) -> bool:
    """Whether the upstream outputs at ``uris`` are no longer those the committed output was built from
    (compared by fingerprint, whatever their URIs: a store moved elsewhere keeps its fingerprints). An
    output committed before fingerprints were recorded counts as unchanged. ``cache``: fingerprints by URI,
    filled here; ``within``: see ``fingerprint``."""
    recorded = manifest.get("upstream")
    if not isinstance(recorded, dict):
        return False
    cache = {} if cache is None else cache
    for uri in uris:
        if uri not in cache:
            cache[uri] = fingerprint(uri, within)
    return sorted(str(v) for v in recorded.values()) != sorted(cache[u] for u in uris)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def producer() -> dict[str, str]:
    from jobs import __version__

    return {
        "name": "ghostbench",
        "version": __version__,
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "pid": str(os.getpid()),
    }


class Output:
    """A stage output being built in a local staging directory, committed in one step.

    Use as ``with Output(store, stage, params) as out: ...write under out.dir...; out.record[...] = ...``.
    Leaving the block normally uploads every file, then the manifest. An exception leaves
    nothing committed (files already put stay behind but are not listed by any manifest).

    The manifest's ``upstream`` maps each upstream output the step read (``upstream``: the params'
    ``StageParams.upstream()``) to its ``fingerprint`` when the block was entered, so that the controller can tell when one was rebuilt
    since (``upstream_changed``) and rebuild this output too.
    """

    def __init__(self, store: store_mod.Store, stage: str, params: dict[str, Any], upstream: Sequence[str] = ()):
        self.store = store
        self.stage = stage
        self.params = params
        self._upstream_uris = tuple(upstream)
        self.record: dict[str, Any] = {}
        self._started = _now()
        self._t0 = time.perf_counter()
        self._staging: contextlib.AbstractContextManager[pathlib.Path] | None = None
        self.upstream: dict[str, str] = {}
        self.dir: pathlib.Path

    def __enter__(self) -> Output:
        self.upstream = {uri: fingerprint(uri) for uri in self._upstream_uris}
        self._staging = self.store.staging_dir()
        self.dir = self._staging.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._commit()
        finally:
            assert self._staging is not None
            self._staging.__exit__(exc_type, exc, tb)

    def _commit(self) -> None:
        # A rerun after a crash may find an old manifest from an earlier, different output only if
        # the location was reused; remove it first so the old manifest never covers new files.
        self.store.delete(MANIFEST)
        files = []
        for path in sorted(p for p in self.dir.rglob("*") if p.is_file()):
            name = path.relative_to(self.dir).as_posix()
            if name == MANIFEST:
                raise errors.GhostbenchError(f"stage wrote a file named {MANIFEST}, which is reserved")
            files.append({"name": name, "size": path.stat().st_size, "sha256": file_digest(path)})
            self.store.put_file(name, path)
        manifest = {
            "format": FORMAT_VERSION,
            "stage": self.stage,
            "producer": producer(),
            "params": self.params,
            "files": files,
            "timings": {
                "started": self._started,
                "finished": _now(),
                "seconds": round(time.perf_counter() - self._t0, 3),
            },
            "record": self.record,
            "upstream": self.upstream,
        }
        self.store.write_text(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def file_entry(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    for entry in manifest["files"]:
        if entry["name"] == name:
            return entry
    raise errors.BadInput(f"committed output has no file {name!r} (files: {len(manifest['files'])})")


def _mismatch(store: store_mod.Store, name: str, what: str) -> errors.StoreError:
    return errors.StoreError(f"{store.uri}/{name}: {what} does not match the manifest (the object was changed or "
                             f"corrupted after it was committed); `ghostbench run --verify` rebuilds it")


def sha256_object(store: store_mod.Store, name: str) -> tuple[str, int]:
    """(sha256, size) of a stored object, streamed: memory stays at one chunk."""
    digest = hashlib.sha256()
    size = 0
    with store.open_read(name) as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def verify_file(store: store_mod.Store, manifest: dict[str, Any], name: str) -> None:
    """Check one committed object against its manifest entry (size, then sha256, streamed)."""
    entry = file_entry(manifest, name)
    digest, size = sha256_object(store, name)
    if size != entry["size"]:
        raise _mismatch(store, name, f"size {size}")
    if digest != entry["sha256"]:
        raise _mismatch(store, name, "sha256")


def read_verified(store: store_mod.Store, manifest: dict[str, Any], name: str) -> bytes:
    """A small committed object's bytes, checked against its manifest's sha256."""
    entry = file_entry(manifest, name)
    data = store.read_bytes(name)
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise _mismatch(store, name, "sha256")
    return data


def corrupted_files(store: store_mod.Store, manifest: dict[str, Any]) -> list[str]:
    """Names of the committed files that are missing or differ from the manifest (reads every byte)."""
    bad = []
    for entry in manifest["files"]:
        try:
            digest, size = sha256_object(store, entry["name"])
        except errors.StoreError:
            bad.append(entry["name"])
            continue
        if size != entry["size"] or digest != entry["sha256"]:
            bad.append(entry["name"])
    return bad


def uncommit(store: store_mod.Store) -> None:
    """Remove the manifest: the output counts as not committed, and its stage rebuilds it."""
    store.delete(MANIFEST)


@contextlib.contextmanager
def local_copy(store: store_mod.Store, manifest: dict[str, Any], name: str) -> Iterator[pathlib.Path]:
    """A local path to a committed file, checked against the manifest's sha256.

    On a local store that is the file itself; on a remote one a verified copy in a staging
    directory, removed when the block ends (so keep the block open while the file is in use).
    """
    entry = file_entry(manifest, name)
    path = store.local_path(name)
    if path is not None:
        if not path.is_file():
            raise errors.StoreError(f"{store.uri}/{name}: no such object")
        if file_digest(path) != entry["sha256"]:
            raise _mismatch(store, name, "sha256")
        yield path
        return
    with store.staging_dir() as tmp:
        target = tmp / pathlib.PurePosixPath(name).name
        store.get_file(name, target)
        if file_digest(target) != entry["sha256"]:
            raise _mismatch(store, name, "sha256")
        yield target
