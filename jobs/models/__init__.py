"""The classifiers ghostbench knows, as an explicit registry.

Each entry says how to build the network (a lazily imported factory), where its published weights
live, what accuracy they are published with, and how images must be preprocessed for it. Adding a
classifier means adding one ``ModelInfo`` to ``REGISTRY``; nothing else in the pipeline changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jobs import errors, registry
from jobs.data import recipe
from jobs.models import card as card_mod

if TYPE_CHECKING:  # torch is imported only by stages that build a network
    import torch


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """One classifier: how to build it, where its weights are, and how to feed it."""

    name: str
    """Registry key, used on command lines and in records (e.g. ``ghostnet_1.0x``)."""

    factory: str
    """``"module:function"`` returning an ``torch.nn.Module``; imported only when the model is built."""

    weights_uri: str
    """Official download address of the published state_dict."""

    checksum: str
    """Checksum of the file at ``weights_uri``, ``"md5:HEX"`` or ``"sha256:HEX"``."""

    num_classes: int
    """Number of logits the network outputs."""

    input_size: int
    """Height and width (pixels) of the square input the network is evaluated at."""

    published_top1: float
    """Top-1 accuracy in percent published for these weights (ImageNet val, 50,000 images)."""

    published_top5: float
    """Top-5 accuracy in percent published for these weights."""

    resize_short: int
    """Preprocessing: the shorter image side is resized to this many pixels first."""

    crop: int
    """Preprocessing: size of the centre crop taken after resizing."""

    mean: tuple[float, float, float]
    """Preprocessing: per-channel (RGB) mean subtracted after scaling pixels to [0, 1]."""

    std: tuple[float, float, float]
    """Preprocessing: per-channel (RGB) standard deviation divided by after the mean."""

    interpolation: str
    """Preprocessing: PIL resampling filter used for the resize (``"bilinear"``)."""

    label_offset: int
    """Added to a 0-based ImageNet label to get this model's class index (1 for 1001-class models)."""

    demo_weights: str | None = None
    """Optional ``"module:function(seed) -> state_dict"`` giving deterministic weights for demos/tests."""


REGISTRY: dict[str, ModelInfo] = {
    "ghostnet_1.0x": ModelInfo(
        name="ghostnet_1.0x",
        factory="jobs.models.ghostnet:ghostnet_1_0x",
        weights_uri="https://github.com/huawei-noah/CV-Backbones/raw/master/ghostnet_pytorch/models/"
                    "state_dict_73.98.pth",
        checksum="md5:f7241350b4486bf00accbf9c3a192331",
        num_classes=1000,
        input_size=224,
        published_top1=73.98,
        published_top5=91.46,
        resize_short=recipe.SEED.resize_short,
        crop=recipe.SEED.crop,
        mean=recipe.SEED.mean,
        std=recipe.SEED.std,
        interpolation="bilinear",
        label_offset=0,
        demo_weights="jobs.models.ghostnet:deterministic_state_dict",
    ),
}


def get(name: str) -> ModelInfo:
    """The registry entry for ``name``; an unknown name is bad input listing the known ones."""
    try:
        return REGISTRY[name]
    except KeyError as e:
        raise errors.BadInput(f"model {name!r} is not known{registry.did_you_mean(name, REGISTRY)}; known models: "
                              f"{', '.join(sorted(REGISTRY))}") from e


def resolve_card(name: str, card: Mapping[str, Any] | None = None) -> card_mod.ModelCard:
    """The model card a stage works with: ``card`` (``--card`` pairs, for an imported or factory model) when given,
    else the registry entry's. ``BadInput`` for an unknown name without a card, or a malformed card."""
    if card:
        return card_mod.ModelCard.from_dict(name, card)
    return card_mod.of_info(get(name))


def build(info: ModelInfo) -> torch.nn.Module:
    """A freshly initialised network for ``info`` (load weights into it separately)."""
    return registry.load_attr(info.factory, f"model {info.name!r}", extra="export")()


def demo_state_dict(info: ModelInfo, seed: int) -> dict[str, torch.Tensor]:
    """Deterministic weights for ``info`` (for demos and tests); bad input if it has none."""
    if info.demo_weights is None:
        raise errors.BadInput(f"model {info.name!r} has no demo_weights function")
    return registry.load_attr(info.demo_weights, f"model {info.name!r}", extra="export")(seed)
