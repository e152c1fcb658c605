"""`WebhookStore` on a real database: endpoints are private to their key — or, made by a key of an
organisation, shared by all its keys —, removal stops pending deliveries, and redelivery makes a
delivery due again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from gpucloud.accounts.orgs import OrgService
from gpucloud.db import Database
from gpucloud.db.models import DEFAULT_ORG_ID, OutboxEvent, WebhookDelivery, utcnow
from gpucloud.errors import NotFound
from gpucloud.gateway.views.offline import endpoint_view
from gpucloud.keycache import LocalKeyChanges
from gpucloud.keys import KeyService, NewKey, Principal
from gpucloud.webhooks.signing import SECRET_PREFIX
from gpucloud.webhooks.store import NewEndpoint, WebhookStore, shared_org


async def _principal(db: Database, org_id: str | None = None) -> Principal:
    row, _ = await KeyService(db).create(NewKey(name="k", org_id=org_id))
    return Principal.of(row)


async def _org(db: Database, name: str) -> str:
    return (await OrgService(db, LocalKeyChanges()).create(name)).id


async def _delivery(db: Database, endpoint_id: str, key_id: str, status: str, n: int) -> str:
    event = {"id": f"evt_{n}", "key_id": key_id, "type": "job.completed", "data": {}, "created_at": utcnow()}
    delivery = {
        "id": f"whd_{n}",
        "endpoint_id": endpoint_id,
        "event_id": f"evt_{n}",
        "status": status,
        "attempts": 3,
        "next_attempt_at": None,
        "created_at": utcnow() + timedelta(seconds=n),
    }
    async with db.transaction() as connection:
        await connection.execute(insert(OutboxEvent), event)
        await connection.execute(insert(WebhookDelivery), delivery)
    return str(delivery["id"])


async def test_an_endpoint_is_created_with_a_secret_and_seen_by_its_key_only(db: Database) -> None:
    store = WebhookStore(db)
    mine, other = await _principal(db), await _principal(db)
    row, secret = await store.create(NewEndpoint(mine.key_id, "https://example.com/hook", ["job.completed"]))
    assert secret.startswith(SECRET_PREFIX)
    assert row.secret == secret
    view = endpoint_view(row)
    assert view.secret is None  # shown once, at creation, only when asked
    assert endpoint_view(row, secret).secret == secret
    assert (view.object, view.events) == ("webhook_endpoint", ["job.completed"])
    assert [e.id for e in await store.page(mine)] == [row.id]
    assert await store.page(other) == []
    with pytest.raises(NotFound) as hidden:
        await store.get(row.id, other)
    assert hidden.value.param == "webhook_id"


async def test_an_organisations_endpoint_is_seen_by_its_keys_only(db: Database) -> None:
    store = WebhookStore(db)
    org, elsewhere = await _org(db, "team"), await _org(db, "rivals")
    maker, colleague = await _principal(db, org), await _principal(db, org)
    outsider, unorganised = await _principal(db, elsewhere), await _principal(db)
    assert (shared_org(maker), shared_org(unorganised)) == (org, None)
    assert unorganised.org_id == DEFAULT_ORG_ID  # the default organisation shares nothing
    row, _ = await store.create(
        NewEndpoint(maker.key_id, "https://example.com/team", ["job.completed"], org_id=org)
    )
    view = endpoint_view(row)
    assert (view.org_id, view.created_by) == (org, maker.key_id)
    for member in (maker, colleague):
        assert [e.id for e in await store.page(member)] == [row.id]
        assert (await store.get(row.id, member)).id == row.id
    for stranger in (outsider, unorganised):
        assert await store.page(stranger) == []
        with pytest.raises(NotFound):
            await store.get(row.id, stranger)
    # One of its own (made before endpoints were organisations', migration 0013) stays its key's.
    own, _ = await store.create(NewEndpoint(colleague.key_id, "https://example.com/own", ["job.failed"]))
    assert [e.id for e in await store.page(colleague)] == [row.id, own.id]
    assert [e.id for e in await store.page(maker)] == [row.id]
    with pytest.raises(NotFound):
        await store.get(own.id, maker)


async def test_removal_hides_the_endpoint_and_drops_only_pending_deliveries(db: Database) -> None:
    store = WebhookStore(db)
    mine = await _principal(db)
    row, _ = await store.create(NewEndpoint(mine.key_id, "https://example.com/hook", ["job.completed"]))
    await _delivery(db, row.id, mine.key_id, "pending", 1)
    done = await _delivery(db, row.id, mine.key_id, "succeeded", 2)
    await store.remove(row)
    assert await store.page(mine) == []
    with pytest.raises(NotFound):
        await store.get(row.id, mine)
    assert [d.id for d, _ in await store.deliveries(row, 10)] == [done]


async def test_deliveries_list_newest_first_and_redelivery_makes_one_due(db: Database) -> None:
    store = WebhookStore(db)
    mine = await _principal(db)
    row, _ = await store.create(NewEndpoint(mine.key_id, "https://example.com/hook", ["job.completed"]))
    first = await _delivery(db, row.id, mine.key_id, "failed", 1)
    second = await _delivery(db, row.id, mine.key_id, "succeeded", 2)
    listed = await store.deliveries(row, 10)
    assert [d.id for d, _ in listed] == [second, first]
    assert listed[0][1] == "job.completed"
    assert [d.id for d, _ in await store.deliveries(row, 1)] == [second]
    again, event_type = await store.redeliver(row, first)
    assert (again.status, again.attempts, event_type) == (
        "pending",
        3,
        "job.completed",
    )  # attempts keep counting
    async with db.read() as connection:
        due = await connection.execute(
            select(WebhookDelivery.next_attempt_at).where(WebhookDelivery.id == first)
        )
        next_attempt_at = due.scalar_one()
    assert next_attempt_at is not None
    assert next_attempt_at <= utcnow()
    with pytest.raises(NotFound):
        await store.redeliver(row, "whd_missing")
    other, _ = await store.create(NewEndpoint(mine.key_id, "https://example.com/b", ["job.failed"]))
    with pytest.raises(NotFound):
        await store.redeliver(other, first)  # not this endpoint's delivery
