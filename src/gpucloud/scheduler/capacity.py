"""The scratch ledger of one `schedule()` call: memory used on every GPU and replicas per worker.

It is created from the inputs, written only by the call that owns it and dropped when the call
returns, which is what keeps `schedule()` pure while letting it place replicas one at a time.
GPUs are keyed by (worker id, uuid) so two simulated workers that report the same uuid do not
share memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gpucloud.scheduler.spec import DeploymentSpec, Gpu, WorkerNode

# Sizes arrive as decimal floats (e.g. 0.1 GB × 3); without a tolerance, eight 10 GB replicas
# could fail to fill an 80 GB GPU because of rounding in the sum.
EPSILON_GB = 1e-6
# Free memory is rounded before it is compared, so two GPUs that are equal on paper tie and the
# tie is broken by worker id and GPU index instead of by float noise.
_COMPARE_DIGITS = 6


@dataclass(slots=True)
class GpuSlot:
    """One GPU's running total: its reserved memory plus the replicas placed on it so far."""

    worker_id: str
    gpu: Gpu
    used_gb: float

    @property
    def free_gb(self) -> float:
        return self.gpu.memory_total_gb - self.used_gb

    @property
    def free_key(self) -> float:
        return round(self.free_gb, _COMPARE_DIGITS)

    def fits(self, need_gb: float) -> bool:
        return need_gb <= self.free_gb + EPSILON_GB


def gpu_type_matches(gpu_type: str | None, gpu: Gpu) -> bool:
    """`gpu_type` is a case-insensitive substring of the name: "h100" matches "NVIDIA H100 80GB HBM3"."""
    return gpu_type is None or gpu_type.casefold() in gpu.name.casefold()


def labels_match(wanted: Mapping[str, str], offered: Mapping[str, str]) -> bool:
    return all(key in offered and offered[key] == value for key, value in wanted.items())


class Ledger:
    def __init__(self, workers: Iterable[WorkerNode]) -> None:
        self._slots: dict[str, list[GpuSlot]] = {}
        self._by_uuid: dict[tuple[str, str], GpuSlot] = {}
        self._replicas: Counter[tuple[str, str]] = Counter()
        self._worker_load: Counter[str] = Counter()
        for worker in workers:
            slots = [
                GpuSlot(worker.id, gpu, worker.memory_reserved_gb.get(gpu.uuid, 0.0))
                for gpu in sorted(worker.gpus, key=lambda g: (g.index, g.uuid))
            ]
            self._slots[worker.id] = slots
            self._by_uuid.update({(worker.id, slot.gpu.uuid): slot for slot in slots})

    def slots(self, worker_id: str, gpu_type: str | None = None) -> list[GpuSlot]:
        """The worker's GPUs of the given type, in index order."""
        return [s for s in self._slots.get(worker_id, []) if gpu_type_matches(gpu_type, s.gpu)]

    def slot(self, worker_id: str, uuid: str) -> GpuSlot | None:
        return self._by_uuid.get((worker_id, uuid))

    def replicas_of(self, deployment: str, worker_id: str) -> int:
        return self._replicas[(deployment, worker_id)]

    def load(self, worker_id: str) -> int:
        """Replicas of every deployment on the worker."""
        return self._worker_load[worker_id]

    def commit(self, spec: DeploymentSpec, worker_id: str, uuids: Sequence[str]) -> None:
        for uuid in uuids:
            self._by_uuid[(worker_id, uuid)].used_gb += spec.gpu_memory_gb
        self._replicas[(spec.name, worker_id)] += 1
        self._worker_load[worker_id] += 1
