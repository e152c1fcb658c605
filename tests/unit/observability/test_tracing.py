"""Optional tracing (observability/tracing.py): off without an endpoint; with one, spans carry the
attributes that were set and reach the collector's `/v1/traces` over OTLP/HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from gpucloud.observability.tracing import Tracer


class Collector(BaseHTTPRequestHandler):
    """A loopback OTLP/HTTP collector that keeps what it receives."""

    received: ClassVar[list[tuple[str, bytes]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    received: list[tuple[str, bytes]] = []
    handler = type("Handler", (Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", received
    finally:
        server.shutdown()
        server.server_close()


def test_without_an_endpoint_spans_are_nothing() -> None:
    tracer = Tracer(None, "gateway")
    assert not tracer.enabled
    with tracer.span("request", request_id="r") as span:
        assert span is None
    tracer.shutdown()  # harmless when off
    assert not Tracer("", "gateway").enabled


def test_spans_carry_their_set_attributes_and_reach_the_collector(
    collector: tuple[str, list[tuple[str, bytes]]],
) -> None:
    endpoint, received = collector
    tracer = Tracer(endpoint, "gateway-under-test")
    assert tracer.enabled
    with tracer.span("job-attempt", request_id="req-42", attempt=2, worker=None) as span:
        assert span.is_recording()
        assert dict(span.attributes) == {"request_id": "req-42", "attempt": 2}  # None is left out
    assert not span.is_recording()  # ended with the block
    tracer.shutdown()  # flushes the batch
    assert [path for path, _ in received] == ["/v1/traces"]  # the trailing "/" is not doubled
    body = received[0][1]
    for text in (b"job-attempt", b"req-42", b"gateway-under-test"):
        assert text in body
