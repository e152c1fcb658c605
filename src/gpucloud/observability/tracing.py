"""Optional OpenTelemetry tracing: a span per HTTP request (gateway) and per job attempt (worker).

Off unless `GPUCLOUD_OTLP_ENDPOINT` is set; then spans are exported over OTLP/HTTP to
`{endpoint}/v1/traces`. OpenTelemetry is an optional dependency (`pip install 'gpucloud[otel]'`):
nothing imports it while tracing is off, and setting the endpoint without it installed stops the
process at start with a message saying what to install. Request and job spans carry the request
id, so a trace backend joins the gateway's and the worker's halves of one request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Tracer:
    def __init__(self, endpoint: str | None, service: str) -> None:
        self._tracer: Any = None
        self._provider: Any = None
        if endpoint:
            self._setup(endpoint.rstrip("/"), service)

    def _setup(self, endpoint: str, service: str) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError as exc:
            message = "GPUCLOUD_OTLP_ENDPOINT is set but OpenTelemetry is not installed"
            raise RuntimeError(f"{message}: pip install 'gpucloud[otel]'") from exc
        # A private provider, not the process-global one: two apps in one process stay apart.
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
        self._provider = provider
        self._tracer = provider.get_tracer("gpucloud")

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    @contextmanager
    def span(self, name: str, **attributes: str | int | float | bool | None) -> Iterator[Any]:
        """A span around the block (nothing when tracing is off); yields it for more attributes."""
        if self._tracer is None:
            yield None
            return
        clean = {k: v for k, v in attributes.items() if v is not None}
        with self._tracer.start_as_current_span(name, attributes=clean) as span:
            yield span

    def shutdown(self) -> None:
        """Export what is buffered, then stop."""
        if self._provider is not None:
            self._provider.shutdown()
