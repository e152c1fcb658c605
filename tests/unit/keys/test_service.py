"""`KeyService` on a real migrated database: creation validates, authentication refuses every
bad secret alike, changes reach the cache at once, and the operator key rotates."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gpucloud.db import Database
from gpucloud.db.models import DEFAULT_ORG_ID, utcnow
from gpucloud.errors import AuthenticationFailed, InvalidRequest, NotFound
from gpucloud.keycache import KeyCache
from gpucloud.keys.principal import NewKey
from gpucloud.keys.secrets import OPERATOR_LABEL, digest, generate_key, generate_secret
from gpucloud.keys.service import KeyService
from gpucloud.queue.protocol import Priority

OPERATOR = "operator-key-" + "x" * 40


async def test_a_created_key_authenticates_and_stores_no_secret(db: Database) -> None:
    keys = KeyService(db)
    row, secret = await keys.create(NewKey(name="ci", allowed_models=["m"], rpm_limit=3))
    assert row.digest == digest(secret)
    assert row.prefix == secret[:11]
    assert row.org_id == DEFAULT_ORG_ID
    principal = await keys.authenticate(secret)
    assert (principal.key_id, principal.name, principal.rpm_limit) == (row.id, "ci", 3)
    assert principal.allowed_models == ("m",)
    stored = await keys.get(row.id)
    assert secret not in repr(stored.column_values())


async def test_creation_refuses_an_unknown_role_or_inverted_priorities(db: Database) -> None:
    keys = KeyService(db)
    with pytest.raises(InvalidRequest) as role:
        await keys.create(NewKey(name="k", role="root"))
    assert role.value.param == "role"
    with pytest.raises(InvalidRequest) as priority:
        await keys.create(NewKey(name="k", default_priority=Priority.HIGH, max_priority=Priority.LOW))
    assert priority.value.param == "default_priority"
    assert await keys.list() == []


async def test_bad_secrets_are_refused_alike(db: Database) -> None:
    keys = KeyService(db)
    _, secret = await keys.create(NewKey(name="k"))
    mistyped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for bad in ("", generate_key(), mistyped, generate_secret("gcw_")):
        with pytest.raises(AuthenticationFailed, match="Incorrect API key provided"):
            await keys.authenticate(bad)


async def test_an_expired_key_is_refused_with_its_own_message(db: Database) -> None:
    keys = KeyService(db)
    row, secret = await keys.create(NewKey(name="k", expires_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(AuthenticationFailed, match="expired"):
        await keys.authenticate(secret)
    assert await keys.usable_principal(row.id) is None


async def test_revocation_and_edits_reach_a_caching_service_at_once(db: Database) -> None:
    keys = KeyService(db, cache=KeyCache(ttl_s=3600))
    await keys.start()  # follows the (local) change announcements
    row, secret = await keys.create(NewKey(name="k", rpm_limit=1))
    assert (await keys.authenticate(secret)).rpm_limit == 1  # now cached for an hour
    updated = await keys.update(row.id, {"rpm_limit": 9, "name": "renamed"})
    assert (updated.rpm_limit, updated.name) == (9, "renamed")
    assert (await keys.authenticate(secret)).rpm_limit == 9
    revoked = await keys.revoke(row.id)
    assert revoked.revoked_at is not None
    assert (await keys.revoke(row.id)).revoked_at == revoked.revoked_at  # twice is a no-op
    with pytest.raises(AuthenticationFailed):
        await keys.authenticate(secret)
    assert await keys.usable_principal(row.id) is None
    await keys.close()


async def test_without_start_a_cached_key_lives_out_its_ttl(db: Database) -> None:
    keys = KeyService(db, cache=KeyCache(ttl_s=3600))
    row, secret = await keys.create(NewKey(name="k", rpm_limit=1))
    await keys.authenticate(secret)
    await keys.update(row.id, {"rpm_limit": 9})
    assert (await keys.authenticate(secret)).rpm_limit == 1  # nobody told this cache


async def test_updates_refuse_fixed_fields_inverted_priorities_and_unknown_keys(db: Database) -> None:
    keys = KeyService(db)
    row, _ = await keys.create(NewKey(name="k", max_priority=Priority.HIGH))
    with pytest.raises(InvalidRequest) as fixed:
        await keys.update(row.id, {"role": "admin"})
    assert fixed.value.param == "role"
    with pytest.raises(InvalidRequest):
        await keys.update(row.id, {"max_priority": "low", "default_priority": "normal"})
    await keys.update(row.id, {"default_priority": "high"})
    assert (await keys.get(row.id)).default_priority == "high"
    for call in (keys.get("key_missing"), keys.revoke("key_missing"), keys.update("key_missing", {})):
        with pytest.raises(NotFound):
            await call


async def test_usable_principal_reads_the_organisations_limits(db: Database) -> None:
    keys = KeyService(db)
    row, _ = await keys.create(NewKey(name="k"))
    principal = await keys.usable_principal(row.id)
    assert principal is not None
    assert principal.key_id == row.id
    assert await keys.usable_principal("key_missing") is None


async def test_a_generated_admin_only_when_none_is_usable(db: Database) -> None:
    keys = KeyService(db)
    secret = await keys.bootstrap_admin(None)
    assert secret is not None
    assert (await keys.authenticate(secret)).is_admin
    assert await keys.bootstrap_admin(None) is None
    await keys.revoke((await keys.authenticate(secret)).key_id)
    assert await keys.bootstrap_admin(None) is not None


async def test_the_operator_key_is_registered_once_and_rotation_revokes_the_old_one(db: Database) -> None:
    keys = KeyService(db)
    assert await keys.bootstrap_admin(OPERATOR) is None
    assert await keys.bootstrap_admin(OPERATOR) is None
    first = await keys.authenticate(OPERATOR)
    assert first.is_admin
    rows = await keys.list()
    assert [r.prefix for r in rows] == [OPERATOR_LABEL]  # none of its characters shown
    await keys.bootstrap_admin(OPERATOR + "-rotated")
    with pytest.raises(AuthenticationFailed):
        await keys.authenticate(OPERATOR)
    assert (await keys.authenticate(OPERATOR + "-rotated")).is_admin
    with pytest.raises(ValueError, match="whitespace"):
        await keys.bootstrap_admin(OPERATOR + "\n")
