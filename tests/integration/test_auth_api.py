"""Sign-in (`/api/auth/*`) against a live server with short token lifetimes: login, wrong
passwords, per-account and per-IP throttling (429 with Retry-After), expiry and refresh up to the
session's end, sign-out revoking the token, tokens refused on /v1 and when forged."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import openai
import pytest

from tests.conftest import MODEL
from tests.integration.accounts_support import auth, create_user, login, new_email, new_password, token_of
from tests.integration.test_openai_api import assert_envelope
from tests.support import Server, make_server

TTL_S = 6
SESSION_MAX_S = 6
ACCOUNT_LIMIT = 3


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "GPUCLOUD_ACCOUNTS__ACCESS_TOKEN_TTL_S": str(TTL_S),
        "GPUCLOUD_ACCOUNTS__SESSION_MAX_S": str(SESSION_MAX_S),
        "GPUCLOUD_ACCOUNTS__LOGIN_MAX_FAILURES": str(ACCOUNT_LIMIT),
    }
    server = make_server(tmp_path_factory.mktemp("auth"), env=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _me(server: Server, token: str) -> httpx.Response:
    return httpx.get(f"{server.base_url}/api/auth/me", headers=auth(token), timeout=10)


def test_login_gives_a_bearer_token_good_on_api(srv: Server) -> None:
    email, password = new_email(), new_password()
    user = create_user(srv, email, password, is_admin=True)
    r = login(srv, email.upper(), password)  # emails are matched without case
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == TTL_S
    assert r.headers["cache-control"] == "no-store"
    token = token_of(srv, email, password)
    assert _me(srv, token).json()["id"] == user["id"]
    assert httpx.get(f"{srv.base_url}/api/keys", headers=auth(token), timeout=10).status_code == 200


def test_tokens_are_never_accepted_on_v1(srv: Server) -> None:
    email, password = new_email(), new_password()
    create_user(srv, email, password, is_admin=True)
    token = token_of(srv, email, password)
    client = openai.OpenAI(base_url=srv.v1, api_key=token, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2
        )
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_wrong_password_and_unknown_email_answer_the_same(srv: Server) -> None:
    email, password = new_email(), new_password()
    create_user(srv, email, password)
    wrong = assert_envelope(login(srv, email, password + "x"), 401, code="invalid_credentials")
    unknown = assert_envelope(login(srv, new_email(), password), 401, code="invalid_credentials")
    assert wrong["message"] == unknown["message"]
    assert_envelope(
        httpx.post(f"{srv.base_url}/api/auth/login", json={"email": email}, timeout=10), 400, param="password"
    )


def test_wrong_passwords_throttle_the_account(srv: Server) -> None:
    email, password = new_email(), new_password()
    create_user(srv, email, password)
    for _ in range(ACCOUNT_LIMIT):
        assert_envelope(login(srv, email, "wrong password"), 401)
    throttled = login(srv, email, password)  # even the right password, while throttled
    assert_envelope(throttled, 429, code="too_many_sign_in_attempts")
    assert int(throttled.headers["retry-after"]) >= 1
    other_email, other_password = new_email(), new_password()
    create_user(srv, other_email, other_password)
    assert login(srv, other_email, other_password).status_code == 200  # other accounts unaffected


def test_expiry_refresh_and_the_session_end(srv: Server) -> None:
    email, password = new_email(), new_password()
    create_user(srv, email, password)
    first = token_of(srv, email, password)
    signed_in = time.time()  # the session began (auth_time) at or before this second
    time.sleep(2)
    before_refresh = time.time()  # the refreshed token lives until after this + TTL_S - 1
    refreshed = httpx.post(f"{srv.base_url}/api/auth/refresh", headers=auth(first), timeout=10)
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()["access_token"]
    assert refreshed.json()["expires_in"] == TTL_S
    assert _me(srv, second).status_code == 200
    time.sleep(max(0.0, signed_in + SESSION_MAX_S + 0.2 - time.time()))
    assert time.time() < before_refresh + TTL_S - 1  # the refreshed token is still valid
    assert_envelope(_me(srv, first), 401, code="invalid_token")  # expired
    over = httpx.post(f"{srv.base_url}/api/auth/refresh", headers=auth(second), timeout=10)
    assert_envelope(over, 401, code="session_expired")  # valid, but the session is over
    assert _me(srv, second).status_code == 200


def test_sign_out_revokes_the_token(srv: Server) -> None:
    email, password = new_email(), new_password()
    create_user(srv, email, password, is_admin=True)
    token = token_of(srv, email, password)
    out = httpx.post(f"{srv.base_url}/api/auth/logout", headers=auth(token), timeout=10)
    assert out.json() == {"object": "sign_out", "revoked": True}
    assert_envelope(_me(srv, token), 401, code="invalid_token")
    assert_envelope(httpx.get(f"{srv.base_url}/api/keys", headers=auth(token), timeout=10), 401)
    refresh = httpx.post(f"{srv.base_url}/api/auth/refresh", headers=auth(token), timeout=10)
    assert_envelope(refresh, 401)
    assert _me(srv, token_of(srv, email, password)).status_code == 200  # signing in again works


def test_disabling_revokes_tokens_at_once(srv: Server) -> None:
    email, password = new_email(), new_password()
    user_id = create_user(srv, email, password)["id"]
    token = token_of(srv, email, password)
    assert _me(srv, token).status_code == 200  # now in the gateway's cache
    r = httpx.patch(
        f"{srv.base_url}/api/users/{user_id}",
        json={"disabled": True},
        headers=auth(srv.admin_key),
        timeout=10,
    )
    assert r.status_code == 200
    assert_envelope(_me(srv, token), 401, code="invalid_token")


def test_forged_and_foreign_tokens_are_refused(srv: Server) -> None:
    email, password = new_email(), new_password()
    user_id = create_user(srv, email, password, is_admin=True)["id"]
    token = token_of(srv, email, password)
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(claims, "a key that is not the server's, 32+ bytes long", algorithm="HS256")
    assert_envelope(_me(srv, forged), 401, code="invalid_token")
    unsigned = jwt.encode(claims, "", algorithm="none")
    assert_envelope(_me(srv, unsigned), 401)
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload[:-2]}AA.{signature}"
    assert_envelope(_me(srv, tampered), 401)
    assert claims["sub"] == user_id
    assert_envelope(_me(srv, srv.admin_key), 401, code="invalid_token")  # an API key is not a session


def test_wrong_passwords_throttle_the_client_ip(tmp_path: Path) -> None:
    server = make_server(
        tmp_path,
        env={"GPUCLOUD_ACCOUNTS__LOGIN_IP_MAX_FAILURES": "4", "GPUCLOUD_ACCOUNTS__LOGIN_MAX_FAILURES": "100"},
    )
    server.start()
    try:
        email, password = new_email(), new_password()
        create_user(server, email, password)
        for _ in range(4):  # a guesser spreading its guesses over many accounts
            assert_envelope(login(server, new_email(), "wrong password"), 401)
        assert_envelope(login(server, email, password), 429, code="too_many_sign_in_attempts")
    finally:
        server.stop()
