"""The sweep file's ``model`` section: a registered classifier, an ONNX file to import, or a PyTorch factory.

    model: {name: ghostnet_1.0x}                                  # registered (jobs.models), as the seed
    model: {name: resnet50, onnx: resnet50.onnx, checksum: sha256:..., preprocessing: resnet,
            num_classes: 1000, published: {top1: 76.13, top5: 92.86}}
    model: {name: mine, factory: mypkg.models:build, weights: mine.pth, checksum: sha256:...,
            preprocessing: {resize: 342, crop: 299, mean: [...], std: [...]}, num_classes: 1000}

``parse`` checks the section's fields (pure; ``SpecError`` naming the field); ``card`` gives the model card the
stages take; ``check_sources`` is what the planner can check on the files before any step starts (checksum, graph,
opset per engine target, a fixed batch axis against the batch sizes, the factory's import): ``ghostbench plan`` and
``run`` call it beside the labels check. Field reference: docs/stages.md, "Models".
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import re
import urllib.parse
from typing import Any

from controller import spec_fields
from jobs import converters, errors, models, registry
from jobs.data import recipe
from jobs.models import card as card_mod

SpecError = spec_fields.SpecError
WEIGHTS_SCHEMES = ("", "file", "s3", "https", "http")
CHECKSUM_RE = re.compile(r"^(md5:[0-9a-f]{32}|sha256:[0-9a-f]{64})$", re.IGNORECASE)
"""As ``jobs.models.weights.parse_checksum`` reads one (either case); the spec keeps it lower-case."""
IMPORTED_ONLY = ("preprocessing", "num_classes", "label_offset", "published")
"""Fields that describe a model ghostbench does not know: a registered model's come from the registry."""


@dataclasses.dataclass(frozen=True)
class PreprocessingSpec:
    """How images become the model's input (``jobs.data.recipe``): a preset's values, or the sweep file's own."""

    resize: int
    """The shorter side is resized to this many pixels first (ModelZoo's ``resize``)."""
    crop: int
    """Centre crop, pixels (ModelZoo's ``centercrop``): the model's input height and width."""
    mean: tuple[float, float, float]
    """Per-channel RGB mean on the 0..1 scale."""
    std: tuple[float, float, float]
    """Per-channel RGB standard deviation on the 0..1 scale."""
    interpolation: str = "bilinear"
    """The resize filter (``jobs.data.recipe.INTERPOLATIONS``)."""
    preset: str | None = None
    """The preset (``jobs.data.recipe.PRESETS``) the values started from, None when all were given."""


@dataclasses.dataclass(frozen=True)
class PublishedSpec:
    top1: float
    """Published top-1 accuracy, %, for these weights (ImageNet val): the accuracy gate's reference."""
    top5: float
    """Published top-5 accuracy, %."""


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str = "ghostnet_1.0x"
    """Registry name of the classifier (``jobs.models``), or any name for an imported or factory model."""
    weights: str | None = None
    """URI of the state_dict (registered and factory models): a path, file://, https:// or a store URI.
    None: the official address of a registered model."""
    checksum: str | None = None
    """``md5:HEX`` or ``sha256:HEX`` of the weights file, or of the ONNX file. None: the official checksum."""
    opset: int = 11
    """ONNX opset of the export (11: what the seed's ATC accepts); an imported file keeps its own."""
    onnx: str | None = None
    """URI of an ONNX classifier to import instead of exporting (with its checksum)."""
    factory: str | None = None
    """``package.module:function`` returning the user's ``torch.nn.Module`` (with weights and checksum)."""
    preprocessing: PreprocessingSpec | None = None
    """Imported and factory models: a preset name or resize, crop, mean, std, interpolation."""
    num_classes: int | None = None
    """Imported and factory models: logits per image."""
    label_offset: int | None = None
    """Imported and factory models: added to a 0-based ImageNet label (1 for 1001-class models; default 0)."""
    published: PublishedSpec | None = None
    """Imported and factory models: the published top-1/top-5 to gate against (else ``reference`` gives them)."""

    @property
    def source(self) -> str:
        """registry, onnx or factory."""
        return "onnx" if self.onnx else "factory" if self.factory else "registry"

    def to_dict(self) -> dict[str, Any]:
        """The section as the resolved ``spec.yaml`` holds it: a registered model's exactly as before these fields
        existed (the fields it cannot have are left out)."""
        d = dataclasses.asdict(self)
        if self.preprocessing is not None:
            d["preprocessing"] = {**d["preprocessing"], "mean": list(self.preprocessing.mean),
                                  "std": list(self.preprocessing.std)}
        if self.onnx:  # an imported file keeps its own opset: none to write (parse refuses one)
            del d["opset"]
        return {k: v for k, v in d.items() if v is not None or k in ("weights", "checksum")}


def card(model: ModelSpec) -> card_mod.ModelCard:
    """The model card of the sweep's model: the registry's, or built from the sweep file's fields."""
    if model.source == "registry":
        return card_mod.of_info(models.get(model.name))
    p = model.preprocessing
    assert p is not None and model.num_classes is not None  # parse requires them
    return card_mod.ModelCard(name=model.name, num_classes=model.num_classes, label_offset=model.label_offset or 0,
                              resize_short=p.resize, crop=p.crop, mean=p.mean, std=p.std,
                              interpolation=p.interpolation)


def source_line(model: ModelSpec) -> str | None:
    """The model's source, as reports name it (None for a registered model: its name says it)."""
    if model.source == "onnx":
        return f"imported ONNX file {_public(model.onnx)} ({model.checksum})"
    if model.source == "factory":
        return f"PyTorch factory {model.factory}, weights {_public(model.weights)} ({model.checksum})"
    return None


def _public(uri: str | None) -> str:
    from jobs.models import weights

    return weights.public_uri(uri) if uri else "-"


def parse(ld: spec_fields.Loader, data: Any, base_dir: pathlib.Path | None) -> ModelSpec:
    """The ``model`` section, checked field by field (``SpecError`` naming ``model.<field>``)."""
    m = ld.obj(ModelSpec, data, "model")
    onnx = spec_fields.resolve(ld.uri(m, "onnx", "model.", None, WEIGHTS_SCHEMES, nullable=True), base_dir)
    factory = ld.str_(m, "factory", "model.", None, nullable=True, what="package.module:function")
    if onnx and factory:
        raise SpecError(f"{ld.source}: model.factory: give model.onnx or model.factory, not both")
    if factory:
        try:
            card_mod.check_factory(factory, "model.factory")
        except errors.BadInput as e:
            raise SpecError(f"{ld.source}: {e}") from e
    imported = bool(onnx or factory)
    name = ld.str_(m, "name", "model.", None if imported else ModelSpec.name, names=[] if imported else
                   list(models.REGISTRY))
    if name is None:
        raise SpecError(f"{ld.source}: model.name: required with model.{'onnx' if onnx else 'factory'} (the name "
                        "reports and compare know the model by)")
    model = ModelSpec(
        name=name,
        weights=spec_fields.resolve(ld.uri(m, "weights", "model.", None, WEIGHTS_SCHEMES, nullable=True), base_dir),
        checksum=(ld.str_(m, "checksum", "model.", None, CHECKSUM_RE, "md5:<32 hex digits> or sha256:<64 hex digits>",
                          nullable=True) or "").lower() or None,
        opset=ld.int_(m, "opset", "model.", 11, minimum=7), onnx=onnx, factory=factory,
        preprocessing=_preprocessing(ld, m.get("preprocessing")) if imported and "preprocessing" in m else None,
        num_classes=ld.int_(m, "num_classes", "model.", None, minimum=1, nullable=True) if imported else None,
        label_offset=ld.int_(m, "label_offset", "model.", None, nullable=True) if imported else None,
        published=_published(ld, m.get("published")) if imported and m.get("published") is not None else None)
    if not imported:
        given = [f for f in IMPORTED_ONLY if m.get(f) is not None]
        if given:
            raise SpecError(f"{ld.source}: model.{given[0]}: only for a model ghostbench does not know (model.onnx "
                            f"or model.factory); {name}'s comes from the registry")
        if bool(model.weights) != bool(model.checksum):
            missing = "checksum" if model.weights else "weights"
            raise SpecError(f"{ld.source}: model.{missing}: required when model."
                            f"{'weights' if model.weights else 'checksum'} is given (weights are always checked "
                            "against a checksum)")
        try:
            models.get(name)
        except errors.BadInput as e:
            raise SpecError(f"{ld.source}: model.name: {e}") from e
        return model
    if name in models.REGISTRY:
        raise SpecError(f"{ld.source}: model.name: {name!r} is a registered model; name an imported one otherwise")
    what = "model.onnx" if onnx else "model.factory"
    if model.checksum is None:
        raise SpecError(f"{ld.source}: model.checksum: required with {what} (the file is checked against it)")
    if onnx and model.weights:
        raise SpecError(f"{ld.source}: model.weights: not used with model.onnx (the ONNX file holds the weights)")
    if onnx and "opset" in m:
        raise SpecError(f"{ld.source}: model.opset: not used with model.onnx (the file keeps its own opset, "
                        f"checked against each target's converter), got {m['opset']!r}")
    if factory and not model.weights:
        raise SpecError(f"{ld.source}: model.weights: required with model.factory (a state_dict file)")
    for field in ("preprocessing", "num_classes"):
        if getattr(model, field) is None:
            raise SpecError(f"{ld.source}: model.{field}: required with {what} (ghostbench cannot read it from "
                            "the graph)")
    return model


def _preprocessing(ld: spec_fields.Loader, data: Any) -> PreprocessingSpec:
    presets = ", ".join(recipe.PRESETS)
    if isinstance(data, str):
        data = {"preset": data}
    if not isinstance(data, dict):
        ld.fail("model.preprocessing", f"a preset ({presets}) or a mapping of resize, crop, mean, std, "
                "interpolation", data)
    ld.obj(PreprocessingSpec, data, "model.preprocessing")
    preset = data.get("preset")
    values: dict[str, Any] = {}
    if preset is not None:
        if not isinstance(preset, str) or preset not in recipe.PRESETS:
            hint = registry.did_you_mean(preset, recipe.PRESETS) if isinstance(preset, str) else ""
            raise SpecError(f"{ld.source}: model.preprocessing.preset: expected one of {presets}, got {preset!r}"
                            f"{hint}")
        r = recipe.PRESETS[preset]
        values = {"resize": r.resize_short, "crop": r.crop, "mean": list(r.mean), "std": list(r.std)}
    values.update({k: v for k, v in data.items() if k != "preset"})
    for key in ("resize", "crop", "mean", "std"):
        if key not in values:
            raise SpecError(f"{ld.source}: model.preprocessing.{key}: required without a preset ({presets})")
    p = "model.preprocessing."
    resize, crop = ld.int_(values, "resize", p, None, minimum=1), ld.int_(values, "crop", p, None, minimum=1)
    if crop > resize:
        ld.fail(f"{p}crop", f"at most resize ({resize}): a centre crop of the resized image", crop)
    return PreprocessingSpec(resize=resize, crop=crop, mean=_triple(ld, values, "mean", p, False),
                             std=_triple(ld, values, "std", p, True),
                             interpolation=ld.choice(values, "interpolation", p, "bilinear", recipe.INTERPOLATIONS),
                             preset=preset)


def _triple(ld: spec_fields.Loader, values: dict, key: str, p: str, positive: bool) -> tuple[float, float, float]:
    """Three numbers on the 0..1 scale: a mean in 0..1, a std in (0, 1]; values on the 0..255 scale (as some
    model zoos write them) are refused with the hint to divide by 255."""
    v = values[key]
    if not (isinstance(v, (list, tuple)) and len(v) == 3
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)
            and (not positive or all(x > 0 for x in v))):
        ld.fail(f"{p}{key}", "three numbers > 0 (R, G, B; 0..1 scale)" if positive
                else "three numbers (R, G, B; 0..1 scale)", v)
    if not all((0 < x <= 1) if positive else (0 <= x <= 1) for x in v):
        scale = " (on the 0..255 scale? divide by 255)" if any(x > 1 for x in v) else ""
        ld.fail(f"{p}{key}", f"three numbers {'in (0, 1]' if positive else 'from 0 to 1'} (R, G, B; 0..1 "
                f"scale){scale}", v)
    return float(v[0]), float(v[1]), float(v[2])


def _published(ld: spec_fields.Loader, data: Any) -> PublishedSpec:
    d = ld.obj(PublishedSpec, data, "model.published", required=("top1", "top5"))
    top1, top5 = ld.float_(d, "top1", "model.published.", None), ld.float_(d, "top5", "model.published.", None)
    for key, v in (("top1", top1), ("top5", top5)):
        if not v <= 100:
            ld.fail(f"model.published.{key}", "a percentage from 0 to 100", v)
    if top1 > top5:
        ld.fail("model.published.top5", f"at least top1 ({top1:g}): an image right at top-1 is right at top-5", top5)
    return PublishedSpec(top1=top1, top5=top5)


# -- what the planner checks on the files ------------------------------------------------------------------------

def _local_path(uri: str | None) -> pathlib.Path | None:
    if not uri:
        return None
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        return pathlib.Path(urllib.parse.unquote(parsed.path))
    return pathlib.Path(uri) if not parsed.scheme else None


def check_sources(spec: Any, source: str) -> None:
    """Before any step starts, what can be checked of the model on this machine (``SpecError``, one line naming the
    field): a local weights or ONNX file's checksum; an ONNX file's graph against the card, its opset against each
    target's engine target, and a batch axis that stays fixed against the targets' batch sizes; a factory's import,
    that it returns a ``torch.nn.Module`` and that its logits for one image at the crop size are
    ``[1, num_classes]``. The opset of an export (registered and factory models) is checked against the engine
    targets too. A remote file, and what this machine cannot read (no onnx or torch installed), are checked by the
    export stage instead."""
    model: ModelSpec = spec.model
    targets = [(i, t) for i, t in enumerate(spec.targets) if t.backend != "null"]
    try:
        if model.factory:
            card_mod.load_factory(model.factory, "model.factory")
            card_mod.probe_factory(model.factory, card(model), "model.factory", "model.num_classes")
        path = _local_path(model.onnx or (model.weights if model.source != "registry" else None))
        field = "model.onnx" if model.onnx else "model.weights"
        if path is not None:
            if not path.is_file():
                raise errors.BadInput(f"{field}: no such file {path}")
            from jobs.models import weights

            weights.verify(path, model.checksum or "", str(path), what=field)
    except errors.BadInput as e:
        raise SpecError(f"{source}: {e}") from e
    opset: int | None = model.opset
    fixed, why = None, ""
    if model.onnx and path is not None:
        opset, fixed, why = _check_graph(path, card(model), source)
    for i, t in targets:
        try:
            if opset is not None:  # None: a file this machine could not read (the export stage checks it)
                converters.check_opset(t.engine, t.convert_options, opset)
        except errors.OptionError as e:
            field = "model.onnx" if model.onnx else "model.opset"
            raise SpecError(f"{source}: targets[{i}].engine: {e.detail} ({field})") from e
        if fixed is not None and (list(t.batch_sizes) != [fixed] or t.convert_options.get("dynamic_batch_sizes")):
            raise SpecError(f"{source}: targets[{i}].batch_sizes: expected [{fixed}]: model.onnx fixes its batch axis "
                            f"at {fixed} and cannot be made dynamic ({why}), got {list(t.batch_sizes)}")


def _check_graph(path: pathlib.Path, model_card: card_mod.ModelCard, source: str
                 ) -> tuple[int | None, int | None, str]:
    """(opset, the batch size the file keeps or None, why it keeps it) of a local ONNX file, checked against the
    card; ``SpecError`` naming the field. Without onnx installed: nothing is checked here, the opset is None (the
    export stage checks it)."""
    try:
        import onnx  # noqa: F401 - jobs.models.onnx_import imports it where it reads a file

        from jobs.models import onnx_import
    except ModuleNotFoundError:
        return None, None, ""
    try:
        model = onnx_import.load(path, "model.onnx")
        facts = onnx_import.inspect(model, model_card.crop, model_card.num_classes, f"model.onnx {path.name}",
                                    {"crop": "model.preprocessing.crop", "num_classes": "model.num_classes"})
    except errors.BadInput as e:
        raise SpecError(f"{source}: {e}") from e
    if facts.fixed_batch is None:
        return facts.opset, None, ""
    try:
        _, fixed, changes = onnx_import.settle_batch(model, facts, model_card.crop, model_card.num_classes)
    except ModuleNotFoundError:  # no onnxruntime here: the export stage settles it
        return facts.opset, None, ""
    return facts.opset, fixed, changes[-1].split(": ", 1)[-1] if fixed is not None else ""


def reference_needed(model: ModelSpec, top1: float | None, top5: float | None, source: str) -> None:
    """An imported model gates against ``model.published`` or the ``reference`` section: ``SpecError`` without."""
    if model.source != "registry" and model.published is None and (top1 is None or top5 is None):
        raise SpecError(f"{source}: model.published: required for an imported model unless reference.top1 and "
                        "reference.top5 are given (the accuracy gate needs a figure)")


def published_of(model: ModelSpec) -> tuple[float, float]:
    """(top-1, top-5) published for the model: the sweep file's, or the registry's."""
    if model.published is not None:
        return model.published.top1, model.published.top5
    info = models.get(model.name)
    return info.published_top1, info.published_top5
