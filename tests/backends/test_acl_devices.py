"""The acl backend on every chip of a card at once, on the aclruntime stand-in with a stand-in ``npu-smi``: an Atlas
300I (4 x Ascend 310) and an Atlas 300I Duo (2 x 310P3 under one NPU id). Each chip's process finds its row by the
device id in ASCEND_VISIBLE_DEVICES, the run records the chips per card npu-smi lists, and the report calls its
per-card figure measured; one chip of the 300I is extrapolated."""

from __future__ import annotations

import os

import pytest

from jobs.artifacts import records
from jobs.devices import npu_smi
from jobs.stages import eval as eval_stage
from tests.support import acl
from tests.support.devices import NPU_SMI_ATLAS_300I, NPU_SMI_DUO, NPU_SMI_TWO_DUOS
from tests.support.stand_ins import write_tool


@pytest.fixture
def card(acl_work, acl_fake, monkeypatch, tmp_path):
    """Runs the infer stage on a card: ``npu-smi info`` prints ``table``, the stand-in has ``chips`` devices, the
    container sees ``visible``; returns the output folder."""

    def run(table: str, chips: int, visible: str, name: str, devices: list[str]):
        bin_dir = tmp_path / "bin"
        write_tool(bin_dir / "npu-smi", f"import sys\nsys.stdout.write({table!r})\n")
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.syspath_prepend(str(acl.importable_fake(tmp_path / "shim", chips)))
        acl_fake.DEVICE_COUNT = chips
        monkeypatch.setenv(npu_smi.VISIBLE_DEVICES_ENV, visible)
        engine = acl.engine(acl_work, "fake", "bs2", 2)
        extra = [a for d in devices for a in ("--devices", d)] if len(devices) > 1 else []
        code, out = acl.run(acl_work, name, engine, "float32", 2, *extra, device=devices[0])
        assert code == 0
        return out

    return run


def _eval(acl_work, out, tmp_path, card=None):
    report_dir = tmp_path / f"eval-{out.name}"
    args = ["--run", str(out), "--data", str(acl_work / "data-float32"), "--reference-top1", "0",
            "--reference-top5", "0", "--accelerator", f"{_target(out)}=Ascend310", "--out", str(report_dir), "--quiet"]
    assert eval_stage.main(args + (["--on-card", f"{_target(out)}={card}"] if card else [])) == 0
    return records.Report.from_json((report_dir / "report.json").read_text()).runs[0]


def _target(out):
    return records.InferSummary.from_json((out / records.SUMMARY).read_text()).target


def test_the_four_chips_of_an_atlas_300i_measure_the_card(card, acl_work, tmp_path):
    out = card(NPU_SMI_ATLAS_300I, 4, "0-3", "atlas-300i", [f"npu:{i}" for i in range(4)])
    summary = records.InferSummary.from_json((out / records.SUMMARY).read_text())
    d = summary.devices
    assert d.count == 4 and d.started_together
    assert (d.chips_per_card, d.card) == (4, "atlas-300i")
    assert [r.physical_id for r in d.devices] == [0, 1, 2, 3]
    infos = [i["device_info"] for i in summary.backend_info["devices"]]
    assert [i["device_id"] for i in infos] == [0, 1, 2, 3]
    assert all(i["chip_found_by"].startswith("device id") for i in infos)
    row = _eval(acl_work, out, tmp_path)
    assert (row.devices, row.per_card_basis, row.per_card_chips, row.per_card_chips_from) == (
        4, "measured", 4, "npu-smi info")
    assert row.per_card_throughput == pytest.approx(summary.throughput)


def test_one_chip_of_an_atlas_300i_is_extrapolated(card, acl_work, tmp_path):
    out = card(NPU_SMI_ATLAS_300I, 4, "2", "one-of-four", ["npu:0"])
    summary = records.InferSummary.from_json((out / records.SUMMARY).read_text())
    assert summary.backend_info["device_info"]["chips_on_card"] == 4
    row = _eval(acl_work, out, tmp_path)
    assert (row.devices, row.per_card_basis, row.per_card_chips) == (1, "extrapolated", 4)
    assert row.per_card_throughput == pytest.approx(4 * summary.throughput)


def test_the_two_chips_of_a_duo_under_one_npu_id(card, acl_work, tmp_path):
    out = card(NPU_SMI_DUO, 2, "0,1", "duo", ["npu:0", "npu:1"])
    d = records.InferSummary.from_json((out / records.SUMMARY).read_text()).devices
    assert (d.chips_per_card, d.card) == (2, "atlas-300i-duo")
    assert [(r.physical_id, r.card) for r in d.devices] == [(0, "atlas-300i-duo"), (1, "atlas-300i-duo")]


def test_two_chips_of_two_duo_cards_are_not_a_card(card, acl_work, tmp_path):
    # a pod given huawei.com/Ascend310P: 2 on a node with two Duos may get one chip of each: as many chips as a
    # card, but their sum is not a card's figure (the chips of one card share its PCIe link)
    out = card(NPU_SMI_TWO_DUOS, 4, "0,2", "split", ["npu:0", "npu:1"])
    d = records.InferSummary.from_json((out / records.SUMMARY).read_text()).devices
    assert [(r.physical_id, r.npu_id) for r in d.devices] == [(0, 8), (2, 9)] and d.whole_cards() is False
    row = _eval(acl_work, out, tmp_path)
    assert (row.devices, row.per_card_basis, row.per_card_chips) == (2, "scattered", 2)
    assert row.per_card_throughput == pytest.approx(
        records.InferSummary.from_json((out / records.SUMMARY).read_text()).throughput)  # per chip x 2
    both = card(NPU_SMI_TWO_DUOS, 4, "2,3", "whole", ["npu:0", "npu:1"])
    assert records.InferSummary.from_json((both / records.SUMMARY).read_text()).devices.whole_cards() is True
    assert _eval(acl_work, both, tmp_path).per_card_basis == "measured"
