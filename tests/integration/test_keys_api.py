"""API key management over HTTP and the CLI (docs/architecture.md §6): the secret is shown once, only admins
manage keys, revocation and expiry, allowed models, usage isolation between keys, and keys made by
`gpucloud keys` working against a server on the same data directory."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MODEL, create_key
from tests.integration.test_openai_api import assert_envelope
from tests.support import Server, make_server

_BASE62 = re.compile(r"^[0-9A-Za-z]+$")


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _admin(server: Server) -> dict[str, str]:
    return _auth(server.admin_key)


def _assert_no_secret(payload: Any, secret: str) -> None:
    """Neither the secret, nor its random part, nor its digest anywhere in `payload`."""
    text = httpx.Response(200, json=payload).text
    for needle in (secret, secret[11:], secret[3:-6], hashlib.sha256(secret.encode()).hexdigest()):
        assert needle not in text
    items = payload["data"] if isinstance(payload, dict) and "data" in payload else [payload]
    for item in items:
        assert "digest" not in item
        assert "key" not in item
        assert "secret" not in item


# creation and the secret ----------------------------------------------------------------------


def test_create_shows_the_secret_once(server: Server) -> None:
    r = httpx.post(
        f"{server.base_url}/api/keys",
        json={"name": "shown once", "allowed_models": [MODEL]},
        headers=_admin(server),
    )
    assert r.status_code == 201, r.text
    assert r.headers.get("x-request-id")
    created = r.json()
    secret, key_id = created["key"], created["id"]
    assert secret.startswith("gc_")
    assert len(secret) == 52
    assert _BASE62.match(secret[3:])
    assert created["prefix"] == secret[:11]
    assert key_id.startswith("key_")
    assert created["name"] == "shown once"
    assert created["role"] == "user"
    assert created["allowed_models"] == [MODEL]
    assert created["default_priority"] == "normal"
    assert created["max_priority"] == "normal"
    assert created["revoked_at"] is None
    assert created["expires_at"] is None
    assert "digest" not in created

    listed = httpx.get(f"{server.base_url}/api/keys", headers=_admin(server))
    assert listed.status_code == 200
    _assert_no_secret(listed.json(), secret)
    mine = [k for k in listed.json()["data"] if k["id"] == key_id]
    assert len(mine) == 1
    assert mine[0]["prefix"] == secret[:11]
    assert {k: v for k, v in created.items() if k != "key"} == mine[0]

    one = httpx.get(f"{server.base_url}/api/keys/{key_id}", headers=_admin(server))
    assert one.status_code == 200
    _assert_no_secret(one.json(), secret)
    detail = one.json()
    assert set(detail.pop("status")) >= {"window", "token_quota_remaining", "budget_usd_remaining", "period"}
    assert detail == mine[0]

    me = httpx.get(f"{server.base_url}/api/me", headers=_auth(secret))
    assert me.status_code == 200
    _assert_no_secret(me.json(), secret)


def test_keys_are_distinct_and_well_formed(server: Server) -> None:
    secrets = [str(create_key(server, name=f"format {i}")["key"]) for i in range(5)]
    assert len(set(secrets)) == 5
    assert len({s[:11] for s in secrets}) == 5
    for secret in secrets:
        assert secret.startswith("gc_")
        assert len(secret) == 52
        assert _BASE62.match(secret[3:])


def test_admin_key_with_options(server: Server) -> None:
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    created = create_key(
        server,
        name="ops",
        role="admin",
        expires_at=expires.isoformat(),
        default_priority="low",
        max_priority="high",
    )
    assert created["role"] == "admin"
    assert created["default_priority"] == "low"
    assert created["max_priority"] == "high"
    assert datetime.fromisoformat(str(created["expires_at"])) == expires
    # an admin key made through the API can manage keys itself
    r = httpx.get(f"{server.base_url}/api/keys", headers=_auth(str(created["key"])))
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "name"),
        ({"role": "user"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x", "role": "root"}, "role"),
        ({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "x", "expires_at": "2099-01-01T00:00:00"}, "expires_at"),  # no time zone
        ({"name": "x", "expires_at": "soon"}, "expires_at"),
        ({"name": "x", "default_priority": "urgent"}, "default_priority"),
        ({"name": "x", "default_priority": "high", "max_priority": "low"}, "default_priority"),
        ({"name": "x", "allowed_models": "gpucloud-sim-1"}, "allowed_models"),
        ({"name": "x", "bogus": True}, "bogus"),
    ],
)
def test_create_validation(server: Server, body: dict[str, Any], param: str) -> None:
    r = httpx.post(f"{server.base_url}/api/keys", json=body, headers=_admin(server))
    assert_envelope(r, 400, param=param)


def test_expires_at_just_past_is_refused(server: Server) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    r = httpx.post(
        f"{server.base_url}/api/keys",
        json={"name": "x", "expires_at": past.isoformat()},
        headers=_admin(server),
    )
    assert_envelope(r, 400, param="expires_at")


# who may manage keys --------------------------------------------------------------------------


def test_a_user_key_cannot_manage_keys(server: Server, user_key: str) -> None:
    victim = create_key(server, name="victim")
    base = server.base_url
    # A user key lists itself only (as GET /api/me), never the others.
    listed = httpx.get(f"{base}/api/keys", headers=_auth(user_key))
    assert listed.status_code == 200
    assert [k["prefix"] for k in listed.json()["data"]] == [
        user_key[: len(listed.json()["data"][0]["prefix"])]
    ]
    attempts = [
        httpx.post(f"{base}/api/keys", json={"name": "sneaky", "role": "admin"}, headers=_auth(user_key)),
    ]
    for r in attempts:
        assert_envelope(r, 403, code="admin_required")
    # Another key is not shown to it, nor revoked by it: as if there were none.
    assert_envelope(httpx.get(f"{base}/api/keys/{victim['id']}", headers=_auth(user_key)), 404)
    assert_envelope(httpx.delete(f"{base}/api/keys/{victim['id']}", headers=_auth(user_key)), 404)
    still = httpx.get(f"{base}/api/keys/{victim['id']}", headers=_admin(server)).json()
    assert still["revoked_at"] is None
    names = [k["name"] for k in httpx.get(f"{base}/api/keys", headers=_admin(server)).json()["data"]]
    assert "sneaky" not in names
    assert httpx.get(f"{base}/api/me", headers=_auth(str(victim["key"]))).status_code == 200


def test_me_shows_the_callers_own_key(server: Server) -> None:
    user = create_key(server, name="me user")
    r = httpx.get(f"{server.base_url}/api/me", headers=_auth(str(user["key"])))
    assert r.status_code == 200
    assert r.json()["id"] == user["id"]
    assert r.json()["role"] == "user"
    assert r.json()["name"] == "me user"
    admin = httpx.get(f"{server.base_url}/api/me", headers=_admin(server))
    assert admin.status_code == 200
    assert admin.json()["role"] == "admin"
    assert admin.json()["id"] != user["id"]
    assert server.admin_key not in admin.text


# revocation -----------------------------------------------------------------------------------


def test_revoke_then_401(server: Server) -> None:
    created = create_key(server, name="revoke me")
    secret, key_id = str(created["key"]), str(created["id"])
    assert httpx.get(f"{server.v1}/models", headers=_auth(secret)).status_code == 200
    r = httpx.delete(f"{server.base_url}/api/keys/{key_id}", headers=_admin(server))
    assert r.status_code == 200, r.text
    revoked_at = r.json()["revoked_at"]
    assert revoked_at is not None
    _assert_no_secret(r.json(), secret)
    for path in ("/api/me", "/v1/models"):
        assert_envelope(
            httpx.get(f"{server.base_url}{path}", headers=_auth(secret)), 401, code="invalid_api_key"
        )
    # revoking again changes nothing; the key stays listed as revoked
    again = httpx.delete(f"{server.base_url}/api/keys/{key_id}", headers=_admin(server))
    assert again.status_code == 200
    assert again.json()["revoked_at"] == revoked_at
    listed = httpx.get(f"{server.base_url}/api/keys", headers=_admin(server)).json()["data"]
    assert [k["revoked_at"] for k in listed if k["id"] == key_id] == [revoked_at]


def test_unknown_key_id(server: Server) -> None:
    for method in ("GET", "DELETE"):
        r = httpx.request(method, f"{server.base_url}/api/keys/key_doesnotexist", headers=_admin(server))
        assert_envelope(r, 404, code="not_found")


# allowed models -------------------------------------------------------------------------------


def test_allowed_models_shape_the_model_list(server: Server) -> None:
    everything = create_key(server, name="all models")
    only = create_key(server, name="one model", allowed_models=[MODEL])
    none = create_key(server, name="no served model", allowed_models=["no-such-model"])

    def ids(key: object) -> list[str]:
        r = httpx.get(f"{server.v1}/models", headers=_auth(str(key)))
        assert r.status_code == 200, r.text
        return [m["id"] for m in r.json()["data"]]

    assert MODEL in ids(everything["key"])
    assert ids(only["key"]) == [MODEL]
    assert ids(none["key"]) == []

    allowed = openai.OpenAI(base_url=server.v1, api_key=str(only["key"]), max_retries=0)
    answer = allowed.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )
    assert answer.choices
    refused = openai.OpenAI(base_url=server.v1, api_key=str(none["key"]), max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        refused.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "model_not_allowed"


# usage isolation ------------------------------------------------------------------------------


def test_a_key_sees_only_its_own_usage(server: Server) -> None:
    a, b = create_key(server, name="usage A"), create_key(server, name="usage B")
    for key, tokens in ((a["key"], 3), (b["key"], 4), (b["key"], 4)):
        client = openai.OpenAI(base_url=server.v1, api_key=str(key), max_retries=0)
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "count me"}], max_tokens=tokens
        )
    usage = f"{server.base_url}/api/usage"

    r = httpx.get(usage, params={"key_id": str(b["id"])}, headers=_auth(str(a["key"])))
    assert_envelope(r, 403, param="key_id")

    own = httpx.get(usage, headers=_auth(str(a["key"])))
    assert own.status_code == 200
    assert own.json()["data"]
    assert {row["key_id"] for row in own.json()["data"]} == {a["id"]}
    assert own.json()["totals"]["requests"] == 1
    assert own.json()["totals"]["completion_tokens"] == 3
    assert str(b["id"]) not in own.text

    explicit = httpx.get(usage, params={"key_id": str(a["id"])}, headers=_auth(str(a["key"])))
    assert explicit.status_code == 200
    assert explicit.json()["totals"] == own.json()["totals"]

    theirs = httpx.get(usage, headers=_auth(str(b["key"])))
    assert {row["key_id"] for row in theirs.json()["data"]} == {b["id"]}
    assert theirs.json()["totals"]["requests"] == 2
    assert theirs.json()["totals"]["completion_tokens"] == 8

    # an admin may look at anyone's
    admin = httpx.get(usage, params={"key_id": str(b["id"])}, headers=_admin(server))
    assert admin.status_code == 200
    assert admin.json()["totals"] == theirs.json()["totals"]


# the CLI --------------------------------------------------------------------------------------


def _cli(*args: str, data_dir: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUCLOUD_")}
    result = subprocess.run(
        [sys.executable, "-m", "gpucloud", *args, "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def _cli_create(data_dir: Path, *args: str) -> tuple[str, str]:
    """(id, secret) of a key made by `gpucloud keys create`."""
    out = _cli("keys", "create", *args, data_dir=data_dir).stdout
    key_id = re.search(r"^id:\s+(key_\w+)$", out, re.MULTILINE)
    secret = re.search(r"^key:\s+(gc_\w+)$", out, re.MULTILINE)
    assert key_id, out
    assert secret, out
    return key_id.group(1), secret.group(1)


def test_cli_create_list_revoke(tmp_path: Path) -> None:
    data_dir = tmp_path / "cli-data"
    created = _cli("keys", "create", "--name", "from cli", data_dir=data_dir)
    assert "cannot be shown again" in created.stderr
    key_id = re.search(r"^id:\s+(key_\w+)$", created.stdout, re.MULTILINE)
    secret = re.search(r"^key:\s+(gc_\w+)$", created.stdout, re.MULTILINE)
    assert key_id
    assert secret
    key_id_s, secret_s = key_id.group(1), secret.group(1)
    assert len(secret_s) == 52
    assert "role:   user" in created.stdout

    listed = _cli("keys", "list", data_dir=data_dir)
    line = next(ln for ln in listed.stdout.splitlines() if key_id_s in ln)
    assert secret_s[:11] in line
    assert "active" in line
    assert "from cli" in line
    assert secret_s not in listed.stdout + listed.stderr
    assert secret_s[11:] not in listed.stdout

    revoked = _cli("keys", "revoke", key_id_s, data_dir=data_dir)
    assert key_id_s in revoked.stdout
    line = next(ln for ln in _cli("keys", "list", data_dir=data_dir).stdout.splitlines() if key_id_s in ln)
    assert "revoked" in line

    unknown = _cli("keys", "revoke", "key_nope", data_dir=data_dir, check=False)
    assert unknown.returncode == 2
    assert "No API key" in unknown.stderr
    for bad in (["--role", "root"], ["--priority", "urgent"], ["--max-priority", "top"]):
        refused = _cli("keys", "create", "--name", "refused-key", *bad, data_dir=data_dir, check=False)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert refused.stderr.startswith("error:"), refused.stderr
        assert "gc_" not in refused.stdout
    assert "refused-key" not in _cli("keys", "list", data_dir=data_dir).stdout


def test_cli_keys_work_against_a_server_on_the_same_data_dir(tmp_path: Path) -> None:
    """SQLite only: the server and the CLI share the database file in the data directory."""
    srv = make_server(tmp_path / "srv")
    user_id, user_secret = _cli_create(srv.data_dir, "--name", "cli user", "--model", MODEL)
    admin_id, admin_secret = _cli_create(srv.data_dir, "--name", "cli admin", "--role", "admin")
    srv.start()
    try:
        client = openai.OpenAI(base_url=srv.v1, api_key=user_secret, max_retries=0)
        assert [m.id for m in client.models.list().data] == [MODEL]
        answer = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=3
        )
        assert answer.usage is not None
        assert answer.usage.completion_tokens == 3
        me = httpx.get(f"{srv.base_url}/api/me", headers=_auth(user_secret)).json()
        assert (me["id"], me["role"], me["allowed_models"]) == (user_id, "user", [MODEL])

        # the CLI's admin key manages keys over HTTP; a key made over HTTP shows in `keys list`
        made = httpx.post(f"{srv.base_url}/api/keys", json={"name": "via http"}, headers=_auth(admin_secret))
        assert made.status_code == 201, made.text
        listed = _cli("keys", "list", data_dir=srv.data_dir).stdout
        assert made.json()["id"] in listed
        assert admin_id in listed
        assert made.json()["key"] not in listed

        # revoked by the CLI while the server runs: refused on the next request
        _cli("keys", "revoke", user_id, data_dir=srv.data_dir)
        with pytest.raises(openai.AuthenticationError):
            client.models.list()
    finally:
        srv.stop()
