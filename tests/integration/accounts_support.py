"""Helpers of the accounts tests: users and organisations created over HTTP or the CLI, and
signing in."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support import SECRETS, Server


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_password() -> str:
    password = "pw-" + secrets.token_urlsafe(12)
    SECRETS.add(password)  # the session's log scan fails if any server ever logs it
    return password


def new_email(tag: str = "user") -> str:
    return f"{tag}-{secrets.token_hex(4)}@example.com"


def create_user(server: Server, email: str, password: str, *, is_admin: bool = False) -> dict[str, object]:
    r = httpx.post(
        f"{server.base_url}/api/users",
        json={"email": email, "password": password, "is_admin": is_admin},
        headers=auth(server.admin_key),
        timeout=10,
    )
    assert r.status_code == 201, r.text
    user: dict[str, object] = r.json()
    return user


def create_org(server: Server, tag: str = "org") -> str:
    """A new organisation (made by the platform admin) named `tag` and a random suffix; its id."""
    r = httpx.post(
        f"{server.base_url}/api/orgs",
        json={"name": f"{tag}-{secrets.token_hex(4)}"},
        headers=auth(server.admin_key),
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def new_member(server: Server, org_id: str, role: str) -> tuple[str, str]:
    """A new user with `role` in the organisation ("outsider": in none): its id and an access token."""
    email, password = new_email(role), new_password()
    user_id = str(create_user(server, email, password)["id"])
    if role != "outsider":
        r = httpx.post(
            f"{server.base_url}/api/orgs/{org_id}/members",
            json={"user_id": user_id, "role": role},
            headers=auth(server.admin_key),
            timeout=10,
        )
        assert r.status_code == 201, r.text
    return user_id, token_of(server, email, password)


def login(server: Server, email: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/api/auth/login", json={"email": email, "password": password}, timeout=10
    )


def token_of(server: Server, email: str, password: str) -> str:
    r = login(server, email, password)
    assert r.status_code == 200, r.text
    token = str(r.json()["access_token"])
    SECRETS.add(token)
    return token


def cli(*args: str, data_dir: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUCLOUD_")}
    return subprocess.run(
        [sys.executable, "-m", "gpucloud", *args, "--data-dir", str(data_dir)],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
