"""Finding 2 of the security review: one worker, one credential.

Against an embedded `gpucloud serve` (its own worker `local-<host>` is in the fleet): a worker id
is bound to the token that registered it, every heartbeat must present the session secret the
registration returned, another token can neither beat as the worker, re-register its id nor
read its assignments, and revoking the token ends its workers' sessions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import SECRETS, Server, make_server

HEADER = "x-gpucloud-worker-session"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("sessions"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def new_token(server: Server, name: str) -> dict[str, Any]:
    admin = {"Authorization": f"Bearer {server.admin_key}"}
    r = httpx.post(f"{server.base_url}/api/workers/tokens", json={"name": name}, headers=admin)
    assert r.status_code == 201, r.text
    SECRETS.add(r.json()["token"])
    return dict(r.json())


def register(server: Server, token: str, worker_id: str) -> httpx.Response:
    body = {"worker_id": worker_id, "hostname": "h", "cpu_count": 1, "memory_total_bytes": 0,
            "memory_available_bytes": 0, "slots": 1}  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.post(f"{server.base_url}/api/workers/register", json=body, headers=headers)


def beat(server: Server, token: str, worker_id: str, session: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", **({HEADER: session} if session else {})}
    body = {"running": 0, "tokens_per_s": 123.0}
    return httpx.post(f"{server.base_url}/api/workers/{worker_id}/heartbeat", json=body, headers=headers)


def error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return err


def test_a_worker_id_belongs_to_the_token_that_registered_it(server: Server) -> None:
    w1, w2 = new_token(server, "w1")["token"], new_token(server, "w2")["token"]
    r = register(server, w1, "bound-1")
    assert r.status_code == 200, r.text
    session = r.json()["session"]
    assert session.startswith("gcs_")
    SECRETS.add(session)
    assert beat(server, w1, "bound-1", session).status_code == 200
    # Another token: no beats (even with the stolen session), no re-registration.
    assert error(beat(server, w2, "bound-1", session), 403)["code"] == "worker_not_owned"
    assert error(beat(server, w2, "bound-1", None), 403)["code"] == "worker_not_owned"
    err = error(register(server, w2, "bound-1"), 409)
    assert (err["code"], err["param"]) == ("worker_id_taken", "worker_id")
    # The owning token without its session, or with a made-up one, cannot beat either.
    assert error(beat(server, w1, "bound-1", None), 409)["code"] == "worker_session_ended"
    assert error(beat(server, w1, "bound-1", "gcs_" + "A" * 49), 409)["code"] == "worker_session_ended"


def test_registering_again_ends_the_previous_session(server: Server) -> None:
    w1 = new_token(server, "restart")["token"]
    first = register(server, w1, "bound-2").json()["session"]
    second = register(server, w1, "bound-2").json()["session"]
    SECRETS.update({first, second})
    assert first != second
    assert error(beat(server, w1, "bound-2", first), 409)["code"] == "worker_session_ended"
    assert beat(server, w1, "bound-2", second).status_code == 200


def test_the_embedded_worker_cannot_be_taken_over(server: Server) -> None:
    admin = {"Authorization": f"Bearer {server.admin_key}"}
    fleet = httpx.get(f"{server.base_url}/api/workers", headers=admin).json()["data"]
    local = next(w["id"] for w in fleet if w["id"].startswith("local-"))
    w2 = new_token(server, "intruder")["token"]
    assert error(register(server, w2, local), 409)["code"] == "worker_id_taken"
    assert error(beat(server, w2, local, None), 403)["code"] == "worker_not_owned"
    after = httpx.get(f"{server.base_url}/api/workers/{local}", headers=admin).json()
    assert after["tokens_per_s"] != 123.0  # the fake load never landed


def test_revoking_a_token_ends_its_workers_sessions_and_frees_their_ids(server: Server) -> None:
    admin = {"Authorization": f"Bearer {server.admin_key}"}
    old = new_token(server, "old")
    session = register(server, old["token"], "bound-3").json()["session"]
    SECRETS.add(session)
    r = httpx.delete(f"{server.base_url}/api/workers/tokens/{old['id']}", headers=admin)
    assert r.status_code == 200
    assert error(beat(server, old["token"], "bound-3", session), 401)["code"] == "invalid_worker_token"
    new = new_token(server, "new")["token"]
    r = register(server, new, "bound-3")  # the owner moved the machine to a fresh token
    assert r.status_code == 200, r.text
    SECRETS.add(r.json()["session"])
    assert beat(server, new, "bound-3", r.json()["session"]).status_code == 200
