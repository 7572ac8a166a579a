"""What an acl run records about its chip (``backend_info.device_info`` in ``summary.json``): the chip's npu-smi
name and catalogue soc_version, health and bus id, the npu-smi/driver and CANN versions.

``jobs.devices.npu_smi`` parses ``npu-smi info`` tables as the Ascend driver prints them (310P3, 910B with its process
table, a 4-chip Ascend 310 card) and CANN's version files from fixture directories; end to end, the infer
stage runs against the fake aclruntime with a stand-in ``npu-smi`` on PATH. The chip is the one
``ASCEND_VISIBLE_DEVICES`` names at run time: no image, chart or Job sets it.
"""

from __future__ import annotations

import json
import os
import pathlib

import pytest
import yaml

from jobs.devices import npu_smi
from tests.support.acl import engine, run
from tests.support.devices import NPU_SMI_ATLAS_300I
from tests.support.manifests import golden_documents
from tests.support.paths import REPO_ROOT
from tests.support.stand_ins import NPU_SMI_INFO, write_tool

NPU_SMI_910B = """\
+------------------------------------------------------------------------------------------------+
| npu-smi 23.0.6                   Version: 23.0.6                                               |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     910B3               | OK            | 88.6        37                0    / 0             |
| 0                         | 0000:C1:00.0  | 0           0    / 0          3395 / 65536         |
+===========================+===============+====================================================+
| 1     910B3               | Warning       | 92.1        36                0    / 0             |
| 0                         | 0000:C2:00.0  | 0           0    / 0          3394 / 65536         |
+===========================+===============+====================================================+
+---------------------------+---------------+----------------------------------------------------+
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| 0       0                 | 2345          | python3.9                | 3000                    |
+===========================+===============+====================================================+
| No running processes found in NPU 1                                                            |
+===========================+===============+====================================================+
"""

# an Atlas 300I card: one NPU id, four Ascend 310 chips, each its own /dev/davinciN; the last one in Alarm
NPU_SMI_310_CARD = NPU_SMI_ATLAS_300I.replace("| 1       310       | OK              | 12.8              47",
                                              "| 1       310       | Alarm           | 12.8              47")
assert "Alarm" in NPU_SMI_310_CARD

VERSION_CFG = """\
runtime_running_version=[7.3.0.1.231:8.0.RC2]
compiler_running_version=[7.3.0.1.231:8.0.RC2]
toolkit_running_version=[7.3.0.1.231:8.0.RC2]
"""


# -- parsing ---------------------------------------------------------------------------------------

def test_parse_310p3():
    info = npu_smi.parse_info(NPU_SMI_INFO)
    assert (info.npu_smi_version, info.driver_version) == ("23.0.rc2", "23.0.rc2")
    assert info.chips == (npu_smi.Chip(0, "310P3", "OK", chip=0, device=0, bus_id="0000:3B:00.0", aicore_percent=0.0),)


def test_parse_910b_reads_the_process_table_apart_from_the_chips():
    info = npu_smi.parse_info(NPU_SMI_910B)
    assert (info.npu_smi_version, info.driver_version) == ("23.0.6", "23.0.6")
    assert info.chips == (npu_smi.Chip(0, "910B3", "OK", chip=0, bus_id="0000:C1:00.0", aicore_percent=0.0),
                          npu_smi.Chip(1, "910B3", "Warning", chip=0, bus_id="0000:C2:00.0", aicore_percent=0.0))
    assert info.processes == ((0, 0, 2345),)  # what runs on NPU 0's chip 0; "No running processes" is no row


def test_parse_a_four_chip_310_card():
    chips = npu_smi.parse_info(NPU_SMI_310_CARD).chips
    assert [(c.npu, c.name, c.chip, c.device) for c in chips] == [(1, "310", i, i) for i in range(4)]
    assert chips[3].health == "Alarm" and chips[3].bus_id == "0000:08:00.0"


def test_parse_garbage_finds_nothing():
    assert npu_smi.parse_info("dcmi module initialize failed. ret is -8005\n") == npu_smi.NpuSmiInfo(None, None, ())


@pytest.mark.parametrize("text, version", [
    (VERSION_CFG, "8.0.RC2"),
    ("toolkit_running_version=[6.3.0.1.241:6.3.RC1]\n", "6.3.RC1"),
    ("Version=7.0.0\nversion_dir=7.0.0\n", "7.0.0"),
    ("package_name=Ascend-cann-toolkit\nversion=8.0.0\n", "8.0.0"),
    ("nothing here\n", None),
])
def test_parse_cann_version(text, version):
    assert npu_smi.parse_cann_version(text) == version


def test_cann_version_files(tmp_path):
    toolkit, nnrt = tmp_path / "ascend-toolkit" / "latest", tmp_path / "nnrt" / "latest"
    (nnrt / "runtime").mkdir(parents=True)
    (nnrt / "runtime" / "version.info").write_text("Version=7.0.0\n")
    assert npu_smi.cann_version([toolkit, nnrt]) == ("7.0.0", str(nnrt / "runtime" / "version.info"))
    toolkit.mkdir(parents=True)
    (toolkit / "version.cfg").write_text(VERSION_CFG)
    assert npu_smi.cann_version([toolkit, nnrt]) == ("8.0.RC2", str(toolkit / "version.cfg"))
    assert npu_smi.cann_version([tmp_path / "absent"]) == (None, None)


@pytest.mark.parametrize("text, device_id, physical_id, expected, by", [
    (NPU_SMI_310_CARD, 0, 2, 2, "device id 2 (ASCEND_VISIBLE_DEVICES)"),
    (NPU_SMI_310_CARD, 3, None, 3, "device id 3 (ACL device id)"),
    (NPU_SMI_910B, 0, 1, 1, "NPU id 1 (ASCEND_VISIBLE_DEVICES)"),
    (NPU_SMI_INFO, 0, 5, 0, "the only chip npu-smi lists"),
    (NPU_SMI_910B, 0, 7, None, "no row for ASCEND_VISIBLE_DEVICES 7"),
])
def test_find_chip(text, device_id, physical_id, expected, by):
    chip, found_by = npu_smi.find_chip(npu_smi.parse_info(text).chips, device_id, physical_id)
    key = None if chip is None else (chip.device if chip.device is not None else chip.npu)
    assert (key, found_by) == (expected, by)


# -- device_info, with a stand-in npu-smi -----------------------------------------------------------------

def stand_in(bin_dir: pathlib.Path, table: str = NPU_SMI_INFO, exit_code: int = 0, stderr: str = "") -> pathlib.Path:
    return write_tool(bin_dir / "npu-smi", f"import sys\nassert sys.argv[1:] == ['info'], sys.argv\n"
                      f"sys.stdout.write({table!r})\nsys.stderr.write({stderr!r})\nsys.exit({exit_code})\n")


def test_device_info(tmp_path):
    home = tmp_path / "toolkit"
    home.mkdir()
    (home / "version.cfg").write_text(VERSION_CFG)
    info = npu_smi.device_info(0, 3, exe=str(stand_in(tmp_path / "bin", NPU_SMI_310_CARD)), cann_homes=[home],
                               driver_version_file=tmp_path / "absent")
    assert info["chip_name"] == "310" and info["soc_version"] == "Ascend310"
    assert (info["npu_id"], info["device_id"], info["bus_id"], info["health"]) == (1, 3, "0000:08:00.0", "Alarm")
    assert info["chip_found_by"] == "device id 3 (ASCEND_VISIBLE_DEVICES)"
    assert info["chips_listed"] == ["1:310/0", "1:310/1", "1:310/2", "1:310/3"]
    assert (info["npu_smi"], info["npu_smi_version"]) == ("npu-smi info", "20.2.0")
    assert (info["driver_version"], info["driver_version_from"]) == ("20.2.0", "npu-smi info")
    assert (info["cann_version"], info["cann_version_from"]) == ("8.0.RC2", str(home / "version.cfg"))


def test_device_info_without_the_row_keeps_a_name_every_chip_shares(tmp_path):
    info = npu_smi.device_info(0, 7, exe=str(stand_in(tmp_path / "bin", NPU_SMI_910B)), cann_homes=[])
    assert info["chip_name"] == "910B3" and info["soc_version"] == "Ascend910B" and info["npu_id"] is None
    assert info["chip_found_by"] == "no row for ASCEND_VISIBLE_DEVICES 7"


def test_device_info_when_npu_smi_fails_records_why_and_reads_the_drivers_file(tmp_path):
    driver = tmp_path / "driver-version.info"
    driver.write_text("Version=23.0.rc3\nascendhal_version=7.35.19\n")
    exe = stand_in(tmp_path / "bin", "", 255, "dcmi module initialize failed. ret is -8005\n")
    info = npu_smi.device_info(0, None, exe=str(exe), cann_homes=[tmp_path], driver_version_file=driver)
    assert info["npu_smi"] == "npu-smi info failed (exit 255): dcmi module initialize failed. ret is -8005"
    assert info["chip_name"] is None and info["cann_version"] is None
    assert (info["driver_version"], info["driver_version_from"]) == ("23.0.rc3", str(driver))


def test_device_info_without_npu_smi(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    info = npu_smi.device_info(0, None, cann_homes=[], driver_version_file=tmp_path / "absent")
    assert info["npu_smi"] == "npu-smi is not on PATH (it comes with the Ascend driver)"
    assert info["driver_version"] is None


# -- end to end: the infer summary ------------------------------------------------------------------------

def test_the_summary_records_the_chip_the_pod_was_given(acl_work, acl_fake, monkeypatch, tmp_path):
    bin_dir = tmp_path / "bin"
    stand_in(bin_dir, NPU_SMI_910B)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    home = tmp_path / "ascend-toolkit" / "latest"
    home.mkdir(parents=True)
    (home / "version.cfg").write_text(VERSION_CFG)
    monkeypatch.setattr(npu_smi, "CANN_HOMES", (home,))
    monkeypatch.setenv(npu_smi.VISIBLE_DEVICES_ENV, "1")  # what Ascend Docker Runtime sets in the pod
    code, out = run(acl_work, "infer-fake-device-info", engine(acl_work, "fake", "f32-bs4", 4), "float32", 4,
                    device="npu")
    assert code == 0
    info = json.loads((out / "summary.json").read_text())["backend_info"]
    assert info["acl_device_id"] == 0 and info["physical_device_id"] == 1
    device = info["device_info"]
    assert (device["chip_name"], device["soc_version"], device["npu_id"]) == ("910B3", "Ascend910B", 1)
    assert (device["health"], device["bus_id"]) == ("Warning", "0000:C2:00.0")
    assert (device["driver_version"], device["npu_smi_version"]) == ("23.0.6", "23.0.6")
    assert (device["cann_version"], device["cann_version_from"]) == ("8.0.RC2", str(home / "version.cfg"))


def test_no_image_chart_or_job_sets_the_visible_devices():
    """ASCEND_VISIBLE_DEVICES comes from the device plugin / Ascend Docker Runtime at run time, never baked in; under
    Volcano, from the pod annotation Volcano writes."""
    env = npu_smi.VISIBLE_DEVICES_ENV
    charts = (p for p in (REPO_ROOT / "charts").rglob("*") if p.is_file())
    for path in [*REPO_ROOT.glob("images/*/Dockerfile"), *charts]:
        for line in path.read_text(errors="replace").splitlines():
            code = line.split("#", 1)[0]
            assert env not in code, f"{path.relative_to(REPO_ROOT)} sets {env}: {line.strip()}"
    for name, doc in golden_documents().items():
        for job in yaml.safe_load_all(doc):  # only Volcano's choice, read from its pod annotation (MindCluster's way)
            for var in job["spec"]["template"]["spec"]["containers"][0]["env"]:
                if var["name"] == env:
                    assert var["valueFrom"]["fieldRef"]["fieldPath"].startswith("metadata.annotations['huawei.com/"), name
                    assert job["spec"]["template"]["spec"]["schedulerName"] == "volcano", name
