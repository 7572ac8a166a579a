"""The accelerators ghostbench knows, in one place: chip names, Kubernetes resources, labels, images.

The convert stage reads ``soc_version`` from here, the Kubernetes layer reads the device-plugin
resource, node label and default image from here, and reports read the basis of published
figures; nothing else hard-codes these strings.
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
    """Chips on one card: published per-card figures divide by this for a per-chip basis."""


CATALOGUE: dict[str, Accelerator] = {a.name: a for a in (
    Accelerator("Ascend310", "npu", "Ascend310", "huawei.com/Ascend310",
                {"accelerator": "huawei-Ascend310"}, "ascend-infer", ("310",), chips_per_card=4),
    Accelerator("Ascend310P3", "npu", "Ascend310P3", "huawei.com/Ascend310P",
                {"accelerator": "huawei-Ascend310P"}, "ascend-infer", ("310P3", "310P"), chips_per_card=1),
    Accelerator("Ascend910B", "npu", "Ascend910B", "huawei.com/Ascend910",
                {"accelerator": "huawei-Ascend910"}, "ascend-infer", ("910B", "910B1", "910B2", "910B3", "910B4")),
    Accelerator("nvidia-t4", "gpu", None, "nvidia.com/gpu",
                {"nvidia.com/gpu.product": "Tesla-T4"}, "gpu-infer"),
)}


def get(name: str) -> Accelerator:
    try:
        return CATALOGUE[name]
    except KeyError as e:
        raise errors.BadInput(f"accelerator {name!r} is not known; expected one of {', '.join(CATALOGUE)}") from e


def device_index(device: str) -> int:
    """N of ``kind:N``; 0 for a device without an index (``cuda``, ``npu``, ``cpu``)."""
    _, sep, index = device.partition(":")
    return int(index) if sep and index.isdigit() else 0
