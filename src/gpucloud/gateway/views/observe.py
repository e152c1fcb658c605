"""Usage reports, live stats and health (`routes.usage`, `routes.observe`, `routes.health`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from gpucloud.gateway.views.base import View


class UsageRow(View):
    """One period of one key and model (null where `group_by` leaves that out). The period is
    repeated under the granularity's name (`day` or `hour`)."""

    period: str = Field(description="YYYY-MM-DD or YYYY-MM-DDTHH, UTC")
    key_id: str | None
    model: str | None
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float
    org_id: str | None = Field(None, description="the keys' organisation, with group_by=org")
    day: str | None = None
    hour: str | None = None


class UsageTotals(View):
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float


class UsageReport(View):
    object: Literal["list"]
    granularity: Literal["day", "hour"]
    data: list[UsageRow]
    totals: UsageTotals


class StatsMinute(View):
    minute: datetime
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    p50_latency_ms: float | None
    p95_latency_ms: float | None


class StatsCurrent(View):
    requests_per_s: float
    tokens_per_s: float
    completion_tokens_per_s: float
    error_rate: float
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    queue_depth: int
    queue_depth_by_model: dict[str, int]
    workers: int
    slots: int
    running: int


class Stats(View):
    """`/api/stats` (`observability.stats.LiveStats.snapshot`): the last minute and the last hour."""

    generated_at: datetime
    current: StatsCurrent
    series: list[StatsMinute]


class Health(View):
    status: Literal["ok"]


class Readiness(View):
    status: Literal["ok", "unavailable"]
    checks: dict[str, Literal["ok", "unavailable"]] = Field(description="database and queue")
