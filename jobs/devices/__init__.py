"""The accelerators ghostbench knows, in one place: chip names, cards, Kubernetes resources, labels, images.

The convert stage reads ``soc_version`` from here, the Kubernetes layer reads the device-plugin
resource, node label and default image from here, and reports read the basis of published
figures; nothing else hard-codes these strings.

A chip (``Accelerator``) sits on a card (``Card``): an Atlas 300I carries four Ascend 310 chips, an Atlas 300I
Pro one Ascend 310P3, an Atlas 300I Duo two, a T4 is one GPU. The seed's published figures are per card;
a run on every chip of one card at once measures that figure (``docs/ascend.md``, "Cards").
"""

from __future__ import annotations

import dataclasses

from jobs import errors


@dataclasses.dataclass(frozen=True)
class Accelerator:
    name: str
    """Catalogue key, as sweep files name it (``targets[].accelerator``)."""
    kind: str
    """``npu`` (Ascend, through aclruntime or the CANN execution provider) or ``gpu``."""
    soc_version: str | None
    """ATC's ``--soc_version`` (Ascend only)."""
    resource: str
    """Extended resource the device plugin advertises; requested and limited as whole devices."""
    node_selector: dict[str, str]
    """Labels of the nodes that carry this accelerator."""
    image: str
    """Key of the default inference image in the chart's ``images`` values."""
    npu_smi_names: tuple[str, ...] = ()
    """Chip names as ``npu-smi info`` prints them, for ``soc_version: auto``."""
    chips_per_card: int = 1
    """Chips on the card the seed's published figure was measured on (``card``): its per-card figure divided by this
    is per chip."""
    card: str | None = None
    """The catalogue card (``CARDS``) this chip's published figure is for, and a target's card when it names none."""


CATALOGUE: dict[str, Accelerator] = {a.name: a for a in (
    Accelerator("Ascend310", "npu", "Ascend310", "huawei.com/Ascend310",
                {"accelerator": "huawei-Ascend310"}, "ascend-infer", ("310",), chips_per_card=4, card="atlas-300i"),
    Accelerator("Ascend310P3", "npu", "Ascend310P3", "huawei.com/Ascend310P",
                {"accelerator": "huawei-Ascend310P"}, "ascend-infer", ("310P3", "310P"), chips_per_card=1,
                card="atlas-300i-pro"),
    Accelerator("Ascend910B", "npu", "Ascend910B", "huawei.com/Ascend910",
                {"accelerator": "huawei-Ascend910"}, "ascend-infer", ("910B", "910B1", "910B2", "910B3", "910B4")),
    Accelerator("nvidia-t4", "gpu", None, "nvidia.com/gpu",
                {"nvidia.com/gpu.product": "Tesla-T4"}, "gpu-infer", card="nvidia-t4"),
)}


@dataclasses.dataclass(frozen=True)
class Card:
    """One board in a host's slot and the chips it carries (vendors' data sheets: Atlas 300I inference card model
    3000, 4 x Ascend 310; Atlas 300I Pro, 1 x Ascend 310P3; Atlas 300I Duo, 2 x Ascend 310P3; NVIDIA T4, one GPU)."""

    name: str
    """Catalogue key, as sweep files name it (``targets[].card``)."""
    label: str
    """Product name for reports (``Atlas 300I Duo``)."""
    chip: str
    """The ``CATALOGUE`` accelerator on it."""
    chips: int
    """Chips on the card: a run on this many devices at once measures the card."""
    visible_devices: str
    """The variable that hands a container its chips, and what its values are: for Ascend, Ascend Docker Runtime's
    ``ASCEND_VISIBLE_DEVICES`` holds device ids (``/dev/davinciN``, the ``Device`` column of ``npu-smi info``), one
    per chip, never the card's NPU id (a Duo's two chips share one NPU id); for NVIDIA, the device plugin's
    ``NVIDIA_VISIBLE_DEVICES`` (GPU indices or UUIDs). Inside the container the runtime counts them from 0."""


CARDS: dict[str, Card] = {c.name: c for c in (
    Card("atlas-300i", "Atlas 300I", "Ascend310", 4, "ASCEND_VISIBLE_DEVICES (device ids, one per chip)"),
    Card("atlas-300i-pro", "Atlas 300I Pro", "Ascend310P3", 1, "ASCEND_VISIBLE_DEVICES (device ids, one per chip)"),
    Card("atlas-300i-duo", "Atlas 300I Duo", "Ascend310P3", 2, "ASCEND_VISIBLE_DEVICES (device ids, one per chip)"),
    Card("nvidia-t4", "NVIDIA T4", "nvidia-t4", 1, "NVIDIA_VISIBLE_DEVICES (GPU indices or UUIDs)"),
)}


def get_card(name: str) -> Card:
    """The catalogue card ``name``; ``errors.BadInput`` naming the known ones."""
    try:
        return CARDS[name]
    except KeyError as e:
        raise errors.BadInput(f"card {name!r} is not known; expected one of {', '.join(CARDS)}") from e


def card_of(accelerator: str, chips: int | None = None) -> Card | None:
    """The card of ``accelerator`` that carries ``chips`` chips (as ``npu-smi info`` counts the rows of one NPU id);
    without ``chips``, the accelerator's own (``Accelerator.card``); None when the catalogue has none."""
    if chips is None:
        name = CATALOGUE[accelerator].card if accelerator in CATALOGUE else None
        return CARDS.get(name) if name else None
    found = [c for c in CARDS.values() if c.chip == accelerator and c.chips == chips]
    return found[0] if len(found) == 1 else None


def get(name: str) -> Accelerator:
    try:
        return CATALOGUE[name]
    except KeyError as e:
        raise errors.BadInput(f"accelerator {name!r} is not known; expected one of {', '.join(CATALOGUE)}") from e


def device_index(device: str) -> int:
    """N of ``kind:N``; 0 for a device without an index (``cuda``, ``npu``, ``cpu``)."""
    _, sep, index = device.partition(":")
    return int(index) if sep and index.isdigit() else 0
