"""Options of the acl backend and which NPU it runs on, validated without touching a device.

Devices are ``npu:N`` (ACL's device id N, as ``ais_infer --device N``) or ``npu`` alone. ``npu`` alone
is for pods: Ascend Docker Runtime mounts the chips a pod was given (by the device plugin) and names
them in ``ASCEND_VISIBLE_DEVICES`` (e.g. ``3`` or ``0-3``, physical ids). Inside the container ACL
counts the visible chips from 0, so ``npu`` means ACL device 0, the first chip handed over; the
physical id is recorded beside it. Without ``ASCEND_VISIBLE_DEVICES``, ``npu`` alone is an error:
name the device. ``npu:N`` with ``ASCEND_VISIBLE_DEVICES`` set must be below the number of chips it
lists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from jobs import errors, registry
from jobs.devices import npu_smi

OPTIONS = ("log_level", "acl_json_path")
PRECISIONS = ("fp32", "fp16")


@dataclasses.dataclass(frozen=True)
class AclConfig:
    """The device and options as given, checked without a device (``check``)."""

    device: str
    """As given: ``npu`` or ``npu:N``."""
    index: int | None = None
    """N of ``npu:N``; None for ``npu`` alone (the first chip the pod was given)."""
    log_level: int = 2
    """aclruntime's session log level (ais_bench: 1 with --debug, else 2)."""
    acl_json_path: str = ""
    """An acl.json for profiling or dumps (aclruntime ``session_options().acl_json_path``); empty: none."""

    @classmethod
    def check(cls, device: str, options: Mapping[str, Any], precision: str = "fp32") -> AclConfig:
        """The config for ``device`` and ``options``; ``errors.OptionError`` naming what is wrong. The precision
        is the .om's (ATC's ``--precision_mode``, set when the engine is built): fp32 or fp16."""
        if precision not in PRECISIONS:
            raise errors.OptionError("precision", f"expected one of {', '.join(PRECISIONS)} for backend acl (the "
                                     f".om's ATC precision_mode), got {precision!r}")
        kind, sep, index = device.partition(":")
        if kind != "npu" or (sep and not index.isdigit()):
            raise errors.OptionError(None, f"expected npu or npu:N for backend acl, got {device!r}")
        registry.check_option_names(options, OPTIONS)
        level = options.get("log_level", 2)
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 4:
            raise errors.OptionError("log_level", f"expected an integer 0..4, got {level!r}")
        acl_json = options.get("acl_json_path", "")
        if not isinstance(acl_json, str):
            raise errors.OptionError("acl_json_path", f"expected a path, got {acl_json!r}")
        return cls(device=device, index=int(index) if sep else None, log_level=level, acl_json_path=acl_json)

    @classmethod
    def check_devices(cls, devices: list[str]) -> None:
        """Several chips at once (``jobs.backends.check_devices``, as ``ais_bench --device 0,1,2,3``): each ``npu:N``,
        ACL's device id; in a pod that was given N chips, ``npu:0`` .. ``npu:N-1`` are the chips
        ``ASCEND_VISIBLE_DEVICES`` lists (``resolve``). ``npu`` alone names the first chip only."""
        for d in devices:
            if d == "npu":
                raise errors.OptionError(None, "expected npu:0, npu:1, ... for a run on several chips (npu alone is "
                                         "the first chip the pod was given), got 'npu'")

    def resolve(self, environ: Mapping[str, str]) -> AclDevice:
        """Which chip this process runs on, from ``ASCEND_VISIBLE_DEVICES`` (read when the backend opens,
        never baked into an image). ``BadInput`` when the device and the environment disagree."""
        raw = environ.get(npu_smi.VISIBLE_DEVICES_ENV)
        visible = npu_smi.parse_visible_devices(raw) if raw and raw.strip() else None
        if self.index is not None:
            device_id = self.index
            if visible is not None and device_id >= len(visible):
                raise errors.BadInput(f"device {self.device!r}: this container sees {len(visible)} NPU(s) "
                                      f"({npu_smi.VISIBLE_DEVICES_ENV}={raw}), ACL ids 0..{len(visible) - 1}")
        elif visible is None:
            raise errors.BadInput(f"device 'npu': {npu_smi.VISIBLE_DEVICES_ENV} is not set (Ascend Docker Runtime sets it "
                                  "in a pod); name the device instead, e.g. npu:0")
        else:
            device_id = 0
        physical = visible[device_id] if visible is not None else None
        return AclDevice(device_id=device_id, physical_id=physical, visible_devices=raw)


@dataclasses.dataclass(frozen=True)
class AclDevice:
    """The chip a process runs on."""

    device_id: int
    """ACL's device id (logical: the visible chips counted from 0)."""
    physical_id: int | None
    """The chip's physical id where ``ASCEND_VISIBLE_DEVICES`` says it; None when unknown."""
    visible_devices: str | None
    """``ASCEND_VISIBLE_DEVICES`` as this process saw it."""
