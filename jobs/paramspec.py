"""How a stage's parameters dataclass becomes its command line, its content key and its Job labels.

The machinery behind ``jobs.params`` (which holds each stage's parameters and re-exports ``param``, ``flag_of`` and
``StageParams``): ``param`` declares a field with its flag, help, key and label; ``StageParams`` builds the parser
(``build_parser``), parses (``from_args``, ``parse``), writes the arguments back (``argv``, ``command``) and gives the
step's ``key_fields``, ``upstream`` outputs and ``job_labels``. Nothing here knows a stage.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import typing
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from jobs import errors

P = TypeVar("P", bound="StageParams")


def param(default: Any = dataclasses.MISSING, *, help: str, flag: str = "", metavar: str | None = None,
          choices: Sequence[Any] | None = None, key: bool = True, upstream: bool = False,
          label: str = "", key_when_set: bool = False) -> Any:
    """A stage parameter: a dataclass field with what its flag, key and label need.

    ``help``: the flag's help text (say the unit). ``flag``: default ``--name-with-dashes``.
    ``key=False``: not part of the content key (a location, not content). ``upstream``: the URI of
    another step's committed output (its key enters this step's key instead). ``label``: the Job
    label (``ghostbench.io/<label>``) that carries this field's value. ``key_when_set``: in the key only when not
    None (a field added later leaves the keys of steps that do not use it as they were).
    """
    meta = {"help": help, "flag": flag, "metavar": metavar, "choices": tuple(choices) if choices else None,
            "key": key and not upstream, "upstream": upstream, "label": label, "key_when_set": key_when_set}
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples and default_factory-free immutable defaults")  # a bug in this module
    return dataclasses.field(default=default, metadata=meta)


def flag_of(f: dataclasses.Field) -> str:
    """The command-line flag of a params field (``--batch-size`` for ``batch_size``, or its own ``flag``)."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    # cached: with postponed annotations every call compiles each annotation again (1 ms a step's command)
    return typing.get_type_hints(cls)


def _base_type(tp: Any) -> tuple[Any, bool]:
    """``(T, optional)`` for ``T | None`` or ``T``."""
    args = typing.get_args(tp)
    if type(None) in args and len(args) == 2:
        return next(a for a in args if a is not type(None)), True
    return tp, False


def _parse_pairs(pairs: Sequence[str], flag: str, json_values: bool) -> dict[str, Any]:
    """``["a=1", "b=x"]`` from a repeatable flag; with ``json_values`` values parse as JSON where they can."""
    out: dict[str, Any] = {}
    for pair in pairs:
        k, sep, v = pair.partition("=")
        if not sep or not k:
            raise errors.BadInput(f"{flag} {pair!r}: expected KEY=VALUE")
        if json_values:
            try:
                out[k] = json.loads(v)
            except ValueError:
                out[k] = v
        else:
            out[k] = v
    return out


@dataclasses.dataclass(frozen=True, kw_only=True)
class StageParams:
    """What every stage takes: where its output is committed."""

    stage: ClassVar[str] = ""
    """The stage's name: its module is ``jobs.stages.<stage>``."""
    description: ClassVar[str] = ""

    out: str = param(help="store location for this stage's output (a path, file:///dir, or s3://bucket/prefix)",
                     metavar="URI", key=False)

    def __post_init__(self) -> None:
        # one value, one form: an empty mapping is "none given" (None), a list is a tuple
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, dict) and not v:
                object.__setattr__(self, f.name, None)
            elif isinstance(v, list):
                object.__setattr__(self, f.name, tuple(v))

    # -- the command line -------------------------------------------------------------------------

    @classmethod
    def build_parser(cls) -> argparse.ArgumentParser:
        """The stage's parser: one flag per field, plus ``--force`` and ``--quiet`` (how to run, not what)."""
        p = argparse.ArgumentParser(prog=f"python -m jobs.stages.{cls.stage}", description=cls.description)
        hints = _hints(cls)
        for f in cls._ordered_fields():
            tp, optional = _base_type(hints[f.name])
            meta = f.metadata
            kwargs: dict[str, Any] = {"dest": f.name, "help": meta["help"]}
            required = f.default is dataclasses.MISSING
            if tp is bool:
                kwargs.update(action="store_true")
            elif typing.get_origin(tp) in (tuple, dict):
                kwargs.update(action="append", metavar=meta["metavar"] or ("KEY=VALUE" if typing.get_origin(tp) is dict
                                                                           else "VALUE"))
            else:
                kwargs.update(type=tp, metavar=meta["metavar"])
                if meta["choices"]:
                    kwargs["choices"] = meta["choices"]
            if not required and tp is not bool and f.default not in (None, ()):
                kwargs["help"] += f" (default: {f.default})"
            if required:
                kwargs["required"] = True
            else:
                kwargs["default"] = None if typing.get_origin(tp) in (tuple, dict) else f.default
            p.add_argument(flag_of(f), **kwargs)
        p.add_argument("--force", action="store_true", help="rebuild even when a committed output already exists at --out")
        p.add_argument("--quiet", action="store_true", help="log warnings and errors only")
        return p

    @classmethod
    def from_args(cls: type[P], ns: argparse.Namespace) -> P:
        """The parameters from a parsed command line, validated (``BadInput`` naming the flag)."""
        hints = _hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            tp, _ = _base_type(hints[f.name])
            v = getattr(ns, f.name)
            if typing.get_origin(tp) is tuple:
                v = tuple(v or ())
            elif typing.get_origin(tp) is dict:
                v = _parse_pairs(v or (), flag_of(f), json_values=typing.get_args(tp)[1] is Any)
            values[f.name] = v
        params = cls(**values)
        params.validate()
        return params

    @classmethod
    def parse(cls: type[P], argv: Sequence[str]) -> P:
        """``from_args(build_parser().parse_args(argv))``: the inverse of ``argv``."""
        return cls.from_args(cls.build_parser().parse_args(list(argv)))

    def argv(self, overrides: Mapping[str, str] | None = None) -> list[str]:
        """The stage's arguments for these parameters: every field that is set, ``--out`` last.

        ``overrides`` replaces a field's value by a literal (a Job passes ``$(JOB_COMPLETION_INDEX)`` as
        ``--shard``, which Kubernetes expands per pod).
        """
        hints = _hints(type(self))
        args: list[str] = []
        for f in self._ordered_fields():
            v = getattr(self, f.name)
            tp, _ = _base_type(hints[f.name])
            flag = flag_of(f)
            if overrides and f.name in overrides:
                args += [flag, overrides[f.name]]
                continue
            if v is None or v is False:
                continue
            if v is True:
                args.append(flag)
            elif typing.get_origin(tp) is tuple:
                for item in v:
                    args += [flag, str(item)]
            elif typing.get_origin(tp) is dict:
                json_values = typing.get_args(tp)[1] is Any
                for k in sorted(v):
                    args += [flag, f"{k}={json.dumps(v[k]) if json_values else v[k]}"]
            else:
                args += [flag, str(v)]
        return args

    def command(self, overrides: Mapping[str, str] | None = None) -> list[str]:
        """``python``'s arguments that run this step: ``-m jobs.stages.<stage> ...``."""
        return ["-m", f"jobs.stages.{self.stage}", *self.argv(overrides)]

    @classmethod
    def _ordered_fields(cls) -> list[dataclasses.Field]:
        fields = [f for f in dataclasses.fields(cls) if f.name != "out"]
        return fields + [f for f in dataclasses.fields(cls) if f.name == "out"]

    # -- the plan's view ---------------------------------------------------------------------------

    def key_fields(self, exclude: Sequence[str] = ()) -> dict[str, Any]:
        """The fields that enter the step's content key (JSON-ready): not ``out``, not upstream outputs."""
        out = {}
        for f in dataclasses.fields(self):
            if f.metadata["key"] and f.name not in exclude:
                v = getattr(self, f.name)
                if v is None and f.metadata.get("key_when_set"):
                    continue
                out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def upstream(self) -> list[str]:
        """The URIs of the committed outputs this step reads."""
        found: list[str] = []
        for f in dataclasses.fields(self):
            if f.metadata["upstream"]:
                v = getattr(self, f.name)
                found += list(v) if isinstance(v, tuple) else ([v] if v else [])
        return found

    def sources(self) -> list[str]:
        """The URIs of what this step reads from outside the store (its ``URI`` flags that are not upstream
        outputs: weights, an ONNX file, images, labels)."""
        found: list[str] = []
        for f in dataclasses.fields(self):
            if f.metadata["metavar"] == "URI" and not f.metadata["upstream"] and f.name != "out":
                v = getattr(self, f.name)
                found += [v] if isinstance(v, str) and v else []
        return found

    def job_labels(self) -> dict[str, str]:
        """``label -> value`` for the fields that carry a Job label (``ghostbench.io/<label>``)."""
        return {f.metadata["label"]: str(getattr(self, f.name)) for f in dataclasses.fields(self)
                if f.metadata["label"] and getattr(self, f.name) is not None}

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready: what the step's record in ``plan.json`` and the manifest's params hold."""
        return {f.name: (list(v) if isinstance(v, tuple) else v)
                for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}

    @classmethod
    def from_dict(cls: type[P], data: dict[str, Any]) -> P:
        """The inverse of ``to_dict``."""
        hints = _hints(cls)
        values = {}
        for f in dataclasses.fields(cls):
            if f.name in data:
                v = data[f.name]
                tp, _ = _base_type(hints[f.name])
                values[f.name] = tuple(v) if typing.get_origin(tp) is tuple and v is not None else v
        return cls(**values)

    def validate(self) -> None:
        """Check what needs no device and no input; ``BadInput`` naming the flag. Stages extend it."""
        if not self.out:
            raise errors.BadInput("--out: expected a store location")


def at_least(value: int | float | None, minimum: int | float, flag: str) -> None:
    if value is not None and value < minimum:
        raise errors.BadInput(f"{flag}: expected a number >= {minimum}, got {value}")
