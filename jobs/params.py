"""Each stage's parameters as one typed object: the contract between the planner, the executors and a stage.

One frozen dataclass per stage (``ExportParams``, ``ConvertParams``, ``PreprocessParams``,
``InferParams``, ``EvalParams``). Its fields, with their types, units and help texts, are the single
source of:

- the stage's command-line parser (``build_parser``) and its parsed value (``from_args``);
- the command a step runs, as a local process or a container's args (``argv``);
- the step's content key (``key_fields``): every field but the output location, upstream outputs
  (the upstream steps' keys stand for them) and fields marked ``key=False``;
- the Job's labels (``job_labels``).

So renaming a field or a flag here changes all of them at once, and nothing parses a command line
back. ``validate`` checks what can be checked without a device (ranges, choices, and each plugin's
own options through its registry); the planner calls it before any step starts, the stage again.
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
from jobs.data import recipe as recipe_mod
from jobs.devices import power as power_mod

P = TypeVar("P", bound="StageParams")

CONTROLLER_PID_ENV = "GHOSTBENCH_CONTROLLER_PID"
"""Set by the local executor for the step processes it starts: its pid, whose death ends the stage
(``jobs.stages.cli.die_with_controller``). Not a user setting."""

INPUT_MODES = ("float32", "uint8")
"""float32: the seed's normalized tensors; uint8: pixels, normalized inside the model (or by AIPP)."""
PIPELINES = ("seed", "opencv")
"""How preprocessing decodes and resizes: seed (PIL, the seed's pixels exactly) or opencv (faster, close)."""
PRECISIONS = ("fp32", "tf32", "fp16", "int8")
"""What a target computes in; each backend and engine target maps it onto its own switch (ONNX Runtime CUDA's
``use_tf32``, TensorRT's fp16 flag, CANN's and ATC's ``precision_mode``) and refuses what it cannot do.
int8 is reserved for calibrated engines and refused by every backend for now."""
"""How the infer stage samples device power while it times (``jobs.devices.power``): auto (NVML on cuda/tensorrt, npu-smi
on npu/cann, off elsewhere), one method by name (an error when it cannot run), or off."""
REFERENCE_KINDS = ("imagenet", "agreement")
"""imagenet: published ImageNet accuracy; agreement: the labels are a reference model's own predictions."""


def param(default: Any = dataclasses.MISSING, *, help: str, flag: str = "", metavar: str | None = None,
          choices: Sequence[Any] | None = None, key: bool = True, upstream: bool = False,
          label: str = "") -> Any:
    """A stage parameter: a dataclass field with what its flag, key and label need.

    ``help``: the flag's help text (say the unit). ``flag``: default ``--name-with-dashes``.
    ``key=False``: not part of the content key (a location, not content). ``upstream``: the URI of
    another step's committed output (its key enters this step's key instead). ``label``: the Job
    label (``ghostbench.io/<label>``) that carries this field's value.
    """
    meta = {"help": help, "flag": flag, "metavar": metavar, "choices": tuple(choices) if choices else None,
            "key": key and not upstream, "upstream": upstream, "label": label}
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


def _at_least(value: int | float | None, minimum: int | float, flag: str) -> None:
    if value is not None and value < minimum:
        raise errors.BadInput(f"{flag}: expected a number >= {minimum}, got {value}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExportParams(StageParams):
    stage: ClassVar[str] = "export"
    description: ClassVar[str] = "Verified PyTorch weights -> model.onnx (opset 11 by default), with a parity check."

    model: str = param(help="registered model name (jobs.models), e.g. ghostnet_1.0x", metavar="NAME")
    weights: str = param(help="state_dict file: a path, file:// URI, https:// URL or store object URI; only its "
                              "checksum enters the step's key, so moving the file reruns nothing",
                         metavar="URI", key=False)
    checksum: str = param(help="checksum of the weights file, md5:HEX or sha256:HEX; verified before loading",
                          metavar="ALGO:HEX")
    opset: int = param(11, help="ONNX opset to write (11: what the seed's ATC accepts)")
    input_dtype: str = param("float32", choices=INPUT_MODES, label="input-mode",
                             help="float32: normalized NCHW input (the seed's); uint8: raw NCHW pixels, "
                                  "normalization folded into the graph")
    keep_noops: bool = param(False, help="keep no-op Slice/Identity nodes as the exporter wrote them")
    parity_batch: int = param(4, metavar="N", help="images in the torch-vs-onnxruntime parity batch")

    def validate(self) -> None:
        super().validate()
        _at_least(self.opset, 7, "--opset")
        _at_least(self.parity_batch, 1, "--parity-batch")
        from jobs import models
        from jobs.models import weights

        models.get(self.model)
        weights.parse_checksum(self.checksum, "--checksum")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConvertParams(StageParams):
    stage: ClassVar[str] = "convert"
    description: ClassVar[str] = "model.onnx + engine target + batch size -> an engine for that target."

    model: str = param(help="committed output of the export stage", metavar="URI", upstream=True)
    target: str = param("onnxruntime", help="engine target (jobs.converters): onnxruntime or atc")
    batch_size: int = param(help="batch size the engine is built for (images)", label="batch-size")
    precision: str = param("fp32", choices=PRECISIONS, label="precision",
                           help="what the engine computes in (atc: --precision_mode must_keep_origin_dtype for fp32, "
                                "force_fp16 for fp16)")
    options: dict[str, Any] | None = param(None, flag="--option",
                                    help="target option (repeatable), e.g. offline_level=all; values parse as JSON")

    def validate(self) -> None:
        super().validate()
        _at_least(self.batch_size, 1, "--batch-size")
        from jobs import converters

        try:
            converters.check(self.target, self.options or {}, self.batch_size, self.precision)
        except errors.OptionError as e:
            raise errors.BadInput(f"--{'precision' if e.option == 'precision' else 'option ' + str(e.option)}: "
                                  f"{e.detail}") from e


@dataclasses.dataclass(frozen=True, kw_only=True)
class PreprocessParams(StageParams):
    stage: ClassVar[str] = "preprocess"
    description: ClassVar[str] = ("Decode, resize, crop and normalize images into one shard of model-ready arrays "
                                  "(seed step 4).")

    images: str = param(help="directory or store prefix holding the validation images (any file name; *.txt, "
                             "*.json and similar are skipped)", metavar="URI")
    labels: str = param(help="val_label.txt: lines 'ILSVRC2012_val_00000001.JPEG 65', 0-based labels", metavar="URI")
    shard: int = param(0, metavar="I", key=False, help="which shard to build (0-based); every shard's job gets the "
                                                          "same --out and commits below it")
    num_shards: int = param(1, metavar="N", help="number of shards the images are split into")
    mode: str = param("float32", choices=INPUT_MODES, label="input-mode",
                      help="float32: normalized as the seed (602,112 bytes/image); uint8: raw RGB pixels in CHW "
                           "(150,528 bytes/image), normalized later")
    images_per_part: int = param(500, metavar="K", help="rows per part-NNNNN.npy file")
    write_bin: bool = param(False, help="also write the seed's bin/<name>.bin per image and its .info file")
    skip_bad: bool = param(False, help="leave out undecodable, unlabelled or too large images (listed in index.json) "
                                       "instead of failing")
    max_pixels: int | None = param(None, metavar="PIXELS",
                                   help="refuse an image of more than this many pixels (width x height) from its "
                                        f"header, before decoding it (default and most: {recipe_mod.MAX_PIXELS:,}, "
                                        "Pillow's decompression-bomb threshold)")
    limit: int | None = param(None, metavar="K", help="use only the first K images in natural order (before "
                                                      "sharding)")
    model: str = param("ghostnet_1.0x", help="model whose preprocessing recipe to use (jobs.models)")
    pipeline: str = param("seed", choices=PIPELINES,
                          help="seed: decode and resize with PIL, bit for bit the seed's output; opencv: OpenCV's "
                               "decoder and INTER_LINEAR resize, about 2x faster, close to but not equal to the "
                               "seed's (docs/performance.md); needs ghostbench[opencv]")

    def validate(self) -> None:
        super().validate()
        _at_least(self.num_shards, 1, "--num-shards")
        if not 0 <= self.shard < self.num_shards:
            raise errors.BadInput(f"--shard {self.shard}: must be in 0..{self.num_shards - 1} for --num-shards "
                                  f"{self.num_shards}")
        _at_least(self.images_per_part, 1, "--images-per-part")
        _at_least(self.limit, 1, "--limit")
        if self.max_pixels is not None and not 1 <= self.max_pixels <= recipe_mod.MAX_PIXELS:
            raise errors.BadInput(f"--max-pixels: expected 1..{recipe_mod.MAX_PIXELS} (Pillow's decompression-bomb "
                                  f"threshold), got {self.max_pixels}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class InferParams(StageParams):
    stage: ClassVar[str] = "infer"
    description: ClassVar[str] = ("Engine + preprocessed shards + backend + batch size -> predictions and "
                                  "summary.json.")

    engine: str | None = param(None, metavar="URI", upstream=True,
                               help="committed output of the convert stage (not needed by the null backend)")
    data: str = param(metavar="URI", upstream=True, help="committed output root of the preprocess stage")
    backend: str = param("onnxruntime", help="inference backend (jobs.backends): onnxruntime, acl or null")
    device: str = param("cpu", help="device for the backend, e.g. cpu, cuda:0, npu:0")
    batch_size: int = param(help="images per batch", label="batch-size")
    precision: str = param("fp32", choices=PRECISIONS, label="precision",
                           help="what the backend computes in: fp32, tf32 (cuda), fp16 (tensorrt, cann, an fp16 .om)")
    options: dict[str, Any] | None = param(None, flag="--option",
                                    help="backend option (repeatable), e.g. intra_op_threads=2; values parse as JSON")
    target_name: str = param("", label="target", help="label of this target in reports (default: backend-device)")
    warmup: int = param(2, help="untimed batches before timing")
    min_batches: int = param(20, help="timed batches at least, in each repetition; extra passes over the data run "
                                      "until reached")
    min_seconds: float = param(2.0, help="timed compute seconds at least, in each repetition; extra passes run until "
                                         "reached")
    max_passes: int = param(100, help="upper bound on passes over the data, in each repetition")
    repetitions: int = param(5, help="timed repetitions: the first on the session of the predictions pass, each "
                                     "further one on a fresh backend session; their spread is the run's interval")
    power: str | None = param(None, choices=power_mod.MODES,
                              help="sample device power during the timed passes for joules per image: auto (the "
                                   "default: NVML on cuda/tensorrt, npu-smi on npu/cann, off on the CPU and null), "
                                   "nvml, npu-smi (an error when it cannot run) or off")
    power_interval_ms: float | None = param(None, help="power sampling interval in ms (default: 50)")

    def validate(self) -> None:
        super().validate()
        _at_least(self.batch_size, 1, "--batch-size")
        _at_least(self.warmup, 0, "--warmup")
        _at_least(self.min_batches, 1, "--min-batches")
        _at_least(self.min_seconds, 0, "--min-seconds")
        _at_least(self.max_passes, 1, "--max-passes")
        _at_least(self.repetitions, 1, "--repetitions")
        if self.power is not None and self.power not in power_mod.MODES:
            raise errors.BadInput(f"--power: expected one of {', '.join(power_mod.MODES)}, got {self.power!r}")
        _at_least(self.power_interval_ms, 1, "--power-interval-ms")
        from jobs import backends

        try:
            backends.check(self.backend, self.device, self.options or {}, self.precision)
        except errors.OptionError as e:
            where = {None: "--device", "precision": "--precision"}.get(e.option, f"--option {e.option}")
            raise errors.BadInput(f"{where}: {e.detail}") from e


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvalParams(StageParams):
    stage: ClassVar[str] = "eval"
    description: ClassVar[str] = "Predictions + labels -> accuracy.json per run, and the sweep's reports."

    runs: tuple[str, ...] = param(flag="--run", metavar="URI", upstream=True,
                                  help="committed output of an infer run (repeat for every run of the sweep)")
    data: str = param(metavar="URI", upstream=True,
                      help="committed output root of the preprocess stage (its index holds the labels)")
    model: str = param("ghostnet_1.0x", help="model name, for the published accuracy")
    reference_top1: float | None = param(None, help="reference top-1 %% (default: the model's published)")
    reference_top5: float | None = param(None, help="reference top-5 %% (default: the model's published)")
    reference_kind: str = param("imagenet", choices=REFERENCE_KINDS,
                                help="'agreement' when the labels are a reference model's own predictions")
    gate: float = param(1.0, help="points below the reference that still pass")
    allow_missing: bool = param(False, help="runs may pass the gate although the labels file names images the dataset "
                                            "lacks (a partial set, on purpose); without it they fail it")
    num_classes: int = param(1000, help="classes of the model (the seed's accuracy.json states it)")
    ratios: tuple[str, ...] = param((), flag="--ratio", metavar="A/B",
                                    help="throughput ratio of target A to target B to tabulate (repeatable; default: "
                                         "each target against the first), e.g. ascend310p/t4 as the seed's table")
    accelerators: dict[str, str] | None = param(None, flag="--accelerator", metavar="TARGET=NAME",
                                         help="the accelerator a target ran on (jobs.devices name, repeatable): its "
                                              "throughput is set beside the published figures on the same basis")
    latency_limit_ms: float | None = param(None, help="compute p99 limit (ms): the report names each target's largest "
                                                      "batch size whose p99 is at most this (default: none, not "
                                                      "computed)")
    prices: dict[str, str] | None = param(None, flag="--price", metavar="TARGET=AMOUNT:CURRENCY",
                                          help="what an hour of a target's machine costs, e.g. t4=0.35:USD "
                                               "(repeatable): the report adds the cost per million images at its best "
                                               "batch size (default: no cost)")

    def price_of(self) -> dict[str, tuple[float, str]]:
        """target -> (price per hour, currency) from ``--price`` (``BadInput`` naming the flag)."""
        return {target: parse_price(value, f"--price {target}={value}")
                for target, value in (self.prices or {}).items()}

    def validate(self) -> None:
        super().validate()
        if not self.runs:
            raise errors.BadInput("--run: at least one infer output is needed")
        if self.latency_limit_ms is not None and not self.latency_limit_ms > 0:
            raise errors.BadInput("--latency-limit-ms: expected a number of milliseconds > 0, "
                                  f"got {self.latency_limit_ms}")
        self.price_of()
        _at_least(self.gate, 0, "--gate")
        _at_least(self.num_classes, 1, "--num-classes")
        from jobs import devices

        for target, name in (self.accelerators or {}).items():
            try:
                devices.get(name)
            except errors.BadInput as e:
                raise errors.BadInput(f"--accelerator {target}={name}: {e}") from e
        for ratio in self.ratios:
            a, sep, b = ratio.partition("/")
            if not sep or not a or not b or a == b:
                raise errors.BadInput(f"--ratio {ratio!r}: expected A/B naming two different targets")


def parse_price(text: str, where: str) -> tuple[float, str]:
    """``"AMOUNT:CURRENCY"`` (``0.35:USD``) -> ``(0.35, "USD")``: an amount >= 0 per hour, a currency without spaces."""
    amount, sep, currency = str(text).partition(":")
    try:
        value = float(amount)
    except ValueError:
        value = -1.0
    if not sep or not currency or len(currency) > 16 or any(c.isspace() or c == ":" for c in currency) \
            or not value >= 0 or value == float("inf"):
        raise errors.BadInput(f"{where}: expected AMOUNT:CURRENCY, a price per hour >= 0 and a currency, "
                              "e.g. 0.35:USD")
    return value, currency


STAGES: dict[str, type[StageParams]] = {p.stage: p for p in (ExportParams, ConvertParams, PreprocessParams,
                                                              InferParams, EvalParams)}
"""Stage name -> its parameters, in pipeline order."""
