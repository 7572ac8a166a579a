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
The machinery that turns a dataclass into all of these is ``jobs.paramspec``; ``param``, ``flag_of`` and
``StageParams`` are re-exported here.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from jobs import errors, paramspec
from jobs.data import recipe as recipe_mod
from jobs.devices import power as power_mod

param = paramspec.param
flag_of = paramspec.flag_of
StageParams = paramspec.StageParams
_at_least = paramspec.at_least

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
CARD_HELP = ("the model card of a model outside the registry (repeatable; jobs.models.card.FIELDS), e.g. "
             "num_classes=1000, mean=[0.485,0.456,0.406]; values parse as JSON")
REFERENCE_KINDS = ("imagenet", "agreement")
"""imagenet: published ImageNet accuracy; agreement: the labels are a reference model's own predictions."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExportParams(StageParams):
    stage: ClassVar[str] = "export"
    description: ClassVar[str] = ("Verified PyTorch weights -> model.onnx (opset 11 by default), with a parity check; "
                                  "or an imported ONNX classifier, checked (--onnx).")

    model: str = param(help="model name: registered (jobs.models), e.g. ghostnet_1.0x, or any with --card", metavar="NAME")
    weights: str | None = param(None, help="state_dict file (not with --onnx): a path, file:// URI, https:// URL or "
                                "store object URI; only its checksum enters the key, so moving it reruns nothing",
                                metavar="URI", key=False)
    checksum: str = param(help="checksum of the weights (or --onnx) file, md5:HEX or sha256:HEX; verified before use",
                          metavar="ALGO:HEX")
    opset: int = param(11, help="ONNX opset to write (11: what the seed's ATC accepts)")
    input_dtype: str = param("float32", choices=INPUT_MODES, label="input-mode",
                             help="float32: normalized NCHW input (the seed's); uint8: raw NCHW pixels, "
                                  "normalization folded into the graph")
    keep_noops: bool = param(False, help="keep no-op Slice/Identity nodes as the exporter wrote them")
    parity_batch: int = param(4, metavar="N", help="images in the torch-vs-onnxruntime parity batch")
    onnx: str | None = param(None, metavar="URI", key=False, help="import this ONNX classifier instead of exporting "
                             "(jobs.models.onnx_import; its --checksum enters the key)")
    factory: str | None = param(None, metavar="MODULE:FUNCTION", key_when_set=True,
                                help="export the network this package.module:function returns (imported with importlib)")
    card: dict[str, Any] | None = param(None, key_when_set=True, help=CARD_HELP)

    def validate(self) -> None:
        super().validate()
        _at_least(self.opset, 7, "--opset")
        _at_least(self.parity_batch, 1, "--parity-batch")
        from jobs import models
        from jobs.models import card, weights

        if self.onnx and self.factory:
            raise errors.BadInput("--onnx, --factory: give one source of the model, not both")
        if (self.onnx or self.factory) and not self.card:
            raise errors.BadInput(f"--card: required with --{'onnx' if self.onnx else 'factory'} (num_classes, ...)")
        if bool(self.onnx) == bool(self.weights):
            raise errors.BadInput("--weights: not used with --onnx" if self.onnx else "--weights: required")
        models.resolve_card(self.model, self.card)
        if self.factory:
            card.check_factory(self.factory)
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
    model: str = param("ghostnet_1.0x", help="model whose preprocessing recipe to use (jobs.models, or --card)")
    card: dict[str, Any] | None = param(None, key_when_set=True, help=CARD_HELP)
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
        from jobs import models

        models.resolve_card(self.model, self.card).recipe(self.pipeline)


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
    devices: tuple[str, ...] = param((), flag="--devices", metavar="DEVICE",
                                     help="run on these devices of this host at once instead of --device (repeat; "
                                          "at least 2): one process each, started together, the throughputs summed "
                                          "as ais_bench --device 0,1,.. does (jobs.harness.fanout)")
    divide_input: bool = param(False, help="with --devices: each device infers its part of the images (ais_bench's "
                                           "--divide-input), not all of them")
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
        if self.divide_input and not self.devices:
            raise errors.BadInput("--divide-input: only with --devices (it divides the images among them)")
        from jobs import backends

        try:
            if self.devices:
                backends.check_devices(self.backend, self.devices, self.options or {}, self.precision)
            else:
                backends.check(self.backend, self.device, self.options or {}, self.precision)
        except errors.OptionError as e:
            where = {None: "--devices" if self.devices else "--device",
                     "precision": "--precision"}.get(e.option, f"--option {e.option}")
            raise errors.BadInput(f"{where}: {e.detail}") from e

    def run_devices(self) -> tuple[str, ...]:
        """The devices the run uses: ``devices``, else ``device`` alone."""
        return self.devices or (self.device,)


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
    label_offset: int | None = param(None, key_when_set=True, help="added to a 0-based label to get the model's class "
                                     "index (1 for 1001-class models; default: 0)")
    model_source: str | None = param(None, key_when_set=True, help="where the model came from, for the reports (e.g. "
                                     "'ONNX file, sha256:...'; default: the registry's)")
    ratios: tuple[str, ...] = param((), flag="--ratio", metavar="A/B",
                                    help="throughput ratio of target A to target B to tabulate (repeatable; default: "
                                         "each target against the first), e.g. ascend310p/t4 as the seed's table")
    accelerators: dict[str, str] | None = param(None, flag="--accelerator", metavar="TARGET=NAME",
                                         help="the accelerator a target ran on (jobs.devices name, repeatable): its "
                                              "throughput is set beside the published figures on the same basis")
    cards: dict[str, str] | None = param(None, flag="--on-card", metavar="TARGET=CARD", key_when_set=True,
                                         help="the card a target's devices sit on (jobs.devices.CARDS, repeatable; "
                                              "default: its accelerator's): how many chips make its per-card figure")
    latency_limit_ms: float | None = param(None, help="compute p99 limit (ms): the report names each target's largest "
                                                      "batch size whose p99 is at most this (default: none, not "
                                                      "computed)")
    prices: dict[str, str] | None = param(None, flag="--price", metavar="TARGET=AMOUNT:CURRENCY",
                                          help="what an hour of a target's machine costs, e.g. t4=0.35:USD "
                                               "(repeatable): the report adds the cost per million images at its best "
                                               "batch size (default: no cost)")

    def price_of(self) -> dict[str, tuple[float, str]]:
        """target -> (price per hour, currency) from ``--price`` (``BadInput`` naming the flag)."""
        from jobs.results import tables

        return {target: tables.parse_price(value, f"--price {target}={value}")
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
        _at_least(self.label_offset, 0, "--label-offset")
        from jobs import devices

        for target, name in (self.accelerators or {}).items():
            try:
                devices.get(name)
            except errors.BadInput as e:
                raise errors.BadInput(f"--accelerator {target}={name}: {e}") from e
        for target, name in (self.cards or {}).items():
            try:
                devices.get_card(name)
            except errors.BadInput as e:
                raise errors.BadInput(f"--on-card {target}={name}: {e}") from e
        for ratio in self.ratios:
            a, sep, b = ratio.partition("/")
            if not sep or not a or not b or a == b:
                raise errors.BadInput(f"--ratio {ratio!r}: expected A/B naming two different targets")


STAGES: dict[str, type[StageParams]] = {p.stage: p for p in (ExportParams, ConvertParams, PreprocessParams,
                                                              InferParams, EvalParams)}
"""Stage name -> its parameters, in pipeline order."""
