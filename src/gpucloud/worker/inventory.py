"""The worker's hardware inventory: what its GPUs and its host report.

A `GpuProbe` reads the GPUs; `read_host` adds CPU count, memory and hostname into a
`HostInventory`, what worker registration announces; `GpuReading.to_wire` and `read_gpus` give
the readings as registration and heartbeats carry them (`wire.GpuIn`). `to_scheduler_gpus` turns
readings into the scheduler's `Gpu` (decimal GB, as everywhere in the scheduler).

Two probes, each in its own module:

- `worker.nvml.NvmlProbe` talks to the NVIDIA driver through NVML (the optional `nvidia-ml-py`
  package, module `pynvml`). `NvmlProbe.create()` returns None when the package or the driver is
  missing, and the caller runs with no GPUs.
- `worker.simulated_gpus.SimulatedProbe` backs `--simulate-gpus "H100:80,A10:24x2"`. Only the
  inventory is fake: the worker registers, is scheduled, leases jobs and runs engines exactly as
  it would on that hardware, which is what lets the whole cluster be exercised on machines
  without GPUs.

Probes are synchronous: NVML calls take microseconds to a few milliseconds; an async caller that
minds even that can use `asyncio.to_thread`.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gpucloud.scheduler.spec import Gpu
from gpucloud.wire import GpuIn

log = logging.getLogger(__name__)

# The scheduler counts decimal gigabytes (scheduler/estimate.py: "10⁹ bytes", the model-card unit).
BYTES_PER_GB = 1_000_000_000
MEMINFO = Path("/proc/meminfo")


class InventoryError(RuntimeError):
    """The GPUs could not be enumerated at all (driver gone, GPU lost). Callers keep their last
    known inventory or report the worker unhealthy; they need not know about pynvml."""


# --- readings ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GpuReading:
    """One GPU at one moment. Telemetry a device does not support (or failed to give) is None."""

    index: int
    uuid: str
    name: str
    memory_total_bytes: int
    memory_used_bytes: int
    utilization: float | None  # 0..1, the share of the last sample period a kernel was running
    temperature_c: float | None
    power_w: float | None

    def __post_init__(self) -> None:
        if self.index < 0 or self.memory_total_bytes < 0 or self.memory_used_bytes < 0:
            raise ValueError(f"GPU {self.uuid}: index and memory sizes must be >= 0")
        if self.utilization is not None and not 0.0 <= self.utilization <= 1.0:
            raise ValueError(f"GPU {self.uuid}: utilization must be within 0..1, got {self.utilization}")

    def to_wire(self) -> GpuIn:
        """The reading as registration and heartbeats carry it."""
        return GpuIn(
            index=self.index,
            uuid=self.uuid,
            name=self.name,
            memory_total_bytes=self.memory_total_bytes,
            memory_used_bytes=self.memory_used_bytes,
            utilization=self.utilization,
            temperature_c=self.temperature_c,
            power_w=self.power_w,
        )


@dataclass(frozen=True, slots=True)
class HostInventory:
    """A worker machine: what registration announces and heartbeats refresh. A memory size of 0
    means the platform would not tell (neither /proc/meminfo nor sysconf)."""

    hostname: str
    cpu_count: int
    memory_total_bytes: int
    memory_available_bytes: int
    gpus: tuple[GpuReading, ...]

    def __post_init__(self) -> None:
        if self.cpu_count < 1 or self.memory_total_bytes < 0 or self.memory_available_bytes < 0:
            raise ValueError(f"host {self.hostname}: cpu_count must be >= 1 and memory sizes >= 0")


# --- the probe ---------------------------------------------------------------------------------


class GpuProbe(Protocol):
    def read(self) -> list[GpuReading]:
        """Every GPU, by index. Raises InventoryError when the GPUs cannot be enumerated."""
        ...

    def close(self) -> None: ...


# --- host --------------------------------------------------------------------------------------


def read_gpus(probe: GpuProbe | None) -> list[GpuIn]:
    """The probe's readings as heartbeats carry them; none (logged) when there is no probe or it
    fails: a beat without GPU readings is better than no beat."""
    if probe is None:
        return []
    try:
        return [gpu.to_wire() for gpu in probe.read()]
    except InventoryError as exc:
        log.warning("GPU inventory unavailable: %s", exc)
        return []


def read_host(
    probe: GpuProbe | None, hostname: str | None = None, *, meminfo: Path = MEMINFO
) -> HostInventory:
    """The host and its GPUs (none without a probe). `meminfo` is where Linux tells memory sizes;
    where it does not exist, sysconf answers instead."""
    total, available = _memory_bytes(meminfo)
    return HostInventory(
        hostname=hostname if hostname is not None else socket.gethostname(),
        cpu_count=os.cpu_count() or 1,  # None means "could not tell"; there is at least one
        memory_total_bytes=total,
        memory_available_bytes=min(available, total),
        gpus=tuple(probe.read()) if probe is not None else (),
    )


def parse_meminfo(text: str) -> tuple[int, int]:
    """(total, available) bytes from /proc/meminfo's text; (0, 0) for what it lacks."""
    kib: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdecimal():
            kib[key.strip()] = int(fields[0])
    # MemAvailable arrived in Linux 3.14; before it, free memory is the closest honest figure.
    available = kib.get("MemAvailable", kib.get("MemFree", 0))
    return kib.get("MemTotal", 0) * 1024, available * 1024


def _memory_bytes(meminfo: Path) -> tuple[int, int]:
    try:
        return parse_meminfo(meminfo.read_text())
    except OSError:
        return _sysconf_memory()


def _sysconf_memory() -> tuple[int, int]:
    page = _sysconf("SC_PAGE_SIZE")
    # SC_AVPHYS_PAGES is missing on macOS; 0 there means "unknown", like everything else here.
    return page * _sysconf("SC_PHYS_PAGES"), page * _sysconf("SC_AVPHYS_PAGES")


def _sysconf(name: str) -> int:
    if not hasattr(os, "sysconf"):  # Windows
        return 0
    try:
        return max(0, os.sysconf(name))
    except (ValueError, OSError):  # a name this platform does not know
        return 0


# --- scheduler ---------------------------------------------------------------------------------


def to_scheduler_gpus(readings: Iterable[GpuReading]) -> tuple[Gpu, ...]:
    """The scheduler's view: identity and total memory in decimal GB; used memory is its own
    business (it accounts replicas), telemetry is not its business at all."""
    return tuple(
        Gpu(uuid=r.uuid, name=r.name, index=r.index, memory_total_gb=r.memory_total_bytes / BYTES_PER_GB)
        for r in readings
    )


__all__ = [
    "BYTES_PER_GB",
    "GpuProbe",
    "GpuReading",
    "HostInventory",
    "InventoryError",
    "parse_meminfo",
    "read_gpus",
    "read_host",
    "to_scheduler_gpus",
]
