"""`UserService` on a real database: emails are normalised and unique, every sign-in-affecting
change bumps the token version and is announced, and unknown users are NotFound."""

from __future__ import annotations

import pytest

from gpucloud.accounts.orgs import OrgService
from gpucloud.accounts.users import NewUser, UserService, normalise_email
from gpucloud.db import Database
from gpucloud.errors import Conflict, InvalidRequest, NotFound
from gpucloud.keycache import LocalKeyChanges
from tests.unit.accounts.test_passwords import cheap_passwords

PASSWORD = "a long enough password"


async def _service(db: Database) -> tuple[UserService, list[str | None]]:
    heard: list[str | None] = []
    changes = LocalKeyChanges()
    await changes.start(heard.append)
    return UserService(db, changes, cheap_passwords()), heard


@pytest.mark.parametrize(
    ("given", "kept"), [("Ada@Example.COM", "ada@example.com"), ("  b@c.io\n", "b@c.io")]
)
def test_emails_are_trimmed_and_lowercased(given: str, kept: str) -> None:
    assert normalise_email(given) == kept


@pytest.mark.parametrize("bad", ["", "ada", "ada@", "@example.com", "a b@c.io", "a@b", "a@b.", "a@@b.io"])
def test_malformed_emails_are_refused(bad: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        normalise_email(bad, param="invite")
    assert refused.value.param == "invite"


def test_an_overlong_email_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        normalise_email("a" * 320 + "@b.io")


async def test_a_user_is_created_once_per_email_with_a_hashed_password(db: Database) -> None:
    users, _ = await _service(db)
    user = await users.create(NewUser("Ada@Example.com", PASSWORD))
    assert user.email == "ada@example.com"
    assert user.token_version == 0
    assert user.password_hash is not None
    assert PASSWORD not in user.password_hash
    assert await users.passwords.verify(user.password_hash, PASSWORD)
    with pytest.raises(Conflict):
        await users.create(NewUser("ADA@example.com", PASSWORD))
    with pytest.raises(InvalidRequest):
        await users.create(NewUser("b@example.com", "short"))
    assert [u.id for u in await users.list()] == [user.id]
    found = await users.find(" ADA@example.com ")
    assert found is not None
    assert found.id == user.id
    assert await users.find("nobody@example.com") is None


async def test_every_change_bumps_the_token_version_and_is_announced(db: Database) -> None:
    users, heard = await _service(db)
    user = await users.create(NewUser("a@example.com", PASSWORD))
    disabled = await users.update(user.id, disabled=True)
    assert disabled.disabled_at is not None
    assert disabled.token_version == 1
    enabled = await users.update(user.id, disabled=False, is_admin=True)
    assert (enabled.disabled_at, enabled.is_admin, enabled.token_version) == (None, True, 2)
    assert (await users.update(user.id)).token_version == 2  # nothing asked: nothing changed
    await users.revoke_tokens(user.id)
    reset = await users.reset_password(user.id, "another good password")
    assert reset.token_version == 4
    assert reset.password_changed_at is not None
    assert await users.passwords.verify(reset.password_hash, "another good password")
    assert heard == [user.id] * 4


async def test_deleting_a_user_removes_its_memberships(db: Database) -> None:
    users, heard = await _service(db)
    orgs = OrgService(db, LocalKeyChanges())
    user = await users.create(NewUser("a@example.com", PASSWORD))
    org = await orgs.create("team", owner_user_id=user.id)
    await users.delete(user.id)
    assert heard == [user.id]
    assert await orgs.members(org.id) == []
    with pytest.raises(NotFound):
        await users.get(user.id)


async def test_unknown_users_are_not_found(db: Database) -> None:
    users, heard = await _service(db)
    for call in (
        users.update("usr_x", disabled=True),
        users.revoke_tokens("usr_x"),
        users.delete("usr_x"),
        users.reset_password("usr_x", PASSWORD),
    ):
        with pytest.raises(NotFound):
            await call
    assert heard == []
