"""The figures the seed guide publishes, keyed by catalogue name (``jobs.devices``), for side-by-side reading.

Images/s per card at each batch size, ais_infer's ``throughput`` (compute only), in fp16 (ATC
``force_fp16`` on Ascend, ``trtexec --fp16`` on the T4): seed section 7.1 ("310P的单卡吞吐率"). The Ascend
310 card carries 4 chips; the 310P and T4 figures are one card each (the catalogue's ``chips_per_card``).
Reports, plots, ``compare`` and the benchmarks read them from here only.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Published:
    """One accelerator's published throughput."""

    accelerator: str
    """Catalogue name (``jobs.devices.CATALOGUE``)."""
    label: str
    """Short name for tables and plots (``Ascend 310P``)."""
    throughput: dict[int, float]
    """Batch size -> images/s per card."""
    precision: str = "fp16"


SEED_MODEL = "ghostnet_1.0x"
"""The model the seed's table measures: reports of any other model leave the table out (its published accuracy comes
from the sweep file, ``model.published``)."""

SEED: dict[str, Published] = {p.accelerator: p for p in (
    Published("Ascend310", "Ascend 310", {1: 1348.024, 4: 2233.9991, 8: 2463.9302, 16: 2624.8900, 32: 2689.0490}),
    Published("Ascend310P3", "Ascend 310P", {1: 1502.4291, 4: 2317.6152, 8: 3739.9555, 16: 3438.7936, 32: 3020.9916}),
    Published("nvidia-t4", "NVIDIA T4", {1: 219.2172, 4: 701.0072, 8: 1032.52, 16: 924.992, 32: 447.872}),
)}
"""The seed's table, in its column order."""

SEED_RATIOS = (("Ascend310P3", "Ascend310"), ("Ascend310P3", "nvidia-t4"))
"""The ratio columns of the seed's table (section 7.1): 310P/310 and 310P/T4, per card."""
