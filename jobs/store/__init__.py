"""Read and write objects by URI: a local directory or an S3-compatible bucket.

A store is rooted at a URI (``file:///dir``, a plain path, or ``s3://bucket/prefix``) and
addresses objects by '/'-separated names below that root. Every write is atomic: a reader sees
either the whole previous object or the whole new one, never a partial object.

This package is the only code that knows how objects are kept; stages go through ``open_store``.
``local`` holds the directory store, ``s3`` the bucket store (the only module that imports boto3).
"""

from __future__ import annotations

import os
import pathlib
import urllib.parse

from jobs import errors
from jobs.store import base, local

Store = base.Store
TMP_MARK = base.TMP_MARK
check_name = base.check_name


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
                    f"s3:// stores need {e.name.split('.')[0]!r}; install ghostbench[s3]") from e
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

