"""``summary.json``'s ``noise``: what else ran on the host and the device while a run was timed.

Read by ``jobs.devices.noise`` (``/proc``, ``/sys``, NVML, ``npu-smi``); a run is marked busy when other
processes took more than ``BUSY_SHARE`` of the machine's CPU time in its window, the hypervisor stole as
much, or the device was busy, shared or throttled. Nothing here fails a run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

BUSY_SHARE = 0.10
"""A run is marked busy when other processes (or the hypervisor's steal) took more than this share of the CPU
time its window had on the machine's CPUs."""

@dataclasses.dataclass(frozen=True)
class HostNoise:
    """The host during the timed passes."""

    seconds: float
    """The window (s)."""
    cpus: int
    other_cpu_seconds: float | None
    """CPU time of every other process (s): busy time of all CPUs minus this process's."""
    steal_seconds: float | None
    """Time the hypervisor gave this machine's CPUs to others (s)."""
    load_1m: tuple[float | None, float | None] = (None, None)
    """The 1-minute load average at the start and the end."""
    cpu_mhz: tuple[float, float] | None = None
    """Lowest and highest CPU frequency seen at start and end (MHz); None where not readable."""
    threads: int | None = None
    """This process's threads at the end (the backend's pools, the harness's helpers)."""

    @property
    def other_share(self) -> float | None:
        """Other processes' CPU time over the CPU time the window had (0.25: a quarter of the machine)."""
        if self.other_cpu_seconds is None or self.seconds <= 0:
            return None
        return max(self.other_cpu_seconds, 0.0) / (self.seconds * self.cpus)

    @property
    def steal_share(self) -> float | None:
        if self.steal_seconds is None or self.seconds <= 0:
            return None
        return max(self.steal_seconds, 0.0) / (self.seconds * self.cpus)

    def reasons(self) -> list[str]:
        out = []
        if (share := self.other_share) is not None and share > BUSY_SHARE:
            out.append(f"other processes took {share:.0%} of the host's CPU time")
        if (share := self.steal_share) is not None and share > BUSY_SHARE:
            out.append(f"the hypervisor stole {share:.0%} of the host's CPU time")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "cpus": self.cpus, "other_cpu_seconds": self.other_cpu_seconds,
                "other_share": self.other_share, "steal_seconds": self.steal_seconds,
                "steal_share": self.steal_share, "load_1m": list(self.load_1m),
                "cpu_mhz": list(self.cpu_mhz) if self.cpu_mhz else None, "threads": self.threads}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HostNoise:
        mhz = d.get("cpu_mhz")
        return cls(seconds=float(d["seconds"]), cpus=int(d["cpus"]), other_cpu_seconds=d.get("other_cpu_seconds"),
                   steal_seconds=d.get("steal_seconds"), load_1m=tuple(d.get("load_1m") or (None, None)),
                   cpu_mhz=tuple(mhz) if mhz else None, threads=d.get("threads"))


@dataclasses.dataclass(frozen=True)
class DeviceNoise:
    """The accelerator around the timed passes (``kind``: ``gpu`` or ``npu``); what could not be read is None."""

    kind: str
    source: str
    other_processes: tuple[int, ...] | None = None
    """Process ids of other processes on the device (before or after the timed passes)."""
    utilization_before: float | None = None
    """The device's utilization (%) just before the run: GPU utilization (NVML) or AI Core (npu-smi)."""
    throttle_reasons: tuple[str, ...] | None = None
    """NVML clock-event reasons seen before or after, other than idle and application clocks."""
    error: str | None = None
    """Why something could not be read."""

    def reasons(self) -> list[str]:
        out = []
        if self.other_processes:
            out.append(f"{len(self.other_processes)} other process(es) on the {self.kind.upper()} "
                       f"(pid {', '.join(map(str, self.other_processes[:5]))})")
        if self.utilization_before is not None and self.utilization_before > 100 * BUSY_SHARE:
            out.append(f"the {self.kind.upper()} was {self.utilization_before:.0f}% busy before the run")
        if self.throttle_reasons:
            out.append(f"clocks held down: {', '.join(self.throttle_reasons)}")
        return out

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("other_processes", "throttle_reasons"):
            d[k] = list(d[k]) if d[k] is not None else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeviceNoise:
        def tup(v: Sequence[Any] | None) -> tuple[Any, ...] | None:
            return tuple(v) if v is not None else None
        return cls(kind=d["kind"], source=d.get("source", ""), other_processes=tup(d.get("other_processes")),
                   utilization_before=d.get("utilization_before"), throttle_reasons=tup(d.get("throttle_reasons")),
                   error=d.get("error"))


@dataclasses.dataclass(frozen=True)
class Noise:
    """``summary.json``'s ``noise``: the host, the device where there is one, and whether the run was busy."""

    host: HostNoise | None
    device: DeviceNoise | None = None

    @property
    def reasons(self) -> list[str]:
        return (self.host.reasons() if self.host else []) + (self.device.reasons() if self.device else [])

    @property
    def busy(self) -> bool:
        return bool(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {"busy": self.busy, "reasons": self.reasons, "busy_share": BUSY_SHARE,
                "host": self.host.to_dict() if self.host else None,
                "device": self.device.to_dict() if self.device else None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Noise:
        return cls(host=HostNoise.from_dict(d["host"]) if d.get("host") else None,
                   device=DeviceNoise.from_dict(d["device"]) if d.get("device") else None)
