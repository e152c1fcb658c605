"""`OrgService` on a real database: organisations are unique by name, members have one known
role each, and a limit change announces every key of the organisation."""

from __future__ import annotations

import pytest

from gpucloud.accounts.orgs import ORG_ROLES, OrgService, check_role
from gpucloud.accounts.users import NewUser, UserService
from gpucloud.db import Database
from gpucloud.db.models import DEFAULT_ORG_ID
from gpucloud.errors import Conflict, InvalidRequest, NotFound
from gpucloud.keycache import LocalKeyChanges
from gpucloud.keys import KeyService, NewKey
from tests.unit.accounts.test_passwords import cheap_passwords


async def _orgs(db: Database) -> tuple[OrgService, list[str | None]]:
    heard: list[str | None] = []
    changes = LocalKeyChanges()
    await changes.start(heard.append)
    return OrgService(db, changes), heard


async def _user(db: Database, email: str) -> str:
    return (
        await UserService(db, LocalKeyChanges(), cheap_passwords()).create(NewUser(email, "password-123"))
    ).id


def test_roles_are_checked() -> None:
    for role in ORG_ROLES:
        check_role(role)
    with pytest.raises(InvalidRequest) as refused:
        check_role("superuser")
    assert refused.value.param == "role"


async def test_an_organisation_gets_its_owner_and_a_unique_name(db: Database) -> None:
    orgs, _ = await _orgs(db)
    ada = await _user(db, "ada@example.com")
    org = await orgs.create("  research  ", owner_user_id=ada)
    assert org.name == "research"
    assert await orgs.role_of(org.id, ada) == "owner"
    with pytest.raises(Conflict):
        await orgs.create("research")
    listed = {o.id for o in await orgs.listed()}
    assert listed == {org.id, DEFAULT_ORG_ID}
    assert [o.id for o in await orgs.listed(ada)] == [org.id]
    with pytest.raises(NotFound):
        await orgs.get("org_missing")


async def test_members_join_change_role_and_leave(db: Database) -> None:
    orgs, _ = await _orgs(db)
    ada, bob = await _user(db, "ada@example.com"), await _user(db, "bob@example.com")
    org = await orgs.create("team", owner_user_id=ada)
    await orgs.add_member(org.id, bob, "viewer")
    with pytest.raises(Conflict):
        await orgs.add_member(org.id, bob, "member")
    await orgs.set_role(org.id, bob, "admin")
    assert [(m.role, email) for m, email in await orgs.members(org.id)] == [
        ("owner", "ada@example.com"),
        ("admin", "bob@example.com"),
    ]
    await orgs.remove_member(org.id, bob)
    assert await orgs.role_of(org.id, bob) is None
    with pytest.raises(NotFound):
        await orgs.remove_member(org.id, bob)
    with pytest.raises(NotFound):
        await orgs.set_role(org.id, bob, "member")


async def test_adding_refuses_unknown_users_roles_and_organisations(db: Database) -> None:
    orgs, _ = await _orgs(db)
    org = await orgs.create("team")
    with pytest.raises(InvalidRequest) as unknown:
        await orgs.add_member(org.id, "usr_missing", "member")
    assert unknown.value.code == "user_not_found"
    with pytest.raises(InvalidRequest):
        await orgs.add_member(org.id, await _user(db, "c@example.com"), "god")
    with pytest.raises(NotFound):
        await orgs.add_member("org_missing", "usr_missing", "member")
    with pytest.raises(NotFound):
        await orgs.members("org_missing")


async def test_a_limit_change_announces_each_key_of_the_organisation_only(db: Database) -> None:
    orgs, heard = await _orgs(db)
    org = await orgs.create("team")
    keys = KeyService(db)
    mine, _ = await keys.create(NewKey(name="a", org_id=org.id))
    await keys.create(NewKey(name="elsewhere"))
    changed = await orgs.set_limits(org.id, {"rpm_limit": 7, "budget_period": "daily"})
    assert (changed.rpm_limit, changed.budget_period) == (7, "daily")
    assert heard == [mine.id]
    principal = await keys.usable_principal(mine.id)
    assert principal is not None
    assert principal.org_limits is not None
    assert principal.org_limits.rpm_limit == 7
    await orgs.set_limits(org.id, {})
    assert heard == [mine.id]  # nothing changed: nothing announced
    with pytest.raises(NotFound):
        await orgs.set_limits("org_missing", {"rpm_limit": 1})
