"""The sweep file's field checks: one ``Loader`` walks the YAML tree and names the field path, what is allowed and
what was given in every error (``SpecError``, one line); ``resolve`` is the one rule for paths in a sweep file.
Used by ``controller.spec`` (the sweep) and ``controller.models_spec`` (its model section)."""

from __future__ import annotations

import dataclasses
import pathlib
import re
import urllib.parse
from typing import Any

from jobs import errors, registry


class SpecError(errors.BadInput):
    """The sweep file is malformed; the message names the field."""


class Loader:
    """Walks the YAML tree, checking each field against its dataclass."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, expected: str, given: Any, names: Any = None) -> None:
        """``names``: where a name was expected, the names meant (``backend: null`` -> ``write backend: "null"``)."""
        got = names is not None and registry.unquoted_hint(given, names, path.rsplit(".", 1)[-1]) or repr(given)
        raise SpecError(f"{self.source}: {path}: expected {expected}, got {got}")

    def obj(self, cls: type, data: Any, path: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail(path or "(top level)", "a mapping", data)
        allowed = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in allowed:
                raise SpecError(f"{self.source}: {path + '.' if path else ''}{key}: unknown field"
                                f"{registry.did_you_mean(str(key), allowed)}; "
                                f"allowed: {', '.join(allowed)}")
        for key in required:
            if key not in data:
                raise SpecError(f"{self.source}: {path + '.' if path else ''}{key}: required field is missing")
        return data

    def str_(self, data: dict, key: str, path: str, default: Any, pattern: re.Pattern | None = None,
             what: str = "a non-empty string", nullable: bool = False, names: Any = ()) -> Any:
        if key not in data:
            return default
        v = data[key]
        if v is None and nullable:
            return None
        if not isinstance(v, str) or not v or (pattern is not None and not pattern.match(v)):
            self.fail(f"{path}{key}", what, v, names)
        return v

    def int_(self, data: dict, key: str, path: str, default: Any, minimum: int = 0, nullable: bool = False):
        if key not in data:
            return default
        v = data[key]
        if v is None and nullable:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            self.fail(f"{path}{key}", f"an integer >= {minimum}" + (" or null" if nullable else ""), v)
        return v

    def float_(self, data: dict, key: str, path: str, default: Any, minimum: float = 0.0, nullable: bool = False):
        if key not in data:
            return default
        v = data[key]
        if v is None and nullable:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < minimum:
            self.fail(f"{path}{key}", f"a number >= {minimum:g}" + (" or null" if nullable else ""), v)
        return float(v)

    def bool_(self, data: dict, key: str, path: str, default: bool) -> bool:
        v = data.get(key, default)
        if not isinstance(v, bool):
            self.fail(f"{path}{key}", "true or false", v)
        return v

    def choice(self, data: dict, key: str, path: str, default: str, allowed: tuple[str, ...]) -> str:
        v = data.get(key, default)
        if v not in allowed:
            self.fail(f"{path}{key}", f"one of {', '.join(allowed)}", v, allowed)
        return v

    def uri(self, data: dict, key: str, path: str, default: Any, schemes: tuple[str, ...],
            nullable: bool = False) -> Any:
        v = self.str_(data, key, path, default, what="a URI or path", nullable=nullable)
        if v is default or v is None:
            return v
        scheme = urllib.parse.urlparse(v).scheme
        if scheme not in schemes:
            self.fail(f"{path}{key}", f"a path or a URI with scheme {', '.join(s + '://' for s in schemes if s)}", v)
        if scheme == "s3" and not urllib.parse.urlparse(v).netloc:
            self.fail(f"{path}{key}", "s3://bucket/prefix with a bucket name", v)
        return v

    def options(self, data: dict, key: str, path: str) -> dict[str, Any]:
        v = data.get(key, {})
        if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
            self.fail(f"{path}{key}", "a mapping of option names to values", v)
        return dict(v)


def resolve(uri: str | None, base_dir: pathlib.Path | None) -> str | None:
    """The one rule for every path in a sweep file (store, model.weights, dataset.images, dataset.labels, path
    options): a relative path, plain or ``file:``, is relative to the sweep file, so a spec means the same from
    any cwd. Only the default store (no ``store:`` field) is relative to the current directory."""
    if uri is None or base_dir is None:
        return uri
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file" and not parsed.netloc and not parsed.path.startswith("/"):
        return (base_dir / urllib.parse.unquote(parsed.path)).resolve().as_uri()  # file:data/x
    if parsed.scheme:
        return uri
    path = pathlib.Path(uri).expanduser()
    return str(path if path.is_absolute() else (base_dir / path).resolve())
