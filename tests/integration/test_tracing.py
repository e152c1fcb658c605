"""With GPUCLOUD_OTLP_ENDPOINT set, the gateway exports a span per request and the worker a span per
job attempt, both carrying the request id of the response, to a real OTLP/HTTP receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import MODEL
from tests.support import free_port, make_server

Span = tuple[str, str, dict[str, str]]  # service, span name, string attributes


class _Collector(BaseHTTPRequestHandler):
    spans: list[Span]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            service = next(
                a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"
            )
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    attrs = {a.key: a.value.string_value or str(a.value.int_value) for a in span.attributes}
                    self.spans.append((service, span.name, attrs))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        return


@pytest.fixture
def collector() -> Iterator[tuple[str, list[Span]]]:
    spans: list[Span] = []
    handler = type("Collector", (_Collector,), {"spans": spans})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", spans
    server.shutdown()


def test_request_and_job_spans_share_the_request_id(
    tmp_path: Path, collector: tuple[str, list[Span]]
) -> None:
    endpoint, spans = collector
    # Spans go out in batches every 200 ms (the SDK's own setting), so the test waits for them
    # instead of racing the exporter's flush against the process's shutdown on a loaded machine.
    env = {"GPUCLOUD_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    srv = make_server(tmp_path, env=env)
    srv.start()
    try:
        r = httpx.post(
            f"{srv.v1}/chat/completions",
            headers={"Authorization": f"Bearer {srv.admin_key}"},
            json={"model": MODEL, "messages": [{"role": "user", "content": "trace me"}], "max_tokens": 3},
        )
        assert r.status_code == 200
        request_id = r.headers["x-request-id"]
        _wait_for(spans, {"POST /v1/chat/completions", "job attempt"})
    finally:
        srv.stop()
    request_spans = [s for s in spans if s[1] == "POST /v1/chat/completions"]
    job_spans = [s for s in spans if s[1] == "job attempt"]
    assert [s[2]["request_id"] for s in request_spans] == [request_id]
    assert [s[2]["request_id"] for s in job_spans] == [request_id]
    assert request_spans[0][0] == "gpucloud-gateway"
    assert request_spans[0][2]["gpucloud.model"] == MODEL
    assert job_spans[0][2]["gpucloud.status"] == "completed"


def _wait_for(spans: list[Span], names: set[str], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not names <= {s[1] for s in spans} and time.monotonic() < deadline:
        time.sleep(0.05)


def test_no_endpoint_no_spans(tmp_path: Path, collector: tuple[str, list[Span]]) -> None:
    _, spans = collector
    srv = make_server(tmp_path)
    srv.start()
    httpx.get(f"{srv.v1}/models", headers={"Authorization": f"Bearer {srv.admin_key}"})
    srv.stop()
    assert spans == []
