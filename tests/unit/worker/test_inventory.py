"""The worker's inventory: the host's reading, the wire format, the scheduler's view."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gpucloud.scheduler import DeploymentSpec, WorkerNode, schedule
from gpucloud.wire import GpuIn, RegisterIn
from gpucloud.worker.inventory import (
    BYTES_PER_GB,
    GpuReading,
    HostInventory,
    parse_meminfo,
    read_host,
    to_scheduler_gpus,
)
from gpucloud.worker.simulated_gpus import SimulatedProbe

GB = BYTES_PER_GB


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


# --- the wire format (`wire.GpuIn`, `wire.RegisterIn`) ------------------------------------------


def an_inventory() -> HostInventory:
    probe = SimulatedProbe.parse("H100:80,A10:24", seed="w")
    probe.set_used(0, 30 * GB)
    gpus = (*probe.read(), GpuReading(2, "GPU-x", "NVIDIA T4", 16 * GB, 0, None, None, None))
    return HostInventory("gpu-7", 32, 256 * GB, 200 * GB, gpus)


def a_registration(inventory: HostInventory) -> dict[str, Any]:
    """The registration body the inventory makes, as JSON would carry it."""
    body = RegisterIn(
        worker_id="w-1",
        hostname=inventory.hostname,
        cpu_count=inventory.cpu_count,
        memory_total_bytes=inventory.memory_total_bytes,
        memory_available_bytes=inventory.memory_available_bytes,
        gpus=[gpu.to_wire() for gpu in inventory.gpus],
        slots=1,
    )
    data: dict[str, Any] = json.loads(body.model_dump_json())
    return data


def test_inventory_survives_a_json_round_trip() -> None:
    inventory = an_inventory()
    body = RegisterIn.model_validate(a_registration(inventory))
    host = (body.hostname, body.cpu_count, body.memory_total_bytes, body.memory_available_bytes)
    gpus = tuple(GpuReading(**gpu.model_dump()) for gpu in body.gpus)
    assert HostInventory(*host, gpus) == inventory


def test_gpu_reading_accepts_json_integers_for_floats() -> None:
    data = an_inventory().gpus[2].to_wire().model_dump() | {"temperature_c": 45, "utilization": 1}
    reading = GpuIn.model_validate(data)
    assert (reading.temperature_c, reading.utilization) == (45.0, 1.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hostname": None}, "hostname\n  Input should be a valid string"),
        ({"cpu_count": 0}, "cpu_count\n  Input should be greater than or equal to 1"),
        ({"memory_total_bytes": 1.5}, "memory_total_bytes\n  Input should be a valid integer"),
        ({"gpus": {}}, "gpus\n  Input should be a valid list"),
        ({"gpus": [1]}, "gpus.0\n  Input should be a valid dictionary"),
        ({"gpus": [{"index": 0}]}, "gpus.0.uuid\n  Field required"),
    ],
)
def test_registration_rejects_malformed_payloads(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RegisterIn.model_validate(a_registration(an_inventory()) | change)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"utilization": "high"}, "utilization\n  Input should be a valid number"),
        ({"power_w": float("nan")}, "power_w\n  Input should be less than or equal to 100000"),
        ({"utilization": 1.5}, "utilization\n  Input should be less than or equal to 1"),
        ({"memory_used_bytes": -1}, "memory_used_bytes\n  Input should be greater than or equal to 0"),
    ],
)
def test_gpu_rejects_malformed_payloads(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        GpuIn.model_validate(an_inventory().gpus[0].to_wire().model_dump() | change)


def test_missing_host_field_is_named() -> None:
    data = a_registration(an_inventory())
    del data["memory_available_bytes"]
    with pytest.raises(ValidationError, match="memory_available_bytes\n  Field required"):
        RegisterIn.model_validate(data)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: HostInventory("h", 0, 1, 1, ()), "cpu_count must be >= 1"),
        (lambda: GpuReading(0, "GPU-a", "T4", 1, -1, None, None, None), "memory sizes must be >= 0"),
        (lambda: GpuReading(0, "GPU-a", "T4", 1, 0, 1.5, None, None), "utilization must be within 0..1"),
    ],
)
def test_readings_refuse_impossible_values(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


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
