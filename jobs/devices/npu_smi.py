"""Which Ascend chip a process runs on and the software around it: ``npu-smi info``, the driver's and CANN's versions.

``npu-smi info`` (from the Ascend driver; in a pod, mounted by Ascend Docker Runtime or the chart's driver
mounts) prints a table::

    | npu-smi 23.0.rc2                 Version: 23.0.rc2                    |   <- npu-smi's and the driver's versions
    | NPU     Name        | Health     | Power(W)  Temp(C) ...              |
    | Chip    Device      | Bus-Id     | AICore(%) Memory-Usage(MB) ...     |
    +=====================+============+====================================+
    | 0       310P3       | OK         | NA        47 ...                   |   <- NPU id, chip name, health
    | 0       0           | 0000:3B:00.0 | 0       1684 / 21527           |   <- chip on the card, device id, bus
    ...
    | NPU     Chip        | Process id | Process name | Process memory(MB) |   <- processes: not chips

``parse_info`` reads it (pure); ``device_info`` runs it, finds the row of the chip this process uses, and
adds the CANN version from the toolkit's ``version.cfg`` (``runtime_running_version=[7.3.0.1.231:8.0.RC2]``)
or a ``version.info`` (``Version=8.0.RC2``). Nothing here fails a run: what cannot be read is recorded as
missing, with the reason. The paths are parameters (defaults below), so tests use fixture files and a
stand-in ``npu-smi``.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any

from jobs import devices, errors

NPU_SMI = "npu-smi"
VISIBLE_DEVICES_ENV = "ASCEND_VISIBLE_DEVICES"
"""The chips Ascend Docker Runtime gives a container (physical ids); ACL numbers them 0..n-1 inside it."""
ASCEND_HOME = pathlib.Path("/usr/local/Ascend")
CANN_HOMES: tuple[pathlib.Path, ...] = (ASCEND_HOME / "ascend-toolkit" / "latest", ASCEND_HOME / "nnrt" / "latest")
"""Where a CANN toolkit or runtime (nnrt) is installed (the images' layout)."""
DRIVER_VERSION_FILE = ASCEND_HOME / "driver" / "version.info"
"""The driver's ``Version=...``: its version when ``npu-smi`` is not there."""
TIMEOUT_S = 30.0

_BUS_ID = re.compile(r"[0-9A-Fa-f]{4}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]")
_HEALTH = re.compile(r"[A-Za-z][A-Za-z_ -]*")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")


@dataclasses.dataclass(frozen=True)
class Chip:
    """One chip of an ``npu-smi info`` table."""

    npu: int
    """The NPU (card) id npu-smi prints."""
    name: str
    """The chip name npu-smi prints, e.g. ``310P3``, ``910B3``, ``310``."""
    health: str
    chip: int | None = None
    """The chip's index on its card."""
    device: int | None = None
    """The device id (``/dev/davinciN``), where npu-smi prints one."""
    bus_id: str | None = None
    aicore_percent: float | None = None
    """The AI Core utilization (%) npu-smi printed for the chip, where it printed one."""


@dataclasses.dataclass(frozen=True)
class NpuSmiInfo:
    npu_smi_version: str | None
    driver_version: str | None
    chips: tuple[Chip, ...]
    processes: tuple[tuple[int, int | None, int], ...] = ()
    """(NPU id, chip, pid) of every process in the process table below the chips."""


def parse_info(text: str) -> NpuSmiInfo:
    """The versions, the chips (with AI Core utilization) and the processes in ``npu-smi info`` output."""
    m = re.search(r"npu-smi\s+(\d\S*)", text)
    npu_smi_version = m.group(1) if m else None
    m = re.search(r"Version:\s*(\S+)", text)
    driver_version = m.group(1) if m else None
    chips: list[Chip] = []
    processes: list[tuple[int, int | None, int]] = []
    card: Chip | None = None  # the last NPU row: the chip rows below it belong to it
    in_processes = False
    for line in text.splitlines():
        if re.search(r"Process\s+(id|name)", line):
            in_processes = True  # the process table: its rows look like chip rows
            continue
        if in_processes:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            ids = cells[0].split() if cells else []
            if len(cells) >= 2 and ids and ids[0].isdigit() and cells[1].isdigit():
                processes.append((int(ids[0]), int(ids[1]) if len(ids) > 1 and ids[1].isdigit() else None,
                                  int(cells[1])))
            continue
        if not line.lstrip().startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2:
            continue
        first, second = cells[0].split(), cells[1]
        if not first or not first[0].isdigit():
            continue
        if _BUS_ID.fullmatch(second):
            if card is None:
                continue
            usage = cells[2].split() if len(cells) > 2 else []
            chip = Chip(card.npu, card.name, card.health, chip=int(first[0]),
                        device=int(first[1]) if len(first) > 1 and first[1].isdigit() else None, bus_id=second,
                        aicore_percent=float(usage[0]) if usage and _NUMBER.fullmatch(usage[0]) else None)
            if chips and chips[-1] is card:
                chips[-1] = chip  # the card's first chip completes its row
            else:
                chips.append(chip)
        elif len(first) >= 2 and _HEALTH.fullmatch(second):
            card = Chip(int(first[0]), first[1], second)
            chips.append(card)
    return NpuSmiInfo(npu_smi_version, driver_version, tuple(chips), tuple(processes))


def parse_cann_version(text: str) -> str | None:
    """The CANN release in a ``version.cfg`` (``runtime_running_version=[7.3.0.1.231:8.0.RC2]`` -> ``8.0.RC2``)
    or a ``version.info`` (``Version=8.0.RC2``)."""
    for key in ("runtime_running_version", "toolkit_running_version", "compiler_running_version"):
        m = re.search(rf"^\s*{key}\s*=\s*\[?([^\]\s]+)\]?", text, re.MULTILINE)
        if m:
            return m.group(1).rsplit(":", 1)[-1]
    m = re.search(r"^\s*version\s*=\s*(\S+)", text, re.IGNORECASE | re.MULTILINE)
    return m.group(1) if m else None


def cann_version(homes: Iterable[pathlib.Path] = CANN_HOMES) -> tuple[str | None, str | None]:
    """``(version, file it came from)``: the first of ``<home>/version.cfg``, ``<home>/version.info`` and
    ``<home>/*/version.info`` (runtime, compiler, ...) that names one; ``(None, None)`` if none does."""
    for home in homes:
        candidates = [home / "version.cfg", home / "version.info", *sorted(home.glob("*/version.info"))]
        for path in candidates:
            try:
                version = parse_cann_version(path.read_text(errors="replace"))
            except OSError:
                continue
            if version:
                return version, str(path)
    return None, None


def run_info(exe: str | None = None, timeout_s: float = TIMEOUT_S) -> str:
    """The output of ``npu-smi info``; ``errors.BadInput`` (one line) when it is missing or fails."""
    exe = exe or shutil.which(NPU_SMI)
    if exe is None:
        raise errors.BadInput("npu-smi is not on PATH (it comes with the Ascend driver)")
    try:
        r = subprocess.run([exe, "info"], capture_output=True, text=True, timeout=timeout_s,
                           stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired as e:
        raise errors.BadInput(f"npu-smi info did not answer in {timeout_s:g} s") from e
    except OSError as e:
        raise errors.BadInput(f"cannot run npu-smi ({e.strerror})") from e
    if r.returncode != 0:
        first = (r.stderr or r.stdout).strip().splitlines()[:1]
        raise errors.BadInput(f"npu-smi info failed (exit {r.returncode})" + (f": {first[0]}" if first else ""))
    return r.stdout


def find_chip(chips: Iterable[Chip], device_id: int, physical_id: int | None) -> tuple[Chip | None, str]:
    """The row of the chip a process uses, and how it was found. ``physical_id`` (from ``ASCEND_VISIBLE_DEVICES``,
    which holds device ids on every card: Ascend Docker Runtime mounts ``/dev/davinciN``) is looked up as the device
    id npu-smi prints; without it, ACL's ``device_id`` is looked up the same way (on a host ACL counts all chips).
    A table without device ids (910B) is looked up by NPU id, as is a value that is the NPU id of a one-chip card;
    the NPU id of a card of several chips (Atlas 300I, Atlas 300I Duo) names no one chip: no row, and the reason
    says so. A table with one chip is that chip."""
    chips = list(chips)
    wanted = physical_id if physical_id is not None else device_id
    by = "ASCEND_VISIBLE_DEVICES" if physical_id is not None else "ACL device id"
    for chip in chips:
        if chip.device == wanted:
            return chip, f"device id {wanted} ({by})"
    on_card = [c for c in chips if c.npu == wanted]
    if len(on_card) == 1:
        return on_card[0], f"NPU id {wanted} ({by})"
    if len(chips) == 1:
        return chips[0], "the only chip npu-smi lists"
    if on_card:
        ids = ", ".join(str(c.device) for c in on_card)
        return None, (f"no row for {by} {wanted}: {wanted} is the NPU id of a card of {len(on_card)} chips (device "
                      f"ids {ids}); {VISIBLE_DEVICES_ENV} holds device ids")
    return None, f"no row for {by} {wanted}"


def chips_on_card(chips: Iterable[Chip], chip: Chip) -> int:
    """How many chips share ``chip``'s card: the rows of ``npu-smi info`` with its NPU id (an Atlas 300I: 4, an Atlas
    300I Duo: 2, a 300I Pro or a 910B: 1)."""
    return sum(1 for c in chips if c.npu == chip.npu)


def device_info(device_id: int, physical_id: int | None, exe: str | None = None,
                cann_homes: Iterable[pathlib.Path] | None = None, driver_version_file: pathlib.Path | None = None,
                timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    """What the infer summary records about the chip (``backend_info.device_info``): its name and catalogue
    soc_version, health and bus id, the chips on its card (``chips_on_card``: the rows sharing its NPU id) and the
    catalogue card with that many (``card``), the npu-smi/driver and CANN versions, and where each came from."""
    info: dict[str, Any] = {"chip_name": None, "soc_version": None, "npu_id": None, "device_id": None,
                            "bus_id": None, "health": None, "chip_found_by": None, "chips_listed": [],
                            "chips_on_card": None, "card": None,
                            "npu_smi": None, "npu_smi_version": None, "driver_version": None,
                            "driver_version_from": None, "cann_version": None, "cann_version_from": None}
    try:
        parsed = parse_info(run_info(exe, timeout_s))
    except errors.BadInput as e:
        info["npu_smi"] = str(e)
    else:
        info["npu_smi"] = "npu-smi info"
        info["npu_smi_version"] = parsed.npu_smi_version
        if parsed.driver_version:
            info["driver_version"], info["driver_version_from"] = parsed.driver_version, "npu-smi info"
        info["chips_listed"] = [f"{c.npu}:{c.name}" + (f"/{c.device}" if c.device is not None else "")
                                for c in parsed.chips]
        chip, found_by = find_chip(parsed.chips, device_id, physical_id)
        info["chip_found_by"] = found_by
        if chip is None and len({c.name for c in parsed.chips}) == 1:
            chip_name = parsed.chips[0].name  # which row is unknown, but every chip here is the same kind
            info["chip_name"] = chip_name
        if chip is not None:
            info.update(chip_name=chip.name, npu_id=chip.npu, device_id=chip.device, bus_id=chip.bus_id,
                        health=chip.health, chips_on_card=chips_on_card(parsed.chips, chip))
        if info["chip_name"]:
            try:
                info["soc_version"] = soc_version(f" {info['chip_name']} ")
            except errors.BadInput:
                pass  # a chip the catalogue does not know: its name is recorded all the same
        if info["soc_version"] and info["chips_on_card"]:
            card = devices.card_of(info["soc_version"], info["chips_on_card"])
            info["card"] = card.name if card is not None else None
    if info["driver_version"] is None:
        path = driver_version_file or DRIVER_VERSION_FILE
        try:
            m = re.search(r"^\s*version\s*=\s*(\S+)", path.read_text(errors="replace"), re.IGNORECASE | re.MULTILINE)
        except OSError:
            m = None
        if m:
            info["driver_version"], info["driver_version_from"] = m.group(1), str(path)
    info["cann_version"], info["cann_version_from"] = cann_version(CANN_HOMES if cann_homes is None else cann_homes)
    return info


def parse_visible_devices(value: str) -> list[int]:
    """Physical chip ids in ``ASCEND_VISIBLE_DEVICES``: ``3``, ``0,1``, ``0-3``, ``Ascend310P-2`` or ``npu-2``."""
    ids: list[int] = []
    for item in (v.strip() for v in value.split(",")):
        if re.fullmatch(r"\d+", item):
            ids.append(int(item))
        elif m := re.fullmatch(r"(\d+)-(\d+)", item):
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise errors.BadInput(f"{VISIBLE_DEVICES_ENV}={value!r}: range {item!r} runs backwards")
            ids.extend(range(lo, hi + 1))
        elif m := re.fullmatch(r"(?:Ascend[0-9A-Za-z]*|npu)-(\d+)", item):  # (Ascend Docker Runtime's names)
            ids.append(int(m.group(1)))
        else:
            raise errors.BadInput(f"{VISIBLE_DEVICES_ENV}={value!r}: expected chip ids like 0, 0,1 or 0-3")
    return ids


def soc_version(text: str) -> str:
    """The ``soc_version`` for the chip named in ``npu-smi info`` output (e.g. ``310P3`` -> ``Ascend310P3``)."""
    for acc in devices.CATALOGUE.values():
        for chip in sorted(acc.npu_smi_names, key=len, reverse=True):
            if re.search(rf"(?<![0-9A-Za-z]){re.escape(chip)}(?![0-9A-Za-z])", text):
                return acc.soc_version or acc.name
    raise errors.BadInput("npu-smi info names no chip this version knows "
                          f"({', '.join(n for a in devices.CATALOGUE.values() for n in a.npu_smi_names)})")


def chip_ids(device: str, backend_info: Mapping[str, Any], environ: Mapping[str, str]) -> tuple[int, int | None]:
    """(ACL device id, physical chip id or None) of the chip a run on ``device`` uses: the backend's own where its
    ``describe()`` has them (``acl_device_id``, ``physical_device_id``), else the device's index and its entry in
    ``ASCEND_VISIBLE_DEVICES`` (a malformed variable: no physical id)."""
    device_id = backend_info.get("acl_device_id")
    device_id = devices.device_index(device) if device_id is None else int(device_id)
    physical = backend_info.get("physical_device_id")
    if physical is None:
        raw = environ.get(VISIBLE_DEVICES_ENV, "").strip()
        try:
            visible = parse_visible_devices(raw) if raw else []
        except errors.BadInput:
            visible = []
        physical = visible[device_id] if device_id < len(visible) else None
    return device_id, physical
