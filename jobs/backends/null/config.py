"""Options of the null backend, checked without a device."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from jobs import errors, registry

DEVICES = ("cpu", "none")
OPTIONS = ("images_per_s", "num_classes", "dtype", "device_buffers", "logits")
DTYPES = ("float32", "uint8")
LOGITS = ("ramp", "tied", "nonfinite")


@dataclasses.dataclass(frozen=True)
class NullConfig:
    images_per_s: float | None = None
    """Stand in for a device computing this many images/s (each call waits batch / R seconds); None: no wait."""
    num_classes: int = 1000
    """Logits per image."""
    dtype: str | None = None
    """Input element type without an engine record (default: the data's)."""
    device_buffers: bool = False
    """Stand in for a device's memory too: each batch is copied into a preallocated buffer before the timed
    call (``H2D_latency``) and the logits out of one after it (``D2H_latency``), as a device backend does."""
    logits: str = "ramp"
    """The row every image gets: ``ramp`` (class 0 highest, falling to the last), ``tied`` (every logit equal: the
    ranking's tie rule alone decides the top-k), ``nonfinite`` (the ramp with +inf at class 1, NaN at class 2 and
    -inf at the last class, as an fp16 overflow leaves them: a run the accuracy gate must refuse)."""

    @classmethod
    def check_devices(cls, devices: list[str]) -> None:
        """Several stand-in devices at once (``jobs.backends.check_devices``): ``none:0``, ``none:1``, ... each a
        process computing nothing (with ``images_per_s``, waiting as a device of that speed would, the host idle)."""
        for d in devices:
            if not d.startswith("none:"):
                raise errors.OptionError(None, f"expected stand-in devices none:0, none:1, ... for a run on several, "
                                         f"got {d!r}")

    @classmethod
    def check(cls, device: str, options: Mapping[str, Any], precision: str = "fp32") -> NullConfig:
        """Any precision: the null backend computes nothing (the summary records the one asked for)."""
        kind, sep, index = device.partition(":")
        if device not in DEVICES and not (kind == "none" and sep and index.isdigit()):
            raise errors.OptionError(None, f"expected one of {', '.join(DEVICES)} or none:N (a stand-in device, for "
                                     f"runs on several) for backend null (it computes nothing), got {device!r}")
        registry.check_option_names(options, OPTIONS)
        rate = options.get("images_per_s")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0):
            raise errors.OptionError("images_per_s", f"expected a number > 0, got {rate!r}")
        classes = options.get("num_classes", 1000)
        if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
            raise errors.OptionError("num_classes", f"expected an integer >= 1, got {classes!r}")
        dtype = options.get("dtype")
        if dtype is not None and dtype not in DTYPES:
            raise errors.OptionError("dtype", f"expected one of {', '.join(DTYPES)}, got {dtype!r}")
        buffers = options.get("device_buffers", False)
        if not isinstance(buffers, bool):
            raise errors.OptionError("device_buffers", f"expected true or false, got {buffers!r}")
        logits = options.get("logits", "ramp")
        if logits not in LOGITS:
            raise errors.OptionError("logits", f"expected one of {', '.join(LOGITS)}, got {logits!r}")
        if logits == "nonfinite" and classes < 4:
            raise errors.OptionError("logits", f"nonfinite needs num_classes >= 4, got {classes}")
        return cls(images_per_s=float(rate) if rate is not None else None, num_classes=classes, dtype=dtype,
                   device_buffers=buffers, logits=logits)
