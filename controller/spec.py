"""The sweep file: one YAML document describing a whole sweep, validated on load.

Every error names the field path, what is allowed and what was given, in one line, e.g.
``sweep.yaml: targets[0].batch_sizes: expected a non-empty list of integers >= 1, got []``.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import re
from typing import Any

import yaml

from controller import models_spec, spec_fields
from jobs import backends, converters, devices, errors, params, registry
from jobs.data import recipe

DEFAULT_BATCH_SIZES = (1, 4, 8, 16, 32)
MAX_BATCH_SIZE = 1_000_000
"""The largest batch size a sweep may ask for: far above any engine's (a batch of a million 224x224 images is
600 GB), and it keeps a batch size a valid Kubernetes label value (at most 63 characters)."""
INPUT_MODES = params.INPUT_MODES
DEFAULT_STORE = "ghostbench-store"


SpecError = spec_fields.SpecError
_Loader = spec_fields.Loader
_resolve = spec_fields.resolve


ModelSpec = models_spec.ModelSpec


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    images: str
    """Folder or store prefix with the validation images."""
    labels: str
    """``val_label.txt``: lines ``<image> <0-based label>``, an image by its file name or its path below images."""
    limit: int | None = None
    """Use only the first N images in natural-sort order (None: all)."""
    shards: int = 1
    """Preprocessing shards (pods or processes that split the images)."""
    skip_bad: bool = False
    """Continue without undecodable, unlabelled or too large images instead of failing (the report counts them)."""
    pipeline: str = "seed"
    """seed: PIL, bit for bit the seed's tensors; opencv: about 2x faster, close but not equal."""
    allow_missing: bool = False
    """The labels file may name images that ``images`` lacks (a partial set, on purpose); else runs fail the gate."""
    max_pixels: int | None = None
    """Refuse larger images (width x height), from their header (None and most: ``jobs.data.recipe.MAX_PIXELS``)."""


@dataclasses.dataclass(frozen=True)
class TargetSpec:
    name: str
    """Label of this target in reports, unique in the sweep (e.g. ``ort-cpu-fp32``)."""
    backend: str = "onnxruntime"
    """Inference backend (``jobs.backends``)."""
    device: str = "cpu"
    """Device for the backend: cpu, cuda:0, ..."""
    engine: str = "onnxruntime"
    """Engine target for the convert stage (``jobs.converters``)."""
    input_mode: str = "float32"
    """float32 (the seed's tensors) or uint8 (pixels; normalization inside the model)."""
    precision: str = "fp32"
    """What the target computes in: fp32, tf32 (ONNX Runtime cuda), fp16 (tensorrt, cann, atc); int8 reserved.
    Each backend and engine target maps it onto its own switch and refuses what it cannot do (at plan time)."""
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    """Batch sizes to run, one engine and one inference run each."""
    convert_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Options passed to the converter (``--option KEY=VALUE``)."""
    backend_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Options passed to the backend (``--option KEY=VALUE``)."""
    accelerator: str | None = None
    """Catalogue name (``jobs.devices``) of the accelerator it runs on, e.g. Ascend310P3 or nvidia-t4;
    None for the CPU. Kubernetes schedules the inference pod by it."""
    price_per_hour: float | None = None
    """What an hour of the target's machine costs, in ``currency``: the report adds the cost per million images
    at its best batch size. None: no price, no cost (nothing is assumed)."""
    currency: str | None = None
    """The price's currency (USD, EUR, CNY, ...); given exactly when ``price_per_hour`` is."""
    devices: tuple[str, ...] = ()
    """Several devices of one node to run on at once instead of ``device`` (``[npu:0, npu:1, npu:2, npu:3]``): one
    infer process each, started together, their throughputs summed as ais_bench's ``--device 0,1,2,3`` does. On
    Kubernetes the pod requests that many chips and ``npu:0`` .. ``npu:N-1`` are the ones it was given. Empty:
    ``device`` alone."""
    divide_input: bool = False
    """With ``devices``: each device infers its part of the images (ais_bench's ``--divide-input``), not all."""
    card: str | None = None
    """Catalogue card (``jobs.devices.CARDS``: atlas-300i, atlas-300i-pro, atlas-300i-duo, nvidia-t4) the devices
    sit on: how many chips make the card's figure; its chip is the target's ``accelerator``. None: the
    accelerator's own card."""


@dataclasses.dataclass(frozen=True)
class ReferenceSpec:
    top1: float | None = None
    """Reference top-1 %% (default: the model's published figure)."""
    top5: float | None = None
    """Reference top-5 %% (default: the model's published figure)."""
    kind: str = "imagenet"
    """imagenet, or agreement when the labels are a reference model's own predictions."""
    gate: float = 1.0
    """A run passes when it is at most this many points below the reference."""


@dataclasses.dataclass(frozen=True)
class ReportSpec:
    ratios: tuple[str, ...] = ()
    """Throughput ratios to tabulate, each ``A/B`` naming two targets (the seed's table has
    ``ascend310p/ascend310`` and ``ascend310p/t4``); empty: each target against the first."""
    latency_limit_ms: float | None = None
    """Compute p99 limit (ms): the report names each target's largest batch size whose p99 is at most this.
    None: not computed."""


@dataclasses.dataclass(frozen=True)
class TimingSpec:
    warmup: int = 2
    """Untimed batches before timing."""
    min_batches: int = 20
    """Timed batches at least, in each repetition (further passes over the data until reached)."""
    min_seconds: float = 2.0
    """Timed compute seconds at least, in each repetition."""
    repetitions: int = 5
    """Timed repetitions per run, each after the first on a fresh backend session: the run's interval and what
    ``ghostbench compare`` tests with (at least 3 for an interval)."""


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    name: str
    """Sweep id: its results are under ``<store>/sweeps/<name>/``."""
    dataset: DatasetSpec
    targets: tuple[TargetSpec, ...]
    model: ModelSpec = ModelSpec()
    store: str = DEFAULT_STORE
    """Where artifacts and results live: a directory, file:///dir or s3://bucket/prefix."""
    reference: ReferenceSpec = ReferenceSpec()
    timing: TimingSpec = TimingSpec()
    report: ReportSpec = ReportSpec()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        for t in d["targets"]:
            t["batch_sizes"] = list(t["batch_sizes"])
            t["devices"] = list(t["devices"])
        d["targets"] = list(d["targets"])
        d["report"]["ratios"] = list(d["report"]["ratios"])
        return d


# \Z, not $: "$" also matches before a final newline, and "name\n" is no Kubernetes label value
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,38}[a-z0-9])?\Z")
_CURRENCY_RE = re.compile(r"^[^\s:]{1,16}\Z")
"""A price's currency: what ``--price TARGET=AMOUNT:CURRENCY`` carries (no spaces, no colon)."""


_STORE_SCHEMES = ("", "file", "s3")
_INPUT_SCHEMES = ("", "file", "s3")


def parse(data: Any, source: str = "sweep", base_dir: pathlib.Path | None = None) -> SweepSpec:
    """Validate a loaded YAML document; relative paths are taken relative to ``base_dir``."""
    ld = _Loader(source)
    top = ld.obj(SweepSpec, data, "", required=("dataset", "targets"))
    name = ld.str_(top, "name", "", None, _NAME_RE,
                   "a lower-case name of letters, digits, '.' and '-' (at most 40 characters)")
    if name is None:
        name = _default_name(source)

    model = models_spec.parse(ld, top.get("model", {}), base_dir)

    d = ld.obj(DatasetSpec, top["dataset"], "dataset", required=("images", "labels"))
    dataset = DatasetSpec(
        images=_resolve(ld.uri(d, "images", "dataset.", None, _INPUT_SCHEMES), base_dir),
        labels=_resolve(ld.uri(d, "labels", "dataset.", None, _INPUT_SCHEMES), base_dir),
        limit=ld.int_(d, "limit", "dataset.", None, minimum=1, nullable=True),
        shards=ld.int_(d, "shards", "dataset.", 1, minimum=1),
        skip_bad=ld.bool_(d, "skip_bad", "dataset.", False),
        pipeline=ld.choice(d, "pipeline", "dataset.", "seed", params.PIPELINES),
        allow_missing=ld.bool_(d, "allow_missing", "dataset.", False),
        max_pixels=ld.int_(d, "max_pixels", "dataset.", None, minimum=1, nullable=True),
    )
    if dataset.max_pixels is not None and dataset.max_pixels > recipe.MAX_PIXELS:
        ld.fail("dataset.max_pixels", f"an integer from 1 to {recipe.MAX_PIXELS} or null", dataset.max_pixels)

    raw_targets = top["targets"]
    if not isinstance(raw_targets, list) or not raw_targets:
        ld.fail("targets", "a non-empty list of targets", raw_targets)
    targets = []
    for i, t in enumerate(raw_targets):
        p = f"targets[{i}]."
        ld.obj(TargetSpec, t, f"targets[{i}]", required=("name",))
        bs = t.get("batch_sizes", list(DEFAULT_BATCH_SIZES))
        if (not isinstance(bs, list) or not bs
                or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in bs)):
            ld.fail(f"{p}batch_sizes", "a non-empty list of integers >= 1", bs)
        if len(set(bs)) != len(bs):
            ld.fail(f"{p}batch_sizes", "distinct batch sizes", bs)
        if max(bs) > MAX_BATCH_SIZE:
            ld.fail(f"{p}batch_sizes", f"batch sizes of at most {MAX_BATCH_SIZE}", bs)
        targets.append(TargetSpec(
            name=ld.str_(t, "name", p, None, _NAME_RE, "a lower-case name of letters, digits, '.' and '-'"),
            backend=ld.str_(t, "backend", p, TargetSpec.backend, names=backends.REGISTRY.names()),
            device=ld.str_(t, "device", p, TargetSpec.device),
            engine=ld.str_(t, "engine", p, TargetSpec.engine, names=converters.REGISTRY.names()),
            input_mode=ld.choice(t, "input_mode", p, "float32", INPUT_MODES),
            precision=ld.choice(t, "precision", p, "fp32", params.PRECISIONS),
            batch_sizes=tuple(bs),
            convert_options=_resolve_options(ld.options(t, "convert_options", p), base_dir),
            backend_options=_resolve_options(ld.options(t, "backend_options", p), base_dir),
            accelerator=ld.str_(t, "accelerator", p, None, nullable=True),
            price_per_hour=ld.float_(t, "price_per_hour", p, None, nullable=True),
            currency=ld.str_(t, "currency", p, None, _CURRENCY_RE, "a currency name without spaces (USD, EUR, ...)",
                             nullable=True),
        ))
        if targets[-1].price_per_hour is not None and not math.isfinite(targets[-1].price_per_hour):
            ld.fail(f"{p}price_per_hour", "a finite number >= 0 or null", t["price_per_hour"])
        if (targets[-1].price_per_hour is None) != (targets[-1].currency is None):
            given, missing = ("price_per_hour", "currency") if targets[-1].currency is None \
                else ("currency", "price_per_hour")
            raise SpecError(f"{source}: {p}{missing}: required when {p}{given} is given (a price has a currency)")
        targets[-1] = _parse_devices(ld, t, targets[-1], p)
        _check_ascend(ld, targets[-1], p)
        _check_plugins(ld, targets[-1], p)
    names = [t.name for t in targets]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        ld.fail("targets[].name", "unique target names", dupes[0])

    r = ld.obj(ReferenceSpec, top.get("reference", {}), "reference")
    reference = ReferenceSpec(
        top1=ld.float_(r, "top1", "reference.", None, nullable=True),
        top5=ld.float_(r, "top5", "reference.", None, nullable=True),
        kind=ld.choice(r, "kind", "reference.", "imagenet", ("imagenet", "agreement")),
        gate=ld.float_(r, "gate", "reference.", 1.0),
    )
    models_spec.reference_needed(model, reference.top1, reference.top5, source)
    rp = ld.obj(ReportSpec, top.get("report", {}), "report")
    ratios = rp.get("ratios", [])
    if not isinstance(ratios, list):
        ld.fail("report.ratios", "a list of 'A/B' target-name pairs", ratios)
    for i, ratio in enumerate(ratios):
        a, sep, b = ratio.partition("/") if isinstance(ratio, str) else ("", "", "")
        if not sep or a not in names or b not in names or a == b:
            ld.fail(f"report.ratios[{i}]", f"'A/B' naming two targets of this sweep ({', '.join(names)})", ratio)
    limit = ld.float_(rp, "latency_limit_ms", "report.", None, nullable=True)
    if limit is not None and not (limit > 0 and math.isfinite(limit)):
        ld.fail("report.latency_limit_ms", "a number of milliseconds > 0 or null", rp["latency_limit_ms"])
    report = ReportSpec(ratios=tuple(ratios), latency_limit_ms=limit)
    tm = ld.obj(TimingSpec, top.get("timing", {}), "timing")
    timing = TimingSpec(
        warmup=ld.int_(tm, "warmup", "timing.", 2),
        min_batches=ld.int_(tm, "min_batches", "timing.", 20, minimum=1),
        min_seconds=ld.float_(tm, "min_seconds", "timing.", 2.0),
        repetitions=ld.int_(tm, "repetitions", "timing.", 5, minimum=1),
    )
    # An explicit store is relative to the sweep file; the default one to the working directory.
    store = _resolve(ld.uri(top, "store", "", DEFAULT_STORE, _STORE_SCHEMES), base_dir) if "store" in top \
        else DEFAULT_STORE
    return SweepSpec(name=name, dataset=dataset, targets=tuple(targets), model=model, store=store,
                     reference=reference, timing=timing, report=report)


def _check_plugins(ld: _Loader, t: TargetSpec, p: str) -> None:
    """What the target's accelerator, backend and engine target would refuse later, refused now (no device
    is touched): each plugin's own config class checks its device and options."""
    if t.accelerator is not None and t.accelerator not in devices.CATALOGUE:
        ld.fail(f"{p}accelerator", f"one of {', '.join(devices.CATALOGUE)}", t.accelerator)
    for field, reg in (("backend", backends.REGISTRY), ("engine", converters.REGISTRY)):
        if field == "engine" and t.backend == "null":
            continue  # the null backend runs no engine
        name = getattr(t, field)
        if name not in reg.plugins:
            raise SpecError(f"{ld.source}: {p}{field}: expected one of {', '.join(reg.names())}"
                            f"{registry.did_you_mean(name, reg.plugins)}, got {name!r}")
    try:
        if t.devices:
            backends.check_devices(t.backend, t.devices, t.backend_options, t.precision)
        else:
            backends.check(t.backend, t.device, t.backend_options, t.precision)
    except errors.OptionError as e:
        where = {None: "devices" if t.devices else "device",
                 "precision": "precision"}.get(e.option, f"backend_options.{e.option}")
        detail = registry.option_detail(e.detail, t.backend_options, e.option)  # how YAML read an unquoted name
        raise SpecError(f"{ld.source}: {p}{where}: {detail}") from e
    if t.accelerator is not None and t.backend != "null":  # (the null backend stands in for any device)
        device = (t.devices or (t.device,))[0]
        kind = backends.runs_on(device)
        accelerator = devices.CATALOGUE[t.accelerator]
        if kind is not None and kind != accelerator.kind:
            what = {"cpu": "the CPU", "gpu": "a GPU", "npu": "an NPU"}
            ld.fail(f"{p}accelerator", f"an accelerator the target's device runs on ({t.backend} device {device} is "
                    f"{what[kind]}; {t.accelerator} is {what[accelerator.kind]}: its pod would hold a device the run "
                    "does not use)", t.accelerator)
    if t.backend == "null":
        return
    for bs in t.batch_sizes:
        try:
            converters.check(t.engine, _convert_options(t), bs, t.precision)
        except errors.OptionError as e:
            where = "batch_sizes" if e.option == "dynamic_batch_sizes" and "batch size" in e.detail \
                else "precision" if e.option == "precision" else f"convert_options.{e.option}"
            detail = registry.option_detail(e.detail, t.convert_options, e.option)
            raise SpecError(f"{ld.source}: {p}{where}: {detail}") from e


def _parse_devices(ld: _Loader, raw: dict[str, Any], t: TargetSpec, p: str) -> TargetSpec:
    """``devices``, ``divide_input`` and ``card``, checked against each other and the catalogue: the card exists, its
    chip is the target's accelerator (which it sets when the target names none), and the devices fit on it."""
    devs = raw.get("devices")
    if devs == []:  # as a resolved spec.yaml writes "none"
        devs = None
    if devs is not None:
        if (not isinstance(devs, list) or len(devs) < 2
                or not all(isinstance(d, str) and d and d == d.strip() for d in devs)):
            ld.fail(f"{p}devices", "a list of at least 2 device names, e.g. [npu:0, npu:1]", devs)
        if "device" in raw and raw["device"] != devs[0]:
            ld.fail(f"{p}device", f"nothing beside devices, or their first ({devs[0]})", raw["device"])
    divide = ld.bool_(raw, "divide_input", p, False)
    if divide and not devs:
        ld.fail(f"{p}divide_input", "false unless devices lists several devices", divide)
    card_name = ld.str_(raw, "card", p, None, nullable=True)
    accelerator = t.accelerator
    if card_name is not None:
        card = devices.CARDS.get(card_name)
        if card is None:
            raise SpecError(f"{ld.source}: {p}card: expected one of {', '.join(devices.CARDS)}, got {card_name!r}"
                            f"{registry.did_you_mean(card_name, devices.CARDS)}")
        if accelerator is not None and accelerator != card.chip:
            ld.fail(f"{p}accelerator", f"{card.chip}, the chip of card {card_name}, or nothing", accelerator)
        accelerator = card.chip
        if devs and len(devs) > card.chips and devices.CATALOGUE[card.chip].kind == "npu":  # a GPU is a card each
            ld.fail(f"{p}devices", f"at most {card.chips} devices, the chips of one {card.label} (card {card_name})",
                    devs)
    elif devs and accelerator in devices.CATALOGUE and devices.CATALOGUE[accelerator].kind == "npu":
        own = devices.card_of(accelerator)
        chips = own.chips if own is not None else 1
        if len(devs) > chips:
            others = [c for c, v in devices.CARDS.items() if v.chip == accelerator and v.chips > chips]
            ld.fail(f"{p}devices", f"at most {chips} device{'s' if chips > 1 else ''}, the chips of one {accelerator} "
                    "card (" + (f"name another card with {p}card: {', '.join(others)}" if others
                                else "the catalogue has no card of several") + ")", devs)
    return dataclasses.replace(t, devices=tuple(devs or ()), divide_input=divide, card=card_name,
                               accelerator=accelerator, device=devs[0] if devs else t.device)


def convert_options(t: TargetSpec) -> dict[str, Any]:
    """The converter's options for a target: the sweep's, plus for ATC the accelerator's soc_version and AIPP."""
    return _convert_options(t)


def aipp(t: TargetSpec) -> bool:
    """ATC with uint8 input normalizes on the chip (AIPP) unless the sweep says otherwise."""
    return t.engine == "atc" and bool(t.convert_options.get("aipp", t.input_mode == "uint8"))


def _convert_options(t: TargetSpec) -> dict[str, Any]:
    options = dict(t.convert_options)
    if t.engine == "onnxruntime" and t.backend == "onnxruntime":
        options.setdefault("provider", t.device.partition(":")[0])  # an engine built for the device it runs on
    if t.engine == "atc":
        if "soc_version" not in options and t.accelerator:
            soc = devices.get(t.accelerator).soc_version
            if soc:
                options["soc_version"] = soc
        if aipp(t):
            options["aipp"] = True
    return options


def _check_ascend(ld: _Loader, t: TargetSpec, p: str) -> None:
    """The Ascend path's rules: acl runs .om engines; atc needs a soc_version; AIPP and dynamic batch fit."""
    if t.backend == "acl" and t.engine != "atc":
        ld.fail(f"{p}engine", "atc for backend acl (it runs .om engines)", t.engine)
    if t.engine != "atc" or t.backend == "null":
        return
    opts = t.convert_options
    if "soc_version" not in opts:
        acc = devices.CATALOGUE.get(t.accelerator)
        if acc is None or not acc.soc_version:
            ascend = ", ".join(a.name for a in devices.CATALOGUE.values() if a.soc_version)
            ld.fail(f"{p}accelerator", f"an Ascend accelerator ({ascend}) or convert_options.soc_version for "
                    "engine atc", t.accelerator)
    use_aipp = opts.get("aipp", t.input_mode == "uint8")
    if not isinstance(use_aipp, bool) or (use_aipp and t.input_mode != "uint8"):
        ld.fail(f"{p}convert_options.aipp", "true or false, and false unless input_mode is uint8 (AIPP takes "
                "uint8 pixels)", use_aipp)
    sizes = opts.get("dynamic_batch_sizes")
    if sizes is not None:
        if (not isinstance(sizes, list) or not sizes
                or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in sizes)):
            ld.fail(f"{p}convert_options.dynamic_batch_sizes", "a non-empty list of integers >= 1", sizes)
        if max(sizes) > MAX_BATCH_SIZE:
            ld.fail(f"{p}convert_options.dynamic_batch_sizes", f"batch sizes of at most {MAX_BATCH_SIZE}", sizes)
        if any(b not in sizes for b in t.batch_sizes):
            ld.fail(f"{p}batch_sizes", f"batch sizes among convert_options.dynamic_batch_sizes {sizes}",
                    list(t.batch_sizes))


def _default_name(source: str) -> str:
    stem = pathlib.Path(source).stem.lower()
    stem = re.sub(r"[^a-z0-9.-]+", "-", stem)[:40].strip("-.") or "sweep"  # a name ends in a letter or digit
    return stem


def is_sweep_name(text: str) -> bool:
    """Whether ``text`` can be a sweep id (``ghostbench status`` takes an id or a sweep file)."""
    return bool(_NAME_RE.match(text))


# Plugin options that name a file (e.g. the acl backend's acl.json): paths like the spec's own path fields.
PATH_OPTIONS = ("acl_json_path",)


def _resolve_options(options: dict[str, Any], base_dir: pathlib.Path | None) -> dict[str, Any]:
    return {k: _resolve(v, base_dir) if k in PATH_OPTIONS and isinstance(v, str) and v else v
            for k, v in options.items()}


def load(path: str | pathlib.Path) -> SweepSpec:
    path = pathlib.Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError as e:
        raise SpecError(f"{path}: no such sweep file") from e
    except OSError as e:
        raise SpecError(f"{path}: cannot read the sweep file ({e.strerror})") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise SpecError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', None) or e})") from e
    return parse(data, str(path), path.parent.resolve())
