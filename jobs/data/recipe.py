"""A model's preprocessing recipe, resolved from its card: the one place its facts become a transform.

The model card (``jobs.models.ModelInfo``: resize, crop, mean, std, interpolation) is resolved once
(``resolve``) into a ``Recipe``, which the preprocess stage, the demo and the benchmarks hand to
``jobs.data.imaging`` (or the opt-in ``imaging_opencv``). ``SEED`` is the seed guide's recipe for GhostNet
(``imagenet_torch_preprocess.py``, ``model_config['ghostnet']``; ``docs/stages.md``, "preprocess"): the
GhostNet card takes its values from here, so they are typed once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol

from jobs import errors

INTERPOLATIONS = ("bilinear",)
"""Resize filters the faithful pipeline implements (PIL's BILINEAR, as the seed)."""


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How an image becomes a model input."""

    resize_short: int
    """The shorter side is resized to this many pixels (BILINEAR), the long side truncated."""
    crop: int
    """Centre crop to crop x crop pixels."""
    mean: tuple[float, float, float]
    """Per-channel RGB mean, on the 0..1 scale."""
    std: tuple[float, float, float]
    """Per-channel RGB std, on the 0..1 scale."""
    pipeline: str = "seed"
    """One of ``jobs.params.PIPELINES``; the preprocess stage picks the decoder by it."""

    def to_dict(self) -> dict:
        d = {"resize_short": self.resize_short, "crop": self.crop, "interpolation": "bilinear",
             "mean": list(self.mean), "std": list(self.std), "layout": "CHW", "color": "RGB"}
        if self.pipeline != "seed":  # records of the default pipeline stay as they were
            d["pipeline"] = self.pipeline
        return d


MAX_PIXELS = 89_478_485
"""The largest image (width x height) preprocessing decodes, and the default of ``--max-pixels``: Pillow's own
decompression-bomb threshold (``PIL.Image.MAX_IMAGE_PIXELS``), typed here so that a Pillow upgrade does not move it
unseen. A larger image is refused from its header, before its pixels are decoded (``jobs.data.imaging``)."""

SEED = Recipe(resize_short=256, crop=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
"""The seed's GhostNet 1.0x recipe."""

PRESETS: dict[str, Recipe] = {
    "ghostnet": SEED,
    "resnet": Recipe(resize_short=256, crop=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    "inceptionv3": Recipe(resize_short=342, crop=299, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    "inceptionv4": Recipe(resize_short=342, crop=299, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
}
"""Named preprocessing recipes (a sweep file's ``model.preprocessing``), with the values of the Ascend ModelZoo's
``imagenet_torch_preprocess.py`` ``model_config`` for each family (keys ``resize``, ``centercrop``, ``mean``,
``std``; PIL BILINEAR everywhere): ``ghostnet`` is the seed's own (``SEED``), ``resnet`` the one the ResNet,
MobileNet and most 224-pixel guides pass, ``inceptionv3`` and ``inceptionv4`` the 299-pixel ones. Sources and the
guides that use each: docs/stages.md, "Preprocessing presets"."""


class Card(Protocol):
    """What ``resolve`` reads of a model card (``jobs.models.ModelInfo``)."""

    name: str
    resize_short: int
    crop: int
    mean: Sequence[float]
    std: Sequence[float]
    interpolation: str


def resolve(card: Card, pipeline: str = "seed") -> Recipe:
    """The card's recipe for ``pipeline``; ``BadInput`` for an interpolation no pipeline implements."""
    if card.interpolation not in INTERPOLATIONS:
        raise errors.BadInput(f"model {card.name!r}: interpolation {card.interpolation!r} is not supported "
                              f"(only {', '.join(repr(i) for i in INTERPOLATIONS)})")
    mean, std = tuple(card.mean), tuple(card.std)
    return Recipe(resize_short=card.resize_short, crop=card.crop, mean=(mean[0], mean[1], mean[2]),
                  std=(std[0], std[1], std[2]), pipeline=pipeline)
