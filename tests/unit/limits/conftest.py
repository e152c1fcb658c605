"""Fixtures of the limits' unit tests."""

from __future__ import annotations

import pytest

from tests.unit.limits.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
