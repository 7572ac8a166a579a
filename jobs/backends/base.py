"""The interface every inference backend implements."""

from __future__ import annotations

import abc
import dataclasses
import pathlib
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One model input: its name, element type and shape (None for a dynamic dimension)."""

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]

    @property
    def batch(self) -> int | None:
        return self.shape[0] if self.shape else None


@dataclasses.dataclass(frozen=True)
class RunTiming:
    """Times of one batch, in milliseconds, as the backend measures them.

    ``compute_ms`` is the model's execution alone (ais_infer's NPU_compute_time); the transfers
    are None where the backend has no separate host-to-device or device-to-host copy.
    """

    compute_ms: float
    h2d_ms: float | None = None
    d2h_ms: float | None = None


STAGING_SLOTS = 4
"""Device input buffers a staging backend cycles through: one in use, the rest filled ahead by the reading
thread (the infer stage keeps at most ``STAGING_SLOTS - 2`` staged batches queued)."""


@dataclasses.dataclass(frozen=True)
class Staged:
    """A batch already copied into one of the backend's device input buffers (``Backend.stage``)."""

    slot: int
    """Which device buffer holds it."""
    rows: int
    h2d_ms: float
    """The copy's time, timed where it ran (the reading thread)."""


@dataclasses.dataclass(frozen=True)
class EngineInfo:
    """What the infer stage knows of an engine: its file (if any) and the record convert wrote."""

    path: pathlib.Path | None
    record: dict[str, Any]


class Backend(abc.ABC):
    """Loads one engine and runs batches through it.

    Construction does no work; ``open`` loads the engine (and may fail with a one-line error).
    """

    name: str = ""

    computes_on_host: bool = False
    """True when the compute runs on this machine's CPU cores (ONNX Runtime on cpu): the infer
    stage then does its reading and ranking between calls, since helper threads would only take
    cores from the compute. False for a device (NPU, GPU): the host's work overlaps its compute."""

    @classmethod
    @abc.abstractmethod
    def open(cls, engine: EngineInfo, device: str, options: dict[str, Any], precision: str = "fp32") -> Backend:
        """Load the engine on ``device`` (e.g. 'cpu', 'cuda:0') to compute in ``precision``
        (``jobs.params.PRECISIONS``); ``options`` are backend-specific."""

    @property
    @abc.abstractmethod
    def input(self) -> TensorSpec:
        """The single image input the engine takes."""

    @abc.abstractmethod
    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, RunTiming]:
        """Logits [batch, classes] for a batch whose shape and dtype match ``input``."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """Device, providers, library versions: recorded in summary.json."""

    stages_input: bool = False
    """True when ``stage`` can copy a batch to the device from another thread than the one that calls
    ``infer_staged`` (then the copy overlaps the previous batch's compute, as a copy stream does)."""

    def stage(self, batch: np.ndarray) -> Staged:
        """Copy ``batch`` into the next device input buffer (of ``STAGING_SLOTS``); only where ``stages_input``."""
        raise NotImplementedError(f"backend {self.name} does not stage batches")

    def infer_staged(self, staged: Staged) -> tuple[np.ndarray, RunTiming]:
        """Logits of a staged batch; its ``RunTiming.h2d_ms`` is the staging copy's."""
        raise NotImplementedError(f"backend {self.name} does not stage batches")

    def close(self) -> None:
        """Release the engine and the device."""
