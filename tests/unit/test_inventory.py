"""The worker's hardware inventory: simulated GPUs, NVML (faked at the driver boundary), the host."""

from __future__ import annotations

import json
import re
import socket
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from gpucloud.scheduler import DeploymentSpec, WorkerNode, schedule
from gpucloud.worker.inventory import (
    BYTES_PER_GB,
    GpuProbe,
    GpuReading,
    HostInventory,
    InventoryError,
    NvmlProbe,
    SimulatedGpu,
    SimulatedProbe,
    parse_meminfo,
    read_host,
    simulated_uuid,
    to_scheduler_gpus,
)

GB = BYTES_PER_GB
NVML_UUID = re.compile(r"^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def names_and_sizes(probe: SimulatedProbe) -> list[tuple[str, int]]:
    return [(r.name, r.memory_total_bytes) for r in probe.read()]


# --- --simulate-gpus parsing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("H100:80", [("H100", 80 * GB)]),
        ("H100:80,A10:24", [("H100", 80 * GB), ("A10", 24 * GB)]),
        ("A10:24x2", [("A10", 24 * GB), ("A10", 24 * GB)]),
        ("H100:80,A10:24x2", [("H100", 80 * GB), ("A10", 24 * GB), ("A10", 24 * GB)]),
        ("  H100 : 80 ,\tA10: 24 X 2 ", [("H100", 80 * GB), ("A10", 24 * GB), ("A10", 24 * GB)]),
        ("L4:23.5", [("L4", 23_500_000_000)]),
        ("NVIDIA H100 80GB HBM3:80", [("NVIDIA H100 80GB HBM3", 80 * GB)]),
        ("odd:name:16", [("odd:name", 16 * GB)]),  # the last colon separates the size
        ("T4:16x1", [("T4", 16 * GB)]),
    ],
)
def test_parse_accepts(spec: str, expected: list[tuple[str, int]]) -> None:
    assert names_and_sizes(SimulatedProbe.parse(spec)) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("H100", r"entry 1 \('H100'\): expected NAME:GB"),
        (":80", "expected NAME:GB"),
        ("  :80", "expected NAME:GB"),
        ("H100:", "'' is not a number of GB"),
        ("H100:abc", "'abc' is not a number of GB"),
        ("H100:80GB", "'80gb' is not a number of GB"),
        ("H100:0", "must be a positive number of GB"),
        ("H100:-5", "must be a positive number of GB"),
        ("H100:nan", "must be a positive number of GB"),
        ("H100:inf", "must be a positive number of GB"),
        ("A10:24x0", "count after 'x' must be a whole number >= 1, got '0'"),
        ("A10:24x", "count after 'x' must be a whole number >= 1, got ''"),
        ("A10:24x1.5", "got '1.5'"),
        ("A10:24x-1", "got '-1'"),
        ("A10:24x2x2", "got '2x2'"),
        ("H100:80,", r"entry 2 \(''\)"),
        ("H100:80,,A10:24", r"entry 2 \(''\)"),
        ("H100:80,A10", r"entry 2 \('A10'\)"),
    ],
)
def test_parse_rejects_with_a_clear_message(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulatedProbe.parse(spec)


# --- simulated readings ------------------------------------------------------------------------


def test_uuids_are_nvml_shaped_stable_per_seed_and_distinct_per_index() -> None:
    first = [r.uuid for r in SimulatedProbe.parse("A10:24x4", seed="worker-1").read()]
    again = [r.uuid for r in SimulatedProbe.parse("A10:24x4", seed="worker-1").read()]
    other = [r.uuid for r in SimulatedProbe.parse("A10:24x4", seed="worker-2").read()]
    assert all(NVML_UUID.match(u) for u in first + other)
    assert first == again
    assert len(set(first)) == 4
    assert not set(first) & set(other)
    assert first == [simulated_uuid("worker-1", i) for i in range(4)]


def test_indexes_follow_the_spec_order() -> None:
    readings = SimulatedProbe.parse("H100:80,A10:24x2").read()
    assert [r.index for r in readings] == [0, 1, 2]


def test_a_fresh_probe_reports_idle_gpus() -> None:
    (reading,) = SimulatedProbe([SimulatedGpu("H100", 80 * GB)], seed="w").read()
    assert reading.memory_used_bytes == 0
    assert reading.utilization == 0.0
    assert reading.temperature_c is not None
    assert reading.power_w is not None


def test_set_used_is_reported_and_warms_the_gpu() -> None:
    probe = SimulatedProbe.parse("H100:80,A10:24", seed="w")
    idle = probe.read()
    probe.set_used(1, 12 * GB)
    busy = probe.read()
    assert [r.memory_used_bytes for r in busy] == [0, 12 * GB]
    assert busy[0] == idle[0]
    assert busy[1].utilization == pytest.approx(0.5)
    assert (busy[1].temperature_c or 0) > (idle[1].temperature_c or 0) > 0
    assert (busy[1].power_w or 0) > (idle[1].power_w or 0) > 0
    probe.set_used(1, 0)
    assert probe.read() == idle


def test_set_used_accepts_a_full_gpu() -> None:
    probe = SimulatedProbe.parse("A10:24")
    probe.set_used(0, 24 * GB)
    assert probe.read()[0].utilization == 1.0


@pytest.mark.parametrize(
    ("index", "used", "message"),
    [
        (2, 0, "no simulated GPU 2; there are 2"),
        (-1, 0, "no simulated GPU -1"),
        (0, -1, r"within 0\.\.80000000000, got -1"),
        (1, 24 * GB + 1, r"within 0\.\.24000000000"),
    ],
)
def test_set_used_rejects_what_cannot_be(index: int, used: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulatedProbe.parse("H100:80,A10:24").set_used(index, used)


def test_simulated_probe_is_a_gpu_probe() -> None:
    probe: GpuProbe = SimulatedProbe.parse("A10:24")
    probe.close()  # nothing to release, and reading afterwards still works
    assert len(probe.read()) == 1


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


# --- the host ----------------------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/meminfo")
def test_read_host_on_this_linux_machine() -> None:
    host = read_host(None)
    assert host.hostname == socket.gethostname()
    assert host.cpu_count >= 1
    assert 0 < host.memory_available_bytes <= host.memory_total_bytes
    assert host.gpus == ()


def test_read_host_takes_its_gpus_from_the_probe_and_a_given_hostname() -> None:
    probe = SimulatedProbe.parse("H100:80,A10:24", seed="w")
    host = read_host(probe, hostname="gpu-7")
    assert host.hostname == "gpu-7"
    assert host.gpus == tuple(probe.read())


def test_read_host_without_proc_meminfo_asks_sysconf(tmp_path: Path) -> None:
    host = read_host(None, meminfo=tmp_path / "absent")
    assert 0 <= host.memory_available_bytes <= host.memory_total_bytes
    if sys.platform.startswith("linux"):  # where sysconf knows SC_AVPHYS_PAGES
        assert host.memory_available_bytes > 0


def test_read_host_uses_the_given_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16384 kB\nMemFree:         1024 kB\nMemAvailable:    8192 kB\n")
    host = read_host(None, meminfo=meminfo)
    assert (host.memory_total_bytes, host.memory_available_bytes) == (16384 * 1024, 8192 * 1024)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MemTotal: 2048 kB\nMemFree: 512 kB\nMemAvailable: 1024 kB\n", (2048 * 1024, 1024 * 1024)),
        ("MemTotal: 2048 kB\nMemFree: 512 kB\nBuffers: 64 kB\n", (2048 * 1024, 512 * 1024)),  # < Linux 3.14
        ("HugePages_Total: 0\nnonsense line\n", (0, 0)),
        ("", (0, 0)),
    ],
)
def test_parse_meminfo(text: str, expected: tuple[int, int]) -> None:
    assert parse_meminfo(text) == expected


# --- the wire format ---------------------------------------------------------------------------


def an_inventory() -> HostInventory:
    probe = SimulatedProbe.parse("H100:80,A10:24", seed="w")
    probe.set_used(0, 30 * GB)
    gpus = (*probe.read(), GpuReading(2, "GPU-x", "NVIDIA T4", 16 * GB, 0, None, None, None))
    return HostInventory("gpu-7", 32, 256 * GB, 200 * GB, gpus)


def test_inventory_survives_a_json_round_trip() -> None:
    inventory = an_inventory()
    assert HostInventory.from_dict(json.loads(json.dumps(inventory.to_dict()))) == inventory


def test_gpu_reading_accepts_json_integers_for_floats() -> None:
    data = an_inventory().gpus[2].to_dict() | {"temperature_c": 45, "utilization": 1}
    reading = GpuReading.from_dict(data)
    assert (reading.temperature_c, reading.utilization) == (45.0, 1.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hostname": None}, "'hostname' must be a string"),
        ({"cpu_count": True}, "'cpu_count' must be an integer"),
        ({"cpu_count": 0}, "cpu_count must be >= 1"),
        ({"memory_total_bytes": 1.5}, "'memory_total_bytes' must be an integer"),
        ({"gpus": {}}, "'gpus' must be a list of objects"),
        ({"gpus": [1]}, "'gpus' must be a list of objects"),
        ({"gpus": [{"index": 0}]}, "'uuid' is missing"),
    ],
)
def test_host_from_dict_rejects_malformed_payloads(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HostInventory.from_dict(an_inventory().to_dict() | change)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"utilization": "high"}, "'utilization' must be a finite number or null"),
        ({"power_w": float("nan")}, "'power_w' must be a finite number or null"),
        ({"utilization": 1.5}, "utilization must be within 0..1"),
        ({"memory_used_bytes": -1}, "memory sizes must be >= 0"),
    ],
)
def test_gpu_from_dict_rejects_malformed_payloads(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GpuReading.from_dict(an_inventory().gpus[0].to_dict() | change)


def test_missing_host_field_is_named() -> None:
    data = an_inventory().to_dict()
    del data["memory_available_bytes"]
    with pytest.raises(ValueError, match="'memory_available_bytes' is missing"):
        HostInventory.from_dict(data)


# --- the scheduler's view ----------------------------------------------------------------------


def test_scheduler_gpus_are_in_decimal_gb() -> None:
    readings = SimulatedProbe.parse("H100:80,L4:23.5", seed="w").read()
    gpus = to_scheduler_gpus(readings)
    assert [(g.uuid, g.name, g.index, g.memory_total_gb) for g in gpus] == [
        (readings[0].uuid, "H100", 0, 80.0),
        (readings[1].uuid, "L4", 1, 23.5),
    ]


def test_a_simulated_h100_80_holds_exactly_an_80_gb_deployment() -> None:
    probe = SimulatedProbe.parse("H100:80", seed="w")
    worker = WorkerNode("w", "healthy", False, {}, to_scheduler_gpus(probe.read()))
    fits = schedule([worker], [DeploymentSpec("fits", 1, 80.0, gpu_type="h100")])
    too_big = schedule([worker], [DeploymentSpec("too-big", 1, 80.5)])
    assert [p.gpu_uuids for p in fits.placements] == [(probe.read()[0].uuid,)]
    assert "too-big" in too_big.unschedulable


def test_real_nvml_sizes_convert_without_rounding() -> None:
    reading = GpuReading(0, "GPU-a", "NVIDIA H100 80GB HBM3", 81_559 << 20, 0, None, None, None)
    assert to_scheduler_gpus([reading])[0].memory_total_gb == (81_559 << 20) / 1e9
