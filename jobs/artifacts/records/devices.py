"""``summary.json``'s ``devices``: a run on several devices of one host at once, as ais_bench measures a card.

ais_bench (``--device 0,1,2,3``, optionally ``--divide-input``) runs one process per device, started together, and
prints each device's throughput with its start and end time and their sum ("summary throughput"): the figure its
users hold against per-card tables. ``DeviceSet`` keeps that sum, every device's row, and beside them the wall-clock
images/s of the whole (every device's predictions pass, from the first start to the last end), which the sum
overstates when the devices slow each other down (a shared PCIe link, host cores, memory bandwidth).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

DEVICES_DIR = "devices"
"""Below a run's output: ``devices/<i>/summary.json`` and ``predictions.csv`` of its i-th device."""


@dataclasses.dataclass(frozen=True)
class DeviceRun:
    """One device of a run on several."""

    device: str
    """As the target names it (``npu:2``, ``cuda:1``, ``none:3``)."""
    throughput: float
    """This device's ais_infer throughput (images/s, compute only)."""
    images: int
    """Images in its predictions pass: the whole dataset, or its part with ``divide_input``."""
    first: int
    """Index of its first image in the dataset (0 unless ``divide_input``)."""
    end_to_end_images_per_second: float
    """Its own predictions pass, end to end."""
    started: float
    """When its timed predictions pass started, in seconds after the first device's (0 for that one)."""
    seconds: float
    """Wall time of its predictions pass (s)."""
    summary: str
    """Its own summary.json, relative to the run's output (``devices/<i>/summary.json``)."""
    valid: bool
    physical_id: int | None = None
    """The chip's physical (device) id where the runtime says (``ASCEND_VISIBLE_DEVICES``); None elsewhere."""
    chips_on_card: int | None = None
    """Chips on this device's card, as ``npu-smi info`` lists them (rows sharing its NPU id); None: not read."""
    card: str | None = None
    """The catalogue card (``jobs.devices.CARDS``) with that chip and that many chips; None: not known."""
    npu_id: int | None = None
    """The card's NPU id as ``npu-smi info`` lists it (the chips of one card share it); None: not read."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeviceRun:
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


@dataclasses.dataclass(frozen=True)
class DeviceSet:
    """Every device of the run, ais_bench's summed figure and the wall-clock figure of the whole."""

    devices: tuple[DeviceRun, ...]
    divide_input: bool
    """Each device inferred its part of the dataset (ais_bench's ``--divide-input``), not all of it."""
    summed_throughput: float
    """The sum of the devices' throughputs (images/s): ais_bench's "summary throughput"."""
    wall_images_per_second: float
    """Images of every device's predictions pass / ``wall_seconds``: what the host and devices did together."""
    wall_seconds: float
    """From the first device's start of its predictions pass to the last one's end (s)."""
    started_together: bool
    """Every timed repetition started on every device at once (the start barrier released them all)."""
    chips_per_card: int | None = None
    """Chips on the card, from ``npu-smi info`` where every device's row says the same; None: not read."""
    card: str | None = None
    """The catalogue card npu-smi's count names (``atlas-300i-duo``); None: not known."""
    disagreeing_images: int | None = None
    """Without ``divide_input``: images whose top-1 on some device differed from the first device's (whose predictions
    are the run's); 0 when every device agreed; None: not compared (each device inferred its own part)."""
    method: str = ("one process per device, started together at a barrier before each timed repetition "
                   "(ais_bench --device); throughput: the sum of the devices' (ais_bench's summary throughput)")

    @property
    def count(self) -> int:
        return len(self.devices)

    def whole_cards(self) -> bool | None:
        """Whether the devices are whole cards: grouped by their NPU id, each card ran as many chips as npu-smi lists
        on it. None: not known (a device without an NPU id or chip count: no npu-smi, a GPU, a stand-in). Four chips
        of a 2-card node may be two of each card: their sum is not one card's figure."""
        cards: dict[int, list[DeviceRun]] = {}
        for d in self.devices:
            if d.npu_id is None or not d.chips_on_card:
                return None
            cards.setdefault(d.npu_id, []).append(d)
        return all(len(on) == on[0].chips_on_card for on in cards.values())

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "devices": [d.to_dict() for d in self.devices], "divide_input": self.divide_input,
                "summed_throughput": self.summed_throughput, "wall_images_per_second": self.wall_images_per_second,
                "wall_seconds": self.wall_seconds, "started_together": self.started_together,
                "chips_per_card": self.chips_per_card, "card": self.card,
                "disagreeing_images": self.disagreeing_images, "method": self.method}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeviceSet:
        return cls(devices=tuple(DeviceRun.from_dict(x) for x in d["devices"]), divide_input=bool(d["divide_input"]),
                   summed_throughput=float(d["summed_throughput"]),
                   wall_images_per_second=float(d["wall_images_per_second"]), wall_seconds=float(d["wall_seconds"]),
                   started_together=bool(d["started_together"]), chips_per_card=d.get("chips_per_card"),
                   card=d.get("card"), disagreeing_images=d.get("disagreeing_images"),
                   method=d.get("method", cls.method))
