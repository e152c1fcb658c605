"""`NvmlProbe`: the worker's real GPUs, read through NVML (the optional `nvidia-ml-py` package,
module `pynvml`). `NvmlProbe.create()` returns None when the package or the driver is missing, and
the caller runs with no GPUs; telemetry a GPU does not support reads as None."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from gpucloud.worker.inventory import GpuReading, InventoryError

log = logging.getLogger(__name__)


class NvmlProbe:
    """Real GPUs through NVML. Build it with `create()`; close it to release the library."""

    def __init__(self, nvml: Any) -> None:
        # `nvml` is the initialised pynvml module. pynvml ships no type information, so it stays
        # Any here and every value it returns is converted to a plain type before it leaves.
        self._nvml = nvml
        self._closed = False

    @classmethod
    def create(cls) -> NvmlProbe | None:
        """A probe, or None when nvidia-ml-py is not installed or NVML cannot start (no driver)."""
        try:
            # Imported here, not at module top: nvidia-ml-py is an optional dependency.
            nvml = importlib.import_module("pynvml")
        except ImportError:
            log.info("nvidia-ml-py is not installed; reporting no GPUs")
            return None
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            log.info("NVML unavailable (%s); reporting no GPUs", exc)
            return None
        return cls(nvml)

    def read(self) -> list[GpuReading]:
        try:
            count = int(self._nvml.nvmlDeviceGetCount())
        except self._nvml.NVMLError as exc:
            raise InventoryError(f"NVML could not count the GPUs: {exc}") from exc
        readings = (self._read_device(index) for index in range(count))
        return [reading for reading in readings if reading is not None]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError as exc:
            # Shutting down is the last thing the worker does; a failure here changes nothing.
            log.warning("nvmlShutdown failed: %s", exc)

    def _read_device(self, index: int) -> GpuReading | None:
        nvml = self._nvml
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            name = _text(nvml.nvmlDeviceGetName(handle))
            gpu_uuid = _text(nvml.nvmlDeviceGetUUID(handle))
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        except nvml.NVMLError as exc:
            # Without its identity and size a GPU cannot be scheduled; leaving it out is honest,
            # reporting it with made-up values would not be.
            log.warning("GPU %d skipped: NVML could not identify it (%s)", index, exc)
            return None
        return GpuReading(
            index=index,
            uuid=gpu_uuid,
            name=name,
            memory_total_bytes=int(memory.total),
            memory_used_bytes=int(memory.used),
            # Clamped: a driver glitch above 100 % must not fail GpuReading's check and the whole read.
            utilization=self._optional(
                lambda: min(nvml.nvmlDeviceGetUtilizationRates(handle).gpu, 100) / 100
            ),
            temperature_c=self._optional(
                lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
            ),
            power_w=self._optional(lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000),  # mW
        )

    def _optional(self, read: Callable[[], Any]) -> float | None:
        # Telemetry is best effort: many GPUs do not support every sensor (NVMLError_NotSupported),
        # and a missing temperature must not hide the GPU from the scheduler.
        try:
            return float(read())
        except self._nvml.NVMLError:
            return None


def _text(value: str | bytes) -> str:
    # pynvml returned bytes before 11.x and str since; both are seen in the field.
    return value.decode() if isinstance(value, bytes) else value
