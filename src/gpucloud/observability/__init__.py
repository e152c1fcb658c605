"""Metrics, log context and live stats: what an operator watches (issue: observability)."""

from gpucloud.observability.context import bind_request, current_request_id
from gpucloud.observability.metrics import Metrics

__all__ = ["Metrics", "bind_request", "current_request_id"]
