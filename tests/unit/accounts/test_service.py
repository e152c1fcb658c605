"""`Accounts`: sign-in, refresh, sign-out and the token check on a real database; a change to a
user stops its tokens at once, and wrong passwords are throttled even when the next one is right."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gpucloud.accounts.service import Accounts, user_principal
from gpucloud.accounts.users import NewUser
from gpucloud.db import Database
from gpucloud.errors import AuthenticationFailed, RateLimited
from gpucloud.keycache import LocalKeyChanges
from gpucloud.settings import AccountSettings
from tests.unit.accounts.test_passwords import cheap_passwords

PASSWORD = "correct horse battery"


@pytest.fixture
async def accounts(db: Database) -> AsyncIterator[Accounts]:
    service = Accounts(
        db,
        AccountSettings(login_max_failures=2),
        LocalKeyChanges(),
        cache_ttl_s=3600,
        passwords=cheap_passwords(),
    )
    await service.start()
    yield service
    await service.close()


def test_a_user_principal_may_use_no_model() -> None:
    admin = user_principal("usr_1", "a@example.com", True)
    assert admin.is_admin
    assert not admin.may_use("any-model")
    assert not user_principal("usr_2", "b@example.com", False).is_admin


async def test_sign_in_gives_a_token_that_authenticates_the_user(accounts: Accounts) -> None:
    user = await accounts.users.create(NewUser("ada@example.com", PASSWORD, is_admin=True))
    grant = await accounts.login(" ADA@example.com", PASSWORD, "127.0.0.1")
    assert grant.user_id == user.id
    assert grant.expires_in == 900
    principal = await accounts.authenticate(grant.access_token)
    assert (principal.key_id, principal.name, principal.is_admin) == (user.id, "ada@example.com", True)
    refreshed = await accounts.refresh(grant.access_token)
    assert refreshed.access_token != grant.access_token
    assert (await accounts.authenticate(refreshed.access_token)).key_id == user.id


async def test_wrong_unknown_and_disabled_sign_ins_fail_alike(accounts: Accounts) -> None:
    user = await accounts.users.create(NewUser("ada@example.com", PASSWORD))
    await accounts.users.update(user.id, disabled=True)
    attempts = [
        ("ada@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
        ("ada@example.com", PASSWORD),
    ]
    for n, (email, password) in enumerate(attempts):
        with pytest.raises(AuthenticationFailed, match="Incorrect email or password"):
            await accounts.login(email, password, f"10.0.0.{n}")
    with pytest.raises(RateLimited):  # the account's two failures close it
        await accounts.login("ada@example.com", PASSWORD, "10.0.0.9")


async def test_the_right_password_is_refused_while_throttled(accounts: Accounts) -> None:
    await accounts.users.create(NewUser("ada@example.com", PASSWORD))
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            await accounts.login("ada@example.com", "wrong password", "10.0.0.1")
    with pytest.raises(RateLimited) as limited:
        await accounts.login("ada@example.com", PASSWORD, "10.0.0.2")
    assert limited.value.code == "too_many_sign_in_attempts"


async def test_sign_out_disable_and_delete_stop_cached_tokens_at_once(accounts: Accounts) -> None:
    ada = await accounts.users.create(NewUser("ada@example.com", PASSWORD))
    token = (await accounts.login("ada@example.com", PASSWORD, "127.0.0.1")).access_token
    await accounts.authenticate(token)  # cached for an hour now
    assert await accounts.logout(token) == ada.id
    for call in (accounts.authenticate(token), accounts.refresh(token), accounts.logout(token)):
        with pytest.raises(AuthenticationFailed):
            await call
    token = (await accounts.login("ada@example.com", PASSWORD, "127.0.0.1")).access_token
    await accounts.authenticate(token)
    await accounts.users.delete(ada.id)
    with pytest.raises(AuthenticationFailed):
        await accounts.authenticate(token)


async def test_refreshing_stops_at_the_session_limit(db: Database) -> None:
    short = Accounts(
        db, AccountSettings(session_max_s=1), LocalKeyChanges(), cache_ttl_s=0, passwords=cheap_passwords()
    )
    await short.start()
    user = await short.users.create(NewUser("ada@example.com", PASSWORD))
    old_sign_in = short.signer.issue(user.id, user.token_version, auth_time=1)
    with pytest.raises(AuthenticationFailed) as over:
        await short.refresh(old_sign_in)
    assert over.value.code == "session_expired"
    await short.close()


async def test_the_signer_needs_start(db: Database) -> None:
    with pytest.raises(RuntimeError, match="start"):
        _ = Accounts(db, AccountSettings(), LocalKeyChanges(), cache_ttl_s=0).signer
