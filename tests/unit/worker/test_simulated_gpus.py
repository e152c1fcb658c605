"""Simulated GPUs (`--simulate-gpus`): parsing, stable NVML-shaped UUIDs, readings that follow the
memory the replicas hold."""

from __future__ import annotations

import re

import pytest

from gpucloud.worker.inventory import (
    BYTES_PER_GB,
    GpuProbe,
)
from gpucloud.worker.simulated_gpus import SimulatedGpu, SimulatedProbe, simulated_uuid

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
