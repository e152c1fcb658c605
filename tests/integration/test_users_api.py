"""Users over HTTP (`/api/users`, platform admins only) and the CLI (`gpucloud users`): created
with an argon2id-hashed password that no answer ever shows, validated, disabled, reset, deleted;
the operator's admin key keeps working alongside them."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import create_key
from tests.integration.accounts_support import (
    auth,
    cli,
    create_user,
    login,
    new_email,
    new_password,
    token_of,
)
from tests.integration.test_openai_api import assert_envelope
from tests.support import Server, make_server

_FIELDS = {"id", "object", "email", "is_admin", "created_at", "disabled_at", "password_changed_at"}


def test_admin_creates_lists_and_reads_users(server: Server) -> None:
    email, password = new_email("Ada"), new_password()
    user = create_user(server, email, password)
    assert set(user) == _FIELDS
    assert user["email"] == email.lower()
    assert user["is_admin"] is False
    assert user["disabled_at"] is None
    assert str(user["id"]).startswith("usr_")
    listed = httpx.get(f"{server.base_url}/api/users", headers=auth(server.admin_key), timeout=10)
    assert listed.status_code == 200
    assert user["id"] in [u["id"] for u in listed.json()["data"]]
    assert password not in listed.text
    assert "argon2" not in listed.text
    one = httpx.get(f"{server.base_url}/api/users/{user['id']}", headers=auth(server.admin_key), timeout=10)
    assert one.json() == user


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"email": "not-an-email", "password": "long enough pw"}, "email"),
        ({"email": "short@example.com", "password": "short"}, "password"),
        ({"email": "extra@example.com", "password": "long enough pw", "role": "x"}, "role"),
    ],
)
def test_bad_user_bodies_are_400_naming_the_field(server: Server, body: dict[str, str], param: str) -> None:
    r = httpx.post(f"{server.base_url}/api/users", json=body, headers=auth(server.admin_key), timeout=10)
    assert_envelope(r, 400, param=param)


def test_duplicate_email_is_409(server: Server) -> None:
    email = new_email()
    create_user(server, email, new_password())
    r = httpx.post(
        f"{server.base_url}/api/users",
        json={"email": email.upper(), "password": new_password()},
        headers=auth(server.admin_key),
        timeout=10,
    )
    assert_envelope(r, 409, code="conflict", param="email")


def test_only_platform_admins_manage_users(server: Server) -> None:
    user_key = str(create_key(server)["key"])
    email, password = new_email(), new_password()
    create_user(server, email, password)
    member_token = token_of(server, email, password)
    for token in (user_key, member_token):
        r = httpx.get(f"{server.base_url}/api/users", headers=auth(token), timeout=10)
        assert_envelope(r, 403, code="admin_required")
        r = httpx.post(
            f"{server.base_url}/api/users",
            json={"email": new_email(), "password": new_password()},
            headers=auth(token),
            timeout=10,
        )
        assert_envelope(r, 403, code="admin_required")
    assert_envelope(httpx.get(f"{server.base_url}/api/users", timeout=10), 401)


def test_disable_enable_reset_and_delete(server: Server) -> None:
    email, password = new_email(), new_password()
    user_id = create_user(server, email, password)["id"]
    base, admin = f"{server.base_url}/api/users/{user_id}", auth(server.admin_key)
    disabled = httpx.patch(base, json={"disabled": True}, headers=admin, timeout=10)
    assert disabled.status_code == 200
    assert disabled.json()["disabled_at"] is not None
    assert_envelope(login(server, email, password), 401, code="invalid_credentials")
    enabled = httpx.patch(base, json={"disabled": False}, headers=admin, timeout=10)
    assert enabled.json()["disabled_at"] is None
    assert login(server, email, password).status_code == 200
    fresh = new_password()
    reset = httpx.post(f"{base}/password", json={"password": fresh}, headers=admin, timeout=10)
    assert reset.status_code == 200
    assert reset.json()["password_changed_at"] is not None
    assert_envelope(login(server, email, password), 401)
    assert login(server, email, fresh).status_code == 200
    deleted = httpx.delete(base, headers=admin, timeout=10)
    assert deleted.json() == {"id": user_id, "object": "user", "deleted": True}
    assert_envelope(httpx.get(base, headers=admin, timeout=10), 404, code="not_found")
    assert_envelope(login(server, email, fresh), 401)
    assert_envelope(httpx.delete(base, headers=admin, timeout=10), 404)


def test_cli_creates_the_first_admin_who_signs_in(tmp_path: Path) -> None:
    srv = make_server(tmp_path)
    srv.data_dir.mkdir(parents=True)
    email, password = new_email("root"), new_password()
    made = cli(
        "users",
        "create",
        "--email",
        email,
        "--password-stdin",
        "--admin",
        data_dir=srv.data_dir,
        stdin=password + "\n",
    )
    assert made.returncode == 0, made.stderr
    assert "usr_" in made.stdout
    assert password not in made.stdout + made.stderr
    refused = cli("users", "create", "--email", new_email(), data_dir=srv.data_dir)
    assert refused.returncode == 2
    assert "--password-stdin" in refused.stderr
    srv.start()
    try:
        token = token_of(srv, email, password)
        keys = httpx.get(f"{srv.base_url}/api/keys", headers=auth(token), timeout=10)
        assert keys.status_code == 200, keys.text  # a platform admin, by its token
        admin_key = httpx.get(f"{srv.base_url}/api/users", headers=auth(srv.admin_key), timeout=10)
        assert [u["email"] for u in admin_key.json()["data"]] == [email]  # the admin key still works
        user_id = admin_key.json()["data"][0]["id"]
        listed = cli("users", "list", data_dir=srv.data_dir)
        assert user_id in listed.stdout
        assert "admin" in listed.stdout
        assert cli("users", "disable", user_id, data_dir=srv.data_dir).returncode == 0
        _eventually_401(srv, token)  # the server follows the CLI's change to the SQLite file
    finally:
        srv.stop()


def _eventually_401(srv: Server, token: str) -> None:
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        r = httpx.get(f"{srv.base_url}/api/keys", headers=auth(token), timeout=10)
        if r.status_code == 401:
            return
        time.sleep(0.1)
    raise AssertionError("the disabled user's token kept working")
