"""`SimulatedProbe`: GPUs that exist only in the inventory, for `--simulate-gpus "H100:80,A10:24x2"`.

Only the inventory is fake: the worker registers, is scheduled, leases jobs and runs engines
exactly as it would on that hardware, which is what lets the whole cluster be exercised on
machines without GPUs.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from gpucloud.worker.inventory import BYTES_PER_GB, GpuReading


@dataclass(frozen=True, slots=True)
class SimulatedGpu:
    name: str
    memory_total_bytes: int


class SimulatedProbe:
    """GPUs that exist only in the inventory (see the module docstring).

    UUIDs are derived from `seed` and the index, so a worker that restarts with the same id and
    spec reports the same GPUs; pass the worker id so two simulated workers never share one.
    Utilization, temperature and power follow the used memory: cosmetic, for dashboards only.
    """

    def __init__(self, gpus: Sequence[SimulatedGpu], *, seed: str = "simulated") -> None:
        self._gpus = tuple(gpus)
        self._uuids = tuple(simulated_uuid(seed, index) for index in range(len(self._gpus)))
        self._used = [0] * len(self._gpus)

    @classmethod
    def parse(cls, spec: str, *, seed: str = "simulated") -> SimulatedProbe:
        """`NAME:GB[xCOUNT]`, comma-separated: "H100:80,A10:24x2" is one H100 and two A10s.
        GB are decimal (10⁹ bytes) like the scheduler's, and may be fractional."""
        if not spec.strip():
            raise ValueError("--simulate-gpus is empty; give NAME:GB entries such as 'H100:80,A10:24x2'")
        gpus: list[SimulatedGpu] = []
        for position, entry in enumerate(spec.split(","), start=1):
            gpus.extend(_parse_entry(entry, position))
        return cls(gpus, seed=seed)

    def set_used(self, index: int, used_bytes: int) -> None:
        """Memory the worker's loaded replicas hold on GPU `index`, reported by later reads."""
        if not 0 <= index < len(self._gpus):
            raise ValueError(f"no simulated GPU {index}; there are {len(self._gpus)}")
        total = self._gpus[index].memory_total_bytes
        if not 0 <= used_bytes <= total:
            raise ValueError(
                f"used memory on simulated GPU {index} must be within 0..{total}, got {used_bytes}"
            )
        self._used[index] = used_bytes

    def read(self) -> list[GpuReading]:
        return [self._reading(index) for index in range(len(self._gpus))]

    def close(self) -> None:
        """Nothing to release; here so SimulatedProbe is a GpuProbe."""

    def _reading(self, index: int) -> GpuReading:
        gpu, used = self._gpus[index], self._used[index]
        load = used / gpu.memory_total_bytes
        return GpuReading(
            index=index,
            uuid=self._uuids[index],
            name=gpu.name,
            memory_total_bytes=gpu.memory_total_bytes,
            memory_used_bytes=used,
            utilization=load,
            temperature_c=round(35.0 + 30.0 * load, 1),
            power_w=round(60.0 + 240.0 * load, 1),
        )


# A fixed namespace keeps simulated UUIDs stable across releases and hosts.
_SIMULATED_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://gpucloud.invalid/simulated-gpu")


def simulated_uuid(seed: str, index: int) -> str:
    """An NVML-shaped UUID ("GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx") for GPU `index` of `seed`."""
    return f"GPU-{uuid.uuid5(_SIMULATED_NAMESPACE, f'{seed}/{index}')}"


def _parse_entry(entry: str, position: int) -> list[SimulatedGpu]:
    where = f"--simulate-gpus entry {position} ({entry.strip()!r})"
    name, colon, size = entry.rpartition(":")  # the last colon, so a name may contain one
    name = name.strip()
    if not colon or not name:
        raise ValueError(f"{where}: expected NAME:GB[xCOUNT], e.g. 'A10:24x2'")
    gb_text, x, count_text = size.strip().lower().partition("x")
    memory_total_bytes = round(_parse_gb(gb_text.strip(), where) * BYTES_PER_GB)
    count = _parse_count(count_text.strip(), where) if x else 1
    return [SimulatedGpu(name, memory_total_bytes)] * count


def _parse_gb(text: str, where: str) -> float:
    try:
        gb = float(text)
    except ValueError:
        raise ValueError(f"{where}: memory {text!r} is not a number of GB") from None
    if not math.isfinite(gb) or gb <= 0:
        raise ValueError(f"{where}: memory must be a positive number of GB, got {text!r}")
    return gb


def _parse_count(text: str, where: str) -> int:
    if not text.isdecimal() or int(text) < 1:
        raise ValueError(f"{where}: count after 'x' must be a whole number >= 1, got {text!r}")
    return int(text)
