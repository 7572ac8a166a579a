"""Engine builders per target, chosen by name from an explicit registry.

A converter turns the exported ``model.onnx`` into an engine for one target and batch size and
returns its ``records.EngineRecord``, which the convert stage writes as ``engine.json`` and the infer stage
reads back. Each target's options are
checked by its pure config class (``check(options, batch_size)``) before anything is built, by the
planner as well as by the stage.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from jobs import errors, registry
from jobs.artifacts import records


class Converter(Protocol):
    """``normalization``: the model's (mean, std) on the 0..1 scale, from its export record (ATC's AIPP applies it);
    None: the seed's GhostNet recipe. ``model_name``: the export record's model, for an engine file named after it
    (ATC's ``<model>_bsN.om``); None: the seed's."""

    def __call__(self, model_path: pathlib.Path, out_dir: pathlib.Path, batch_size: int,
                 options: dict[str, Any], precision: str,
                 normalization: tuple[Sequence[float], Sequence[float]] | None = None,
                 model_name: str | None = None) -> records.EngineRecord: ...


REGISTRY: registry.Registry[Converter] = registry.Registry("engine target", {
    "onnxruntime": registry.Plugin("jobs.converters.onnxruntime:convert",
                                   "jobs.converters.onnxruntime:EngineOptions", extra="convert"),
    # runs the CANN toolkit's atc: the ATC image
    "atc": registry.Plugin("jobs.converters.atc:convert", "jobs.converters.atc:AtcOptions", extra="convert"),
})


def check(name: str, options: Mapping[str, Any], batch_size: int, precision: str = "fp32") -> Any:
    """The target's options, checked without building anything (``BadInput``/``errors.OptionError``;
    ``option`` ``"precision"`` names the precision)."""
    config = REGISTRY.config(name)
    assert config is not None  # every target has options
    return config.check(options, batch_size, precision)


def check_opset(name: str, options: Mapping[str, Any], opset: int) -> None:
    """``errors.OptionError`` (option ``"opset"``) when engine target ``name`` with ``options`` cannot take a model of
    ONNX ``opset``: ATC takes 9 to 13 (its ``max_opset`` option: up to 18 for CANN 7+), ONNX Runtime 7 and later."""
    low, high = REGISTRY.config(name).opsets(options)
    if opset < low or (high is not None and opset > high):
        allowed = f"{low} to {high}" if high is not None else f"{low} and later"
        hint = " (convert_options.max_opset: up to 18 for CANN 7 and later)" if name == "atc" else ""
        raise errors.OptionError("opset", f"engine target {name} takes ONNX opset {allowed}{hint}, got {opset}")
