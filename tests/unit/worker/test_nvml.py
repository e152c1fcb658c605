"""The NVML probe, with the driver faked at its boundary (the pynvml module's calls)."""

from __future__ import annotations

import re
import sys
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from gpucloud.worker.inventory import GpuReading, InventoryError
from gpucloud.worker.nvml import NvmlProbe

NVML_UUID = re.compile(r"^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# --- NVML, faked at the driver boundary -------------------------------------------------------


@pytest.fixture
def pynvml() -> ModuleType:
    module: ModuleType = pytest.importorskip("pynvml")  # the optional nvidia-ml-py
    return module


def test_create_without_a_driver_returns_none(pynvml: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_driver() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_DRIVER_NOT_LOADED)

    monkeypatch.setattr(pynvml, "nvmlInit", no_driver)
    assert NvmlProbe.create() is None


def test_create_on_this_machine_does_not_raise(pynvml: ModuleType) -> None:
    # No GPU driver here (nor in CI): NVML cannot load, and create says so with None. Where a
    # driver is present the probe must work instead.
    probe = NvmlProbe.create()
    if probe is None:
        return
    try:
        assert all(NVML_UUID.match(r.uuid) for r in probe.read())
    finally:
        probe.close()


def test_create_without_nvidia_ml_py_returns_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    assert NvmlProbe.create() is None


class FakeDriver:
    """Two GPUs as the NVML driver would describe them; `failing` makes calls raise NVMLError."""

    def __init__(self, pynvml: ModuleType) -> None:
        self.nvml = pynvml
        self.failing: dict[tuple[str, int], int] = {}  # (call, GPU index) -> NVML error code
        self.count_error: int | None = None
        self.shutdowns = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        calls = {
            "nvmlInit": lambda: None,
            "nvmlShutdown": self.shutdown,
            "nvmlDeviceGetCount": self.count,
            "nvmlDeviceGetHandleByIndex": lambda index: self.call("handle", index, ("handle", index)),
            "nvmlDeviceGetName": lambda h: self.call(
                "name", h[1], [b"NVIDIA H100 80GB HBM3", "NVIDIA A10"][h[1]]
            ),
            "nvmlDeviceGetUUID": lambda h: self.call(
                "uuid", h[1], f"GPU-0000000{h[1]}-0000-0000-0000-000000000000"
            ),
            "nvmlDeviceGetMemoryInfo": lambda h: self.call(
                "memory", h[1], SimpleNamespace(total=(81_559 << 20, 23_028 << 20)[h[1]], used=512 << 20)
            ),
            "nvmlDeviceGetUtilizationRates": lambda h: self.call(
                "utilization", h[1], SimpleNamespace(gpu=(37, 0)[h[1]], memory=5)
            ),
            "nvmlDeviceGetTemperature": self.temperature,
            "nvmlDeviceGetPowerUsage": lambda h: self.call("power", h[1], (312_500, 15_250)[h[1]]),
        }
        for name, call in calls.items():
            monkeypatch.setattr(self.nvml, name, call)

    def call(self, what: str, index: int, result: Any) -> Any:
        if (what, index) in self.failing:
            raise self.nvml.NVMLError(self.failing[(what, index)])
        return result

    def count(self) -> int:
        if self.count_error is not None:
            raise self.nvml.NVMLError(self.count_error)
        return 2

    def temperature(self, handle: tuple[str, int], sensor: int) -> int:
        assert sensor == self.nvml.NVML_TEMPERATURE_GPU
        return int(self.call("temperature", handle[1], (54, 31)[handle[1]]))

    def shutdown(self) -> None:
        self.shutdowns += 1


@pytest.fixture
def driver(pynvml: ModuleType, monkeypatch: pytest.MonkeyPatch) -> FakeDriver:
    fake = FakeDriver(pynvml)
    fake.install(monkeypatch)
    return fake


def nvml_probe() -> NvmlProbe:
    probe = NvmlProbe.create()
    assert probe is not None
    return probe


def test_nvml_readings_are_assembled(driver: FakeDriver) -> None:
    h100, a10 = nvml_probe().read()
    assert h100 == GpuReading(
        index=0,
        uuid="GPU-00000000-0000-0000-0000-000000000000",
        name="NVIDIA H100 80GB HBM3",  # NVML gave bytes
        memory_total_bytes=81_559 << 20,
        memory_used_bytes=512 << 20,
        utilization=0.37,  # percent / 100
        temperature_c=54.0,
        power_w=312.5,  # milliwatts / 1000
    )
    assert (a10.index, a10.name, a10.utilization, a10.temperature_c, a10.power_w) == (
        1,
        "NVIDIA A10",
        0.0,
        31.0,
        15.25,
    )


@pytest.mark.parametrize("field", ["utilization", "temperature", "power"])
def test_a_failing_sensor_reads_as_none(driver: FakeDriver, field: str) -> None:
    driver.failing[(field, 1)] = driver.nvml.NVML_ERROR_NOT_SUPPORTED
    first, second = nvml_probe().read()
    attribute = {"utilization": "utilization", "temperature": "temperature_c", "power": "power_w"}[field]
    assert getattr(second, attribute) is None
    assert getattr(first, attribute) is not None
    assert second.memory_total_bytes == 23_028 << 20  # the rest of the GPU is still reported


def test_every_sensor_failing_still_reports_the_gpu(driver: FakeDriver) -> None:
    for field in ("utilization", "temperature", "power"):
        driver.failing[(field, 0)] = driver.nvml.NVML_ERROR_UNKNOWN
    first, _ = nvml_probe().read()
    assert (first.utilization, first.temperature_c, first.power_w) == (None, None, None)


@pytest.mark.parametrize("field", ["handle", "name", "uuid", "memory"])
def test_a_gpu_that_cannot_be_identified_is_left_out(driver: FakeDriver, field: str) -> None:
    driver.failing[(field, 0)] = driver.nvml.NVML_ERROR_GPU_IS_LOST
    assert [r.index for r in nvml_probe().read()] == [1]


def test_a_driver_that_cannot_count_raises_inventory_error(driver: FakeDriver) -> None:
    driver.count_error = driver.nvml.NVML_ERROR_UNKNOWN
    with pytest.raises(InventoryError, match="could not count"):
        nvml_probe().read()


def test_close_shuts_nvml_down_once(driver: FakeDriver) -> None:
    probe = nvml_probe()
    probe.close()
    probe.close()
    assert driver.shutdowns == 1


def test_a_failing_shutdown_is_logged_not_raised(
    driver: FakeDriver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise driver.nvml.NVMLError(driver.nvml.NVML_ERROR_UNINITIALIZED)

    monkeypatch.setattr(driver.nvml, "nvmlShutdown", broken)
    nvml_probe().close()
    assert "nvmlShutdown failed" in caplog.text
