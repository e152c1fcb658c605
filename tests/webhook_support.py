"""A webhook receiver for the tests: a real HTTP server on a loopback address that records every
request and answers from a per-path plan (fail n times, redirect somewhere); and registering an
endpoint on a live server, and checking a delivery's signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from tests.support import SECRETS, Server, free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    host: str
    port: int
    received: list[Received] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)  # path → answers of 503 before a 200
    redirects: dict[str, str] = field(default_factory=dict)  # path → Location of a 307

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def wait(self, path: str, count: int, timeout_s: float = 20) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.at(path)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: {len(self.at(path))} of {count} requests arrived")
            time.sleep(0.05)
        return self.at(path)


@contextmanager
def receiver(host: str = "127.0.0.1") -> Iterator[Receiver]:
    state = Receiver(host, free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.received.append(Received(self.path, headers, body))
            if self.path in state.redirects:
                self.send_response(307)
                self.send_header("location", state.redirects[self.path])
            elif state.failures.get(self.path, 0) > 0:
                state.failures[self.path] -= 1
                self.send_response(503)
            else:
                self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer((host, state.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def register(server: Server, key: str, url: str, events: list[str]) -> dict[str, Any]:
    """A new endpoint of the key (or of its organisation) with its secret, shown this once."""
    r = httpx.post(
        f"{server.base_url}/api/webhooks",
        headers={"Authorization": f"Bearer {key}"},
        json={"url": url, "events": events},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    SECRETS.add(body["secret"])  # the session's log scan checks no server log holds it
    return body


def verify(secret: str, request: Received) -> dict[str, Any]:
    """Check the signature twice: with the reference library and by the specification's recipe."""
    payload: dict[str, Any] = Webhook(secret).verify(
        request.body, request.headers
    )  # also checks the timestamp
    msg_id, stamp = request.headers["webhook-id"], request.headers["webhook-timestamp"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = hmac.new(key, f"{msg_id}.{stamp}.".encode() + request.body, hashlib.sha256).digest()
    assert request.headers["webhook-signature"] == "v1," + base64.b64encode(expected).decode()
    assert abs(int(stamp) - time.time()) < 60
    return payload
