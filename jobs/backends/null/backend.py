"""Returns the same logits for every image at once, so images/s through it is the harness ceiling.

With ``--option images_per_s=R`` it stands in for an accelerator that computes R images/s: each
call waits batch/R seconds with the host idle (no CPU, GIL released), as a host waits on an NPU.
The harness benchmark uses it to measure what the host side costs next to a device of known speed.
Its thread's timer slack is set to 1 ns (``exact_waits``): Linux otherwise lets a sleep end up to 50 us
late, and a 50 us wait (batch 1 at 20,000 images/s) took 121 us: 20,000 against 16,000 images/s measured
7,700 against 7,300 at batch 1 (a 6% change where 20% was meant); with 1 ns, 70 us (the VM's wake-up).

With ``--option device_buffers=true`` it also stands in for a device's memory: each batch is copied into a
preallocated buffer before the timed call (timed as ``H2D_latency``) and the logits out of another after it
(``D2H_latency``), so the feed path to a fast device, copies included, can be measured without one.

With ``--option logits=tied`` every logit is equal and with ``logits=nonfinite`` some are NaN or infinite: the
stand-ins for a model whose outputs the ranking's tie rule decides, or that overflowed (``config.NullConfig``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from jobs.backends import base
from jobs.backends.null import config as config_mod
from jobs.devices import kernel


class NullBackend(base.Backend):
    name = "null"

    def __init__(self, spec: base.TensorSpec, num_classes: int, images_per_s: float | None = None,
                 device_buffers: bool = False, logits: str = "ramp"):
        self._spec = spec
        self._seconds_per_image = 1.0 / images_per_s if images_per_s else 0.0
        if images_per_s:
            exact_waits()
        # with a simulated speed it stands in for a device; without, nothing to overlap with
        self.computes_on_host = not images_per_s
        self._kind = logits
        self._logits = _row(logits, num_classes)
        self._out = np.empty((0, num_classes), dtype=np.float32)
        self._device_buffers = device_buffers
        self._device_in: np.ndarray | None = None  # the stand-in device memory, allocated on the first batch
        self._host_out: np.ndarray | None = None
        # a stand-in device with its own memory takes batches staged ahead, as a copy stream would
        self.stages_input = device_buffers and bool(images_per_s)
        self._slots: list[np.ndarray] = []
        self._next_slot = 0

    @classmethod
    def open(cls, engine: base.EngineInfo, device: str, options: dict[str, Any],
             precision: str = "fp32") -> NullBackend:
        cfg = config_mod.NullConfig.check(device, options, precision)
        inp = engine.record.get("input", {})
        spec = base.TensorSpec(
            name=inp.get("name", "image"),
            dtype=np.dtype(inp.get("dtype", cfg.dtype or "float32")),
            shape=tuple(inp.get("shape", (None, 3, 224, 224))),
        )
        return cls(spec, cfg.num_classes, cfg.images_per_s, cfg.device_buffers, cfg.logits)

    @property
    def input(self) -> base.TensorSpec:
        return self._spec

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, base.RunTiming]:
        if self._out.shape[0] != batch.shape[0]:
            self._out = np.broadcast_to(self._logits, (batch.shape[0], self._logits.size))
        if not self._device_buffers:
            t0 = time.perf_counter()
            if self._seconds_per_image:
                time.sleep(batch.shape[0] * self._seconds_per_image)  # the simulated device computes
            return self._out, base.RunTiming(compute_ms=(time.perf_counter() - t0) * 1e3)
        if self._device_in is None or self._device_in.shape != batch.shape:
            self._device_in = np.empty_like(batch)
            self._host_out = np.empty(self._out.shape, dtype=self._out.dtype)
        assert self._host_out is not None
        t0 = time.perf_counter()
        np.copyto(self._device_in, batch)  # host -> "device"
        t1 = time.perf_counter()
        if self._seconds_per_image:
            time.sleep(batch.shape[0] * self._seconds_per_image)
        t2 = time.perf_counter()
        np.copyto(self._host_out, self._out)  # "device" -> host
        t3 = time.perf_counter()
        return self._host_out, base.RunTiming(compute_ms=(t2 - t1) * 1e3, h2d_ms=(t1 - t0) * 1e3,
                                              d2h_ms=(t3 - t2) * 1e3)

    def stage(self, batch: np.ndarray) -> base.Staged:
        if not self._slots or self._slots[0].shape != batch.shape:
            self._slots = [np.zeros_like(batch) for _ in range(base.STAGING_SLOTS)]  # touched now, not in the pass
        slot = self._next_slot
        self._next_slot = (slot + 1) % base.STAGING_SLOTS
        t0 = time.perf_counter()
        np.copyto(self._slots[slot], batch)  # host -> "device", on the reading thread
        return base.Staged(slot=slot, rows=batch.shape[0], h2d_ms=(time.perf_counter() - t0) * 1e3)

    def infer_staged(self, staged: base.Staged) -> tuple[np.ndarray, base.RunTiming]:
        if self._out.shape[0] != staged.rows:
            self._out = np.broadcast_to(self._logits, (staged.rows, self._logits.size))
        if self._host_out is None or self._host_out.shape != self._out.shape:
            self._host_out = np.empty(self._out.shape, dtype=self._out.dtype)
        t1 = time.perf_counter()
        time.sleep(staged.rows * self._seconds_per_image)
        t2 = time.perf_counter()
        np.copyto(self._host_out, self._out)  # "device" -> host
        t3 = time.perf_counter()
        return self._host_out, base.RunTiming(compute_ms=(t2 - t1) * 1e3, h2d_ms=staged.h2d_ms,
                                              d2h_ms=(t3 - t2) * 1e3)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "device": "none",
                "simulated_images_per_s": 1.0 / self._seconds_per_image if self._seconds_per_image else None,
                "device_buffers": self._device_buffers, "logits": self._kind}


TIMER_SLACK_NS = 1


def exact_waits() -> None:
    """Have the kernel end this thread's sleeps as close to their deadline as it can (``PR_SET_TIMERSLACK``; the
    thread that opens the backend is the one that calls it). Nothing outside Linux."""
    kernel.prctl(kernel.PR_SET_TIMERSLACK, TIMER_SLACK_NS)


def _row(kind: str, num_classes: int) -> np.ndarray:
    """The logits every image gets (``config.NullConfig.logits``)."""
    if kind == "tied":
        return np.zeros(num_classes, dtype=np.float32)
    row = np.linspace(1.0, 0.0, num_classes, dtype=np.float32)  # class 0 always wins
    if kind == "nonfinite":
        row[1], row[2], row[-1] = np.inf, np.nan, -np.inf
    return row
