"""A run's figure per card, and whether it was measured on a whole card or extrapolated from fewer chips.

The seed's table is per card ("310P的单卡吞吐率"): an Ascend 310 card (Atlas 300I) carries 4 chips and ais_bench
measures it with one process per chip at once, summing their throughputs (``--device 0,1,2,3``). A run here on
every chip of a card (``targets[].devices``) measured that figure; a run on fewer chips is extrapolated: its images/s
per chip times the chips on the card, which assumes the other chips would not slow it down (they share the card's
PCIe link and the host's cores and memory bandwidth). Chips per card, first found of: what ``npu-smi info`` listed
at run time (rows sharing the chip's NPU id), the target's card (``targets[].card``), its accelerator's
(``jobs.devices``).
"""

from __future__ import annotations

import dataclasses

from jobs import devices

MEASURED, EXTRAPOLATED = "measured", "extrapolated"
SCATTERED = "scattered"
"""As many chips as whole cards ran at once, but npu-smi put them on parts of several cards: not a card's figure (an
extrapolation, shown as one)."""


@dataclasses.dataclass(frozen=True)
class PerCard:
    """A run's images/s per card and how it was had."""

    throughput: float
    """images/s per card (compute only, ais_infer's; summed over the devices of a run on several)."""
    basis: str
    """``measured`` (every chip of a card ran at once), ``extrapolated`` (from fewer chips) or ``scattered`` (as many
    chips, from several cards)."""
    chips: int
    """Chips on the card."""
    devices: int
    """Devices the run used."""
    chips_from: str
    """Where ``chips`` came from: ``npu-smi info``, ``card <name>`` or ``accelerator <name>``."""

    @property
    def measured(self) -> bool:
        return self.basis == MEASURED

    def note(self) -> str:
        """``measured on 4 of 4 chips`` / ``extrapolated from 1 of 4 chips (x4)`` / ``extrapolated: 4 chips of
        several cards, not whole cards (x1)``."""
        if self.basis == SCATTERED:
            return (f"extrapolated: {self.devices} chips of several cards, not whole cards (npu-smi NPU ids; per chip "
                    f"x{self.chips})")
        if self.measured:
            cards = self.devices // self.chips
            chips = "1 chip" if self.chips == 1 else f"{self.chips} chips"
            return (f"measured on {self.devices} of {chips}" if cards == 1
                    else f"measured on {cards} cards of {chips}, per card")
        return f"extrapolated from {self.devices} of {self.chips} chips (x{self.chips / self.devices:.3g})"


def chips_per_card(accelerator: str | None, card: str | None = None, recorded: int | None = None
                   ) -> tuple[int, str] | None:
    """(chips on the card, where that came from): ``recorded`` (npu-smi at run time), else the card's, else the
    accelerator's; None when nothing names a card (a CPU target)."""
    if recorded:
        return int(recorded), "npu-smi info"
    if card:
        return devices.get_card(card).chips, f"card {card}"
    if accelerator and accelerator in devices.CATALOGUE:
        return devices.CATALOGUE[accelerator].chips_per_card, f"accelerator {accelerator}"
    return None


def per_card(throughput: float, count: int, chips: int, chips_from: str, whole_cards: bool | None = None) -> PerCard:
    """The per-card figure of a run on ``count`` devices that gave ``throughput`` images/s in all, on a card of
    ``chips`` chips: measured when ``count`` is a whole number of cards (then per card: the sum over the cards),
    else extrapolated (per device times ``chips``). ``whole_cards`` (``DeviceSet.whole_cards``): False when npu-smi
    showed the devices on parts of several cards: then ``scattered``, per device times ``chips`` as well."""
    count = max(int(count), 1)
    if count % chips == 0 and whole_cards is False and count > 1:
        return PerCard(throughput / count * chips, SCATTERED, chips, count, chips_from)
    if count % chips == 0:
        return PerCard(throughput / (count // chips), MEASURED, chips, count, chips_from)
    return PerCard(throughput / count * chips, EXTRAPOLATED, chips, count, chips_from)
