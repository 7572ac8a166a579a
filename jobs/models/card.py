"""A model card: the facts about a classifier that ghostbench cannot read from its graph.

The registry's models (``jobs.models.REGISTRY``) carry theirs; an imported ONNX file or a user's PyTorch
factory gets its card from the sweep file (``model.preprocessing``, ``model.num_classes``,
``model.label_offset``), which the plan hands to the export, preprocess and eval stages as ``--card KEY=VALUE``
pairs (``to_dict``). ``resolve`` turns a stage's ``--model``/``--card`` back into one ``ModelCard``, so the same
facts are never typed twice. ``load_factory`` imports a user's ``package.module:function`` with importlib only.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from jobs import errors
from jobs.data import recipe as recipe_mod

FIELDS = ("num_classes", "label_offset", "resize", "crop", "mean", "std", "interpolation")
"""The keys of a card as a stage takes it (``--card KEY=VALUE``), in this order."""
_FACTORY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """What preprocessing, export and accuracy need to know of a classifier (timm's pretrained config, in short)."""

    name: str
    """The model's name in records and reports."""
    num_classes: int
    """Logits per image (the output is ``[N, num_classes]`` float32)."""
    label_offset: int
    """Added to a 0-based ImageNet label to get the model's class index (1 for 1001-class models)."""
    resize_short: int
    """The shorter image side is resized to this many pixels (PIL BILINEAR), the long side truncated."""
    crop: int
    """Centre crop to ``crop`` x ``crop`` pixels: the model's input height and width."""
    mean: tuple[float, float, float]
    """Per-channel RGB mean on the 0..1 scale."""
    std: tuple[float, float, float]
    """Per-channel RGB standard deviation on the 0..1 scale."""
    interpolation: str = "bilinear"
    """The resize filter (``jobs.data.recipe.INTERPOLATIONS``)."""

    @property
    def input_size(self) -> int:
        """Height and width (pixels) of the square input: the crop."""
        return self.crop

    def to_dict(self) -> dict[str, Any]:
        """The card as a stage's ``--card`` pairs (JSON values): every key of ``FIELDS``."""
        return {"num_classes": self.num_classes, "label_offset": self.label_offset, "resize": self.resize_short,
                "crop": self.crop, "mean": list(self.mean), "std": list(self.std),
                "interpolation": self.interpolation}

    def recipe(self, pipeline: str = "seed") -> recipe_mod.Recipe:
        """The preprocessing recipe (``jobs.data.recipe.resolve``; ``BadInput`` for an unsupported filter)."""
        return recipe_mod.resolve(self, pipeline)

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any], where: str = "--card") -> ModelCard:
        """A card from ``--card`` pairs; ``BadInput`` naming ``where.KEY``, what it expects and what it got."""
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise errors.BadInput(f"{where} {unknown[0]}: unknown key; allowed: {', '.join(FIELDS)}")
        missing = [k for k in FIELDS if k not in data and k != "interpolation"]
        if missing:
            raise errors.BadInput(f"{where} {missing[0]}: required (a card gives {', '.join(FIELDS)})")
        return cls(name=name, num_classes=_int(data, "num_classes", 1, where),
                   label_offset=_int(data, "label_offset", 0, where), resize_short=_int(data, "resize", 1, where),
                   crop=_int(data, "crop", 1, where), mean=_triple(data, "mean", where, positive=False),
                   std=_triple(data, "std", where, positive=True),
                   interpolation=_interpolation(data.get("interpolation", "bilinear"), where))


def _int(data: Mapping[str, Any], key: str, minimum: int, where: str) -> int:
    v = data[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise errors.BadInput(f"{where} {key}: expected an integer >= {minimum}, got {v!r}")
    return v


def _triple(data: Mapping[str, Any], key: str, where: str, positive: bool) -> tuple[float, float, float]:
    v = data[key]
    ok = (isinstance(v, (list, tuple)) and len(v) == 3
          and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)
          and (not positive or all(x > 0 for x in v)))
    if not ok:
        what = "three numbers > 0 (R, G, B)" if positive else "three finite numbers (R, G, B)"
        raise errors.BadInput(f"{where} {key}: expected {what} on the 0..1 scale, got {v!r}")
    return float(v[0]), float(v[1]), float(v[2])


def _interpolation(v: Any, where: str) -> str:
    if v not in recipe_mod.INTERPOLATIONS:
        raise errors.BadInput(f"{where} interpolation: expected one of {', '.join(recipe_mod.INTERPOLATIONS)} "
                              f"(the seed's PIL filter), got {v!r}")
    return v


def of_info(info: Any) -> ModelCard:
    """The card of a registry entry (``jobs.models.ModelInfo``)."""
    return ModelCard(name=info.name, num_classes=info.num_classes, label_offset=info.label_offset,
                     resize_short=info.resize_short, crop=info.crop, mean=tuple(info.mean), std=tuple(info.std),
                     interpolation=info.interpolation)


def check_factory(target: str, where: str = "--factory") -> None:
    """``BadInput`` unless ``target`` is spelled ``package.module:function``."""
    if not isinstance(target, str) or not _FACTORY_RE.match(target):
        raise errors.BadInput(f"{where}: expected package.module:function, got {target!r}")


def load_factory(target: str, where: str = "--factory") -> Callable[[], Any]:
    """The callable named by ``package.module:function``, imported now with importlib (never exec or eval).

    ``BadInput`` naming ``where`` when the spelling is wrong, the module does not import (with the first line of
    why), the function is missing or is not callable. Importing runs the module's top-level code, as
    ``python -c 'import package.module'`` would: name only code you trust.
    """
    check_factory(target, where)
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - the user's module may raise anything while importing
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise errors.BadInput(f"{where}: module {module_name!r} does not import ({type(e).__name__}: "
                              f"{detail})") from e
    fn = getattr(module, attr, None)
    if fn is None:
        raise errors.BadInput(f"{where}: module {module_name!r} has no attribute {attr!r}")
    if not callable(fn):
        raise errors.BadInput(f"{where}: {target} is not callable (a {type(fn).__name__})")
    return fn


def build_factory(target: str, where: str = "--factory") -> Any:
    """The ``torch.nn.Module`` that ``package.module:function`` returns, called with no arguments.

    ``BadInput`` naming ``where`` for what ``load_factory`` refuses, a function that raises (its exception's type and
    the first line of its message) or one that returns anything but a ``torch.nn.Module``. ``ModuleNotFoundError``
    when torch is not installed.
    """
    import torch

    fn = load_factory(target, where)
    try:
        net = fn()
    except Exception as e:  # noqa: BLE001 - the user's function may raise anything
        detail = str(e).splitlines()[0] if str(e) else ""
        raise errors.BadInput(f"{where}: {target}() raised {type(e).__name__}{': ' + detail if detail else ''}") from e
    if not isinstance(net, torch.nn.Module):
        raise errors.BadInput(f"{where}: {target}() returned a {type(net).__name__}; expected a torch.nn.Module")
    return net


def probe_factory(target: str, card: ModelCard, where: str = "--factory", classes_field: str = "--card num_classes"
                  ) -> None:
    """Build the factory's network (``build_factory``, its own initial weights) and run one zero image of the card's
    crop size through it in eval mode: ``BadInput`` naming ``where`` when the forward pass fails, naming
    ``classes_field`` when the logits are not ``[1, card.num_classes]``. Nothing is checked without torch (the
    export stage checks it where torch is installed)."""
    try:
        import torch
    except ModuleNotFoundError:
        return
    net = build_factory(target, where).eval()
    shape = (1, 3, card.crop, card.crop)
    try:
        with torch.no_grad():
            logits = net(torch.zeros(shape))
    except Exception as e:  # noqa: BLE001 - the user's forward may raise anything
        detail = str(e).splitlines()[0] if str(e) else ""
        raise errors.BadInput(f"{where}: the network fails on one {card.crop}x{card.crop} image {list(shape)} "
                              f"({type(e).__name__}{': ' + detail[:200] if detail else ''})") from e
    found = list(getattr(logits, "shape", ()))
    if found != [1, card.num_classes]:
        raise errors.BadInput(f"{classes_field}: {card.num_classes}, but {target}'s network gives logits of shape "
                              f"{found} for one image (expected [1, {card.num_classes}])")
