"""Cards in the catalogue (Atlas 300I: 4 x Ascend 310, Atlas 300I Pro: 1 x 310P3, Atlas 300I Duo: 2 x 310P3,
NVIDIA T4), chips per card read from ``npu-smi info`` (rows sharing an NPU id), and the chip found by its device
id on every card: the NPU id of a card of several chips names no one chip."""

from __future__ import annotations

import pytest

from jobs import devices, errors
from jobs.devices import npu_smi
from tests.support.devices import NPU_SMI_ATLAS_300I, NPU_SMI_DUO
from tests.support.stand_ins import NPU_SMI_INFO, write_tool


def test_the_cards_and_their_chips():
    assert {n: (c.chip, c.chips) for n, c in devices.CARDS.items()} == {
        "atlas-300i": ("Ascend310", 4), "atlas-300i-pro": ("Ascend310P3", 1), "atlas-300i-duo": ("Ascend310P3", 2),
        "nvidia-t4": ("nvidia-t4", 1)}
    for acc in devices.CATALOGUE.values():  # the published figure's card and chips per card agree
        if acc.card is not None:
            assert devices.CARDS[acc.card].chips == acc.chips_per_card and devices.CARDS[acc.card].chip == acc.name
    assert devices.card_of("Ascend310P3", 2).name == "atlas-300i-duo"
    assert devices.card_of("Ascend310P3").name == "atlas-300i-pro"
    assert devices.card_of("Ascend310P3", 3) is None
    assert all("ASCEND_VISIBLE_DEVICES (device ids" in c.visible_devices for c in devices.CARDS.values()
               if devices.CATALOGUE[c.chip].kind == "npu")
    with pytest.raises(errors.BadInput, match="card 'atlas-900' is not known; expected one of atlas-300i, "):
        devices.get_card("atlas-900")


@pytest.mark.parametrize("table, physical, device, by", [
    (NPU_SMI_DUO, 1, 1, "device id 1 (ASCEND_VISIBLE_DEVICES)"),
    (NPU_SMI_DUO, 8, None, "8 is the NPU id of a card of 2 chips (device ids 0, 1); ASCEND_VISIBLE_DEVICES holds "
                           "device ids"),
    (NPU_SMI_ATLAS_300I, 3, 3, "device id 3 (ASCEND_VISIBLE_DEVICES)"),
])
def test_the_chip_is_found_by_its_device_id_on_every_card(table, physical, device, by):
    chip, found_by = npu_smi.find_chip(npu_smi.parse_info(table).chips, 0, physical)
    assert (chip.device if chip else None) == device
    assert by in found_by


@pytest.mark.parametrize("table, physical, chips, card", [
    (NPU_SMI_ATLAS_300I, 2, 4, "atlas-300i"),
    (NPU_SMI_DUO, 1, 2, "atlas-300i-duo"),
    (NPU_SMI_INFO, 0, 1, "atlas-300i-pro"),
])
def test_chips_per_card_are_read_from_npu_smi_and_recorded(tmp_path, table, physical, chips, card):
    exe = write_tool(tmp_path / "npu-smi", f"import sys\nsys.stdout.write({table!r})\n")
    info = npu_smi.device_info(0, physical, exe=str(exe), cann_homes=[])
    assert (info["chips_on_card"], info["card"]) == (chips, card)
