"""Usage reports, live stats and health (`routes.usage`, `routes.observe`, `routes.health`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import Field

from gpucloud.gateway.views.base import View
from gpucloud.usage import UsageTotal

Granularity = Literal["day", "hour"]


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
    granularity: Granularity
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


def usage_report(rows: Sequence[UsageTotal], granularity: Granularity) -> UsageReport:
    """The ledger's totals by period (repeated under the granularity's name), and their sum."""
    data = [_usage_row(r, granularity) for r in rows]
    return UsageReport(object="list", granularity=granularity, data=data, totals=_usage_sum(rows))


def _usage_row(row: UsageTotal, granularity: Granularity) -> UsageRow:
    view = UsageRow(
        period=row.period,
        key_id=row.key_id,
        model=row.model,
        requests=row.requests,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        total_tokens=row.total_tokens,
        cost_usd=row.cost_usd,
        org_id=row.org_id,
    )
    setattr(view, granularity, row.period)
    return view


def _usage_sum(rows: Sequence[UsageTotal]) -> UsageTotals:
    return UsageTotals(
        requests=sum(r.requests for r in rows),
        prompt_tokens=sum(r.prompt_tokens for r in rows),
        completion_tokens=sum(r.completion_tokens for r in rows),
        total_tokens=sum(r.total_tokens for r in rows),
        cost_usd=round(sum(r.cost_usd for r in rows), 6),
    )
