"""Engine builders per target, chosen by name from an explicit registry.

A converter turns the exported ``model.onnx`` into an engine for one target and batch size and
returns the record that the infer stage reads back (``engine.json``).
"""

from __future__ import annotations

import importlib
from typing import Protocol

from jobs import errors

# name -> "module:function"; each module imports its heavy libraries itself.
REGISTRY: dict[str, str] = {
    "onnxruntime": "jobs.converters.onnxruntime:convert",
    "atc": "jobs.converters.atc:convert",  # runs the CANN toolkit's atc: the ATC image
}

# Targets the design has a seam for but this version does not build yet (none at the moment).
PLANNED: dict[str, str] = {}


class Converter(Protocol):
    def __call__(self, model_path, out_dir, batch_size: int, options: dict) -> dict: ...


def names() -> list[str]:
    return sorted(REGISTRY)


def known(name: str) -> bool:
    return name in REGISTRY or name in PLANNED


def get(name: str) -> Converter:
    if name in PLANNED:
        raise errors.BadInput(f"target {name!r}: {PLANNED[name]}")
    try:
        target = REGISTRY[name]
    except KeyError:
        raise errors.BadInput(f"target {name!r} is not known; expected one of {', '.join(names())}") from None
    module_name, _, func = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise errors.MissingDependency(
            f"target {name!r} cannot be built here ({e}); install it with: pip install 'ghostbench[convert]'") from None
    return getattr(module, func)
