"""Fetch model weights, verify their checksum before anything reads them, and load them strictly.

Weights come from a plain path, a ``file://`` URI, an ``http(s)://`` URL or a store object URI. A
checksum (``md5:HEX`` or ``sha256:HEX``) is always required and checked first: a checkpoint is a
pickle, and nothing should unpickle a file nobody vouched for.
"""

from __future__ import annotations

import logging
import os
import pathlib
import pickle
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from typing import TYPE_CHECKING, Any

from jobs import errors, progress
from jobs import store as store_mod
from jobs.artifacts import commit

if TYPE_CHECKING:
    import torch

log = logging.getLogger("ghostbench")

ALGORITHMS = ("md5", "sha256")
_HEX_LEN = {"md5": 32, "sha256": 64}
_CHUNK = 1 << 20
DEFAULT_TIMEOUT_S = 60.0
# What torch.load raises for files that are not (safe) checkpoints: truncated or garbage bytes,
# a zip without the expected records, pickles naming classes outside the weights_only allow-list.
_LOAD_ERRORS = (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, TypeError, KeyError,
                AttributeError, IndexError, ImportError, zipfile.BadZipFile, OSError)
# How many offending keys an error message names before it says "and N more".
_SHOW_KEYS = 4


def parse_checksum(checksum: str, field: str = "checksum") -> tuple[str, str]:
    """``"md5:HEX"`` / ``"sha256:HEX"`` -> (algorithm, lower-case hex); anything else is bad input."""
    algo, sep, digest = (checksum or "").strip().partition(":")
    algo = algo.lower()
    digest = digest.lower()
    if not sep or algo not in ALGORITHMS:
        raise errors.BadInput(
            f"{field} {checksum!r}: expected 'md5:HEX' or 'sha256:HEX' (algorithms: {', '.join(ALGORITHMS)})"
        )
    if len(digest) != _HEX_LEN[algo] or not re.fullmatch(r"[0-9a-f]+", digest):
        raise errors.BadInput(f"{field} {checksum!r}: {algo} needs {_HEX_LEN[algo]} hex digits")
    return algo, digest


def verify(path: pathlib.Path, checksum: str, uri: str, what: str = "weights") -> None:
    """Bad input unless the file at ``path`` has ``checksum``; ``what`` and ``uri`` name it in the message."""
    algo, expected = parse_checksum(checksum)
    actual = commit.file_digest(path, algo)
    if actual != expected:
        raise errors.BadInput(f"{what} {public_uri(uri)}: {algo} is {actual}, expected {expected}")
    log.info("%s %s: %s verified", what, public_uri(uri), algo)


def public_uri(uri: str) -> str:
    """``uri`` without credentials, query string or fragment, fit for logs and records."""
    text = os.fspath(uri)
    parsed = urllib.parse.urlsplit(text)
    if not parsed.scheme or len(parsed.scheme) == 1:  # a plain path (or a Windows drive)
        return text
    netloc = parsed.hostname or ""
    if parsed.port:
        netloc += f":{parsed.port}"
    return urllib.parse.urlunsplit((parsed.scheme, netloc, parsed.path, "", ""))


def fetch(uri: str, checksum: str, dest_dir: pathlib.Path, timeout_s: float = DEFAULT_TIMEOUT_S,
          what: str = "weights") -> pathlib.Path:
    """A local path to the weights (or, with ``what``, another file: an imported ONNX model) at ``uri``, verified
    against ``checksum``; ``BadInput`` naming ``what`` when it is missing or its checksum differs.

    Local files are verified in place; downloads and remote store objects are copied into
    ``dest_dir`` (a download already there with the right checksum is reused).
    """
    parse_checksum(checksum)  # a malformed checksum fails before any transfer
    dest_dir = pathlib.Path(dest_dir)
    scheme = urllib.parse.urlsplit(os.fspath(uri)).scheme.lower()
    if scheme in ("http", "https"):
        path = _download(uri, checksum, dest_dir, timeout_s)
    else:
        path = _from_store(uri, dest_dir, what)
    verify(path, checksum, uri, what)
    return path


def _from_store(uri: str, dest_dir: pathlib.Path, what: str = "weights") -> pathlib.Path:
    store, name = store_mod.split_object_uri(uri)
    local = store.local_path(name)
    if local is not None:
        if not local.is_file():
            raise errors.BadInput(f"{what} {public_uri(uri)}: no such file")
        return local
    if not store.exists(name):
        raise errors.BadInput(f"{what} {public_uri(uri)}: no such object")
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / pathlib.PurePosixPath(name).name
    store.get_file(name, target)
    return target


def _download(url: str, checksum: str, dest_dir: pathlib.Path, timeout_s: float) -> pathlib.Path:
    name = pathlib.PurePosixPath(urllib.parse.urlsplit(url).path).name or "weights"
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / name
    shown = public_uri(url)
    if target.is_file():
        algo, expected = parse_checksum(checksum)
        if commit.file_digest(target, algo) == expected:
            log.info("weights %s: using the verified copy at %s", shown, target)
            return target
    log.info("weights %s: downloading to %s", shown, target)
    fd, tmp_name = tempfile.mkstemp(prefix=".download-", dir=dest_dir)
    tmp = pathlib.Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout_s) as response:
                    total = int(response.headers.get("Content-Length") or 0)
                    bar = progress.Progress(f"download {name} (bytes)", total, log)
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        bar.advance(len(chunk))
                    bar.finish()
            except urllib.error.HTTPError as e:
                cls = errors.BadInput if 400 <= e.code < 500 else errors.GhostbenchError
                raise cls(f"weights {shown}: HTTP {e.code} {e.reason}") from e
            except (urllib.error.URLError, OSError) as e:
                reason = getattr(e, "reason", None) or e
                raise errors.GhostbenchError(f"weights {shown}: download failed: {reason}") from e
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def load_state_dict(path: pathlib.Path) -> dict[str, torch.Tensor]:
    """The flat state_dict in the file at ``path`` (``torch.load`` with ``weights_only=True``).

    Two common wrappings are undone, with a log line: ``{"state_dict": {...}}`` and a ``module.``
    prefix on every key (from ``nn.DataParallel``). Anything else that is not a flat mapping of
    names to tensors is bad input.
    """
    import torch

    path = pathlib.Path(path)
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise errors.BadInput(f"weights {path}: no such file") from e
    except _LOAD_ERRORS as e:  # all mean "not a loadable checkpoint"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise errors.BadInput(f"weights {path}: not a PyTorch weights file ({first[:200]})") from e
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        log.info("weights %s: using the 'state_dict' entry of a wrapped checkpoint", path)
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or len(obj) == 0:
        found = "an empty dict" if isinstance(obj, dict) else f"a {type(obj).__name__}"
        raise errors.BadInput(f"weights {path}: expected a flat state_dict (a dict of tensors), found {found}")
    not_tensors = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise errors.BadInput(f"weights {path}: expected a flat state_dict; entries that are not tensors: "
                              f"{_first(not_tensors)}")
    if all(k.startswith("module.") for k in obj):
        log.info("weights %s: removing the 'module.' prefix from every key", path)
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def _first(keys: list) -> str:
    shown = ", ".join(str(k) for k in keys[:_SHOW_KEYS])
    return shown + (f" and {len(keys) - _SHOW_KEYS} more" if len(keys) > _SHOW_KEYS else "")


def apply_state_dict(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Load strictly; missing, unexpected or mis-shaped keys are bad input naming the first few."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong = [f"{k} {tuple(v.shape)} (model {tuple(expected[k].shape)})"
             for k, v in state_dict.items() if k in expected and v.shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({_first(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({_first(unexpected)})")
    if wrong:
        problems.append(f"{len(wrong)} with the wrong shape ({_first(wrong)})")
    if problems:
        raise errors.BadInput(f"weights {source} do not fit the model: {'; '.join(problems)}")
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise errors.BadInput(f"weights {source} do not fit the model: {first[:300]}") from e


def save_deterministic_weights(path: pathlib.Path, model_name: str, seed: int) -> str:
    """Write reproducible demo weights for a registered model; returns their ``"sha256:HEX"``."""
    import torch

    from jobs import models

    state_dict = models.demo_state_dict(models.get(model_name), seed)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state_dict, tmp)
    shutil.move(tmp, path)
    return "sha256:" + commit.file_digest(path, "sha256")
