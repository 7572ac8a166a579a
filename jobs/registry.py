"""Name -> lazily imported plugin: the one helper behind every registry (backends, converters, executors, models).

A registry is an explicit dict, never a directory scan. Each entry names its implementation as
``"module:attribute"``, imported only when it is used, so a pod imports only what its stage runs, and
optionally a pure config class (importable without the plugin's library) that checks the plugin's
options without touching a device, so the planner can refuse a bad option before any step starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from collections.abc import Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from jobs import errors

T = TypeVar("T")


def load_attr(target: str, what: str, extra: str = "") -> Any:
    """The attribute named by ``"module:attribute"``, imported now.

    Raises ``MissingDependency`` (exit 3) when a third-party package the module imports is not
    installed, with the extra that installs it; ``ImportError``/``AttributeError`` for a wrong
    target inside ghostbench itself (a bug, not the user's input).
    """
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        missing = (e.name or "").split(".")[0]
        if missing in ("jobs", "controller", ""):
            raise
        hint = f"pip install 'ghostbench[{extra}]'" if extra else "reinstall ghostbench"
        raise errors.MissingDependency(f"{what} needs the Python package {missing!r}, which is not installed "
                                       f"here; install it with: {hint}") from e
    return getattr(module, attr)


def did_you_mean(given: str, allowed: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a close match among ``allowed``, else an empty string."""
    close = difflib.get_close_matches(given, list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


_YAML_READS = {type(None): ("nothing", "null, ~ and an empty value"),
               bool: ("a boolean", "yes, no, on, off, true and false"),
               int: ("a number", "1 and 0.5"), float: ("a number", "1 and 0.5")}
"""How YAML 1.1 (PyYAML's ``safe_load``) reads an unquoted scalar that is no string, and what it reads so."""


def unquoted_hint(given: Any, names: Iterable[str] = (), key: str = "") -> str:
    """For a YAML file's value where a name was expected that YAML read as no string: what was meant and how to
    write it, in place of ``repr(given)`` (``nothing: unquoted, YAML reads null as nothing; for backend null write
    backend: "null" (quoted)`` when a name in ``names``, such as the backend ``null``, reads as ``given``; else how
    YAML read it); empty when ``given`` is a string or no scalar. So a registry name that YAML reads as null, a
    boolean or a number is named, quoted, in the error instead of ``got None``."""
    if type(given) not in _YAML_READS:
        return ""
    import yaml

    what, spelled = _YAML_READS[type(given)]
    shown = "nothing" if given is None else repr(given)
    for name in names:
        try:
            read = yaml.safe_load(name)
        except yaml.YAMLError:
            continue
        if type(read) is type(given) and read == given:
            return f'{shown}: unquoted, YAML reads {name} as {what}; for {key} {name} write {key}: "{name}" (quoted)'
    return f"{shown} (YAML reads {spelled} unquoted as {what}: a name spelled so must be quoted)"


def option_detail(detail: str, options: Mapping[str, Any], option: str | None) -> str:
    """An ``OptionError``'s detail for a YAML file: where it says ``expected one of A, B, got X`` and YAML read the
    option's value as no string (null, a boolean, a number), ``got ...`` says how YAML read it and how to quote it
    (``unquoted_hint``); otherwise the detail as it is."""
    head, sep, _ = detail.rpartition(", got ")
    if not sep or not head.startswith("expected one of ") or option is None or option not in options:
        return detail
    hint = unquoted_hint(options[option], head[len("expected one of "):].split(", "), option)
    return f"{head}, got {hint}" if hint else detail


def check_option_names(options: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """``OptionError`` naming the first option not in ``allowed`` (with a did-you-mean)."""
    allowed = list(allowed)
    for name in sorted(options):
        if name not in allowed:
            raise errors.OptionError(name, f"unknown option{did_you_mean(name, allowed)}; allowed: "
                                     f"{', '.join(allowed) or 'none'}")


class PluginConfig(Protocol):
    """A plugin's pure config class: ``check`` validates without touching a device or importing the
    plugin's library, and raises ``errors.OptionError`` naming the option (None: the device)."""

    check: Any


@dataclasses.dataclass(frozen=True)
class Plugin:
    """One registry entry."""

    impl: str
    """``"module:attribute"`` of the implementation, imported when the plugin is used."""
    config: str = ""
    """``"module:class"`` of its pure config class (``PluginConfig``); empty when it takes no options."""
    extra: str = ""
    """The pip extra that installs the implementation's libraries (empty: nothing beyond ghostbench)."""


class Registry(Generic[T]):
    """Plugins of one kind (``kind`` names it in messages: "backend", "engine target", ...)."""

    def __init__(self, kind: str, plugins: dict[str, Plugin]):
        self.kind = kind
        self.plugins = plugins

    def names(self) -> list[str]:
        return sorted(self.plugins)

    def entry(self, name: str) -> Plugin:
        """The entry for ``name``; ``BadInput`` listing the known names (with a did-you-mean) otherwise."""
        try:
            return self.plugins[name]
        except KeyError as e:
            raise errors.BadInput(f"{self.kind} {name!r} is not known{did_you_mean(str(name), self.plugins)}; "
                                  f"expected one of {', '.join(self.names())}") from e

    def load(self, name: str) -> T:
        """The implementation of ``name``, imported now (``MissingDependency`` when its library is missing)."""
        plugin = self.entry(name)
        return load_attr(plugin.impl, f"{self.kind} {name!r}", plugin.extra)

    def config(self, name: str) -> PluginConfig | None:
        """The pure config class of ``name`` (None when the plugin takes no options); ``BadInput`` if unknown."""
        plugin = self.entry(name)
        return load_attr(plugin.config, f"{self.kind} {name!r}") if plugin.config else None
