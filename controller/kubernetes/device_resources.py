"""The extended resource an accelerator pod requests, and how its container learns which device it was given.

The catalogue (``jobs.devices``) names the resource a device plugin advertises in its usual mode
(``huawei.com/Ascend310P: 1``). The Ascend Device Plugin has other modes, each with its own resource
names (MindCluster's documentation: the Ascend Device Plugin's start-up parameters, "Static
virtualization", "Dynamic virtualization"); ``KubernetesSettings.device_resources`` picks one per
accelerator, and this module classifies it, checks it against the scheduler, and gives the env:

- ``whole`` chips: ``huawei.com/Ascend310``, ``huawei.com/Ascend310P``, ``huawei.com/Ascend910``
  (``huawei.com/npu`` on Atlas 350/850/950). With Volcano (``scheduler_name: volcano``) the scheduler picks
  the chips, writes them into the pod annotation named after the resource (``Ascend310P-0``), and the
  container's ``ASCEND_VISIBLE_DEVICES`` is taken from that annotation (``fieldRef``), as MindCluster's
  Job examples do; so the container sees the chip Volcano chose. Without Volcano the kubelet allocates and
  Ascend Docker Runtime sets the variable.
- ``mixed`` insertion (``-use310PMixedInsert``): one resource per card model, ``huawei.com/Ascend310P-V``,
  ``-VPro``, ``-IPro``. MindCluster supports neither Volcano nor Ascend Docker Runtime in this mode, so the
  driver comes from the host (``driver_mounts``).
- ``static-vnpu``: a pre-made slice, ``huawei.com/Ascend310P-<template>`` (``Ascend310P-2c``,
  ``Ascend310P-4c.3cpu``; ``Ascend910-...`` likewise), one per pod; MindCluster says to set no
  ``ASCEND_VISIBLE_DEVICES`` field.
- ``dynamic-vnpu``: ``huawei.com/npu-core: N`` AI Cores, cut when the pod is scheduled; Volcano only (the
  device plugin's ``-volcanoType``), no ``ASCEND_VISIBLE_DEVICES`` field.
- GPUs: ``nvidia.com/gpu``, or a MIG slice ``nvidia.com/mig-<g>g.<gb>gb`` (the NVIDIA device plugin's
  ``mixed`` MIG strategy).

A slice (``static-vnpu``, ``dynamic-vnpu``, ``mig``) measures part of a chip: its throughput is not a chip's.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from jobs import devices, errors
from jobs.devices import npu_smi

WHOLE, MIXED, STATIC_VNPU, DYNAMIC_VNPU, GPU, MIG = "whole", "mixed", "static-vnpu", "dynamic-vnpu", "gpu", "mig"
SLICES = (STATIC_VNPU, DYNAMIC_VNPU, MIG)
"""Modes in which a pod gets part of a chip."""
VOLCANO = "volcano"
NPU_CORE = "huawei.com/npu-core"
WHOLE_NPU = ("huawei.com/Ascend310", "huawei.com/Ascend310P", "huawei.com/Ascend910", "huawei.com/npu")
MIXED_NPU = ("huawei.com/Ascend310P-V", "huawei.com/Ascend310P-VPro", "huawei.com/Ascend310P-IPro")
_VNPU_TEMPLATE_RE = re.compile(r"^huawei\.com/(Ascend310P|Ascend910)-\d+c(\.\d+cpu)?(\.\d+g)?(\.n?dvpp)?$")
_MIG_RE = re.compile(r"^nvidia\.com/mig-\d+g\.\d+gb$")


@dataclasses.dataclass(frozen=True)
class DeviceResource:
    """What an accelerator pod requests (and is limited to): ``count`` of the extended resource ``name``."""

    name: str
    count: int
    mode: str

    @property
    def slice(self) -> bool:
        """Whether the pod gets part of a chip (its figures are not a chip's)."""
        return self.mode in SLICES


def classify(name: str) -> str | None:
    """The mode of a resource name (module docstring), None for one this module does not know."""
    if name in WHOLE_NPU or name == "nvidia.com/gpu":
        return GPU if name.startswith("nvidia.com/") else WHOLE
    if name in MIXED_NPU:
        return MIXED
    if name == NPU_CORE:
        return DYNAMIC_VNPU
    if _VNPU_TEMPLATE_RE.match(name):
        return STATIC_VNPU
    if _MIG_RE.match(name):
        return MIG
    return None


def resolve(accelerator: str, overrides: Mapping[str, Mapping[str, Any]], chips: int = 1) -> DeviceResource:
    """The resource the accelerator's pods request: ``overrides[accelerator]`` (``{name, count}``), else the
    catalogue's; whole devices (chips, GPUs) one per device the step runs on (``chips``: a target's ``devices``,
    e.g. the 4 chips of an Atlas 300I card, ``huawei.com/Ascend310: 4``, which the container then finds in
    ``ASCEND_VISIBLE_DEVICES``). Call ``problem`` first: this trusts the entry. ``errors.BadInput`` when a step on
    several devices would get a slice (static or dynamic vNPU, MIG): a slice is part of one chip."""
    entry = overrides.get(accelerator) or {}
    name = str(entry.get("name") or devices.get(accelerator).resource)
    mode = classify(name) or WHOLE
    count = int(entry.get("count", 1))
    if chips > 1:
        if mode in SLICES:
            raise errors.BadInput(f"device_resources.{accelerator}.name: {name} ({mode}) is part of one chip, but "
                                  f"targets[].devices runs on {chips} devices of {accelerator}: give that accelerator "
                                  "whole chips (the catalogue's resource) in the settings, or one device")
        count *= chips
    return DeviceResource(name, count, mode)


def problem(accelerator: str, entry: Mapping[str, Any], scheduler_name: str, driver_mounts: bool
            ) -> tuple[str, str, Any] | None:
    """What is wrong with a ``device_resources`` entry, as (field below the entry, what was expected, what was
    given); None when it is right."""
    unknown = sorted(set(entry) - {"name", "count"})
    if unknown:
        return unknown[0], "name or count", unknown[0]
    acc = devices.CATALOGUE[accelerator]
    name, count = entry.get("name"), entry.get("count", 1)
    if not isinstance(name, str) or not name:
        return "name", "the extended resource the device plugin advertises, e.g. huawei.com/Ascend310P-IPro", name
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        return "count", "an integer >= 1", count
    mode = classify(name)
    family = acc.resource  # huawei.com/Ascend310P, nvidia.com/gpu
    if acc.kind == "gpu":
        if mode not in (GPU, MIG):
            return "name", "nvidia.com/gpu or a MIG slice such as nvidia.com/mig-1g.10gb", name
    elif mode is None or mode in (GPU, MIG):
        return "name", (f"an Ascend resource: {family}, huawei.com/npu, {family}-<vNPU template> (static vNPU, e.g. "
                        f"{family}-2c), {NPU_CORE} (dynamic vNPU)"
                        + (", or huawei.com/Ascend310P-V/-VPro/-IPro (mixed insertion)" if accelerator ==
                           "Ascend310P3" else "")), name
    elif mode == WHOLE and name not in (family, "huawei.com/npu"):
        return "name", f"{family} for {accelerator} (or huawei.com/npu)", name
    elif mode == MIXED and accelerator != "Ascend310P3":
        return "name", "a mixed-insertion resource only for Ascend310P3 (Atlas 300I Pro, 300V, 300V Pro)", name
    elif mode == STATIC_VNPU and not name.startswith(family + "-"):
        return "name", f"a static vNPU of {accelerator}: {family}-<template>, e.g. {family}-2c", name
    if mode != DYNAMIC_VNPU and count != 1:
        return "count", (f"1 ({name} is requested one per device a step runs on: one, or a target's devices, e.g. "
                         "4 for the chips of an Atlas 300I card)"), count
    if mode == DYNAMIC_VNPU and scheduler_name != VOLCANO:
        return "name", (f"with {NPU_CORE} (dynamic vNPU), scheduler_name: volcano (MindCluster cuts vNPUs "
                        "through Volcano only)"), name
    if mode == MIXED and scheduler_name == VOLCANO:
        return "name", ("no Volcano with a mixed-insertion resource (MindCluster does not support it); set "
                        "scheduler_name to \"\""), name
    if mode == MIXED and not driver_mounts:
        return "name", ("driver_mounts: true with a mixed-insertion resource (Ascend Docker Runtime is not "
                        "supported in that mode, so the driver comes from the host)"), name
    return None


def visible_devices_env(resource: DeviceResource, scheduler_name: str) -> list[dict[str, Any]]:
    """The container's ``ASCEND_VISIBLE_DEVICES`` entry: from Volcano's pod annotation for whole chips under
    Volcano; none otherwise (the runtime or the device plugin sets it, or, for vNPUs, must not be set)."""
    if resource.mode == WHOLE and scheduler_name == VOLCANO and resource.name.startswith("huawei.com/"):
        return [{"name": npu_smi.VISIBLE_DEVICES_ENV, "valueFrom": {"fieldRef": {
            "fieldPath": f"metadata.annotations['{resource.name}']"}}}]
    return []
