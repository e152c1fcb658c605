"""`WebhookSender` against a real HTTP receiver on loopback: events fan out to subscribed
endpoints (their key's, or any key's of their organisation), deliveries are signed, retried with
backoff and given up after `max_attempts`, redirects are checked like the first address, and only
the lease holder sends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import orjson
import pytest
from sqlalchemy import select

from gpucloud import outbox
from gpucloud.accounts.orgs import OrgService
from gpucloud.db import Database
from gpucloud.db.models import WebhookDelivery
from gpucloud.keycache import LocalKeyChanges
from gpucloud.keys import KeyService, NewKey
from gpucloud.queue.memory import MemoryJobQueue
from gpucloud.settings import WebhookSettings
from gpucloud.webhooks import signing
from gpucloud.webhooks.sender import WebhookSender
from gpucloud.webhooks.store import NewEndpoint, WebhookStore
from tests.webhook_support import Receiver, receiver


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


@pytest.fixture
async def queue() -> AsyncIterator[MemoryJobQueue]:
    memory = MemoryJobQueue()
    yield memory
    await memory.close()


def _settings(**fields: object) -> WebhookSettings:
    values: dict[str, object] = {"allow_networks": ["127.0.0.1/32"], "every_s": 0.05, "backoff_s": 0.05}
    return WebhookSettings.model_validate(values | fields)


async def _endpoint(db: Database, url: str, events: list[str]) -> tuple[str, str, str]:
    key, _ = await KeyService(db).create(NewKey(name="k"))
    row, secret = await WebhookStore(db).create(NewEndpoint(key.id, url, events))
    return key.id, row.id, secret


async def _event(db: Database, key_id: str, event_type: str = "batch.completed") -> str:
    async with db.transaction() as connection:
        return await outbox.record(connection, key_id, event_type, {"id": "batch_1"})


async def _deliveries(db: Database) -> list[WebhookDelivery]:
    async with db.session() as session:
        return list((await session.execute(select(WebhookDelivery).order_by(WebhookDelivery.id))).scalars())


async def _until_settled(db: Database, count: int = 1) -> list[WebhookDelivery]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = await _deliveries(db)
        if len(rows) >= count and all(r.status != "pending" for r in rows):
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(
        f"deliveries never settled: {[(r.status, r.attempts) for r in await _deliveries(db)]}"
    )


async def _running(db: Database, queue: MemoryJobQueue, settings: WebhookSettings) -> WebhookSender:
    sender = WebhookSender(db, queue, "gw-1", settings)
    await sender.start()
    return sender


async def test_an_event_is_delivered_once_signed_with_the_endpoints_secret(
    db: Database, queue: MemoryJobQueue, hooks: Receiver
) -> None:
    key_id, endpoint_id, secret = await _endpoint(db, hooks.url("/ok"), ["batch.completed"])
    event_id = await _event(db, key_id)
    sender = await _running(db, queue, _settings())
    (delivery,) = await _until_settled(db)
    await sender.close()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
    assert delivery.endpoint_id == endpoint_id
    (request,) = hooks.at("/ok")
    assert request.headers["webhook-id"] == event_id
    expected = signing.signature(secret, event_id, int(request.headers["webhook-timestamp"]), request.body)
    assert request.headers["webhook-signature"] == expected
    body = orjson.loads(request.body)
    assert (body["type"], body["data"]) == ("batch.completed", {"id": "batch_1"})


async def test_a_failing_receiver_is_retried_until_it_answers(
    db: Database, queue: MemoryJobQueue, hooks: Receiver
) -> None:
    hooks.failures["/flaky"] = 2
    key_id, _, _ = await _endpoint(db, hooks.url("/flaky"), ["batch.completed"])
    event_id = await _event(db, key_id)
    sender = await _running(db, queue, _settings())
    (delivery,) = await _until_settled(db)
    await sender.close()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("succeeded", 3, None)
    assert {r.headers["webhook-id"] for r in hooks.at("/flaky")} == {event_id}  # the same id each try


async def test_a_delivery_is_given_up_after_max_attempts(
    db: Database, queue: MemoryJobQueue, hooks: Receiver
) -> None:
    hooks.failures["/down"] = 100
    key_id, _, _ = await _endpoint(db, hooks.url("/down"), ["batch.completed"])
    await _event(db, key_id)
    sender = await _running(db, queue, _settings(max_attempts=2))
    (delivery,) = await _until_settled(db)
    await sender.close()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 2, 503)
    assert delivery.last_error == "the receiver answered 503"
    assert delivery.next_attempt_at is None
    assert len(hooks.at("/down")) == 2


async def test_a_redirect_to_a_private_address_is_not_followed(
    db: Database, queue: MemoryJobQueue, hooks: Receiver
) -> None:
    hooks.redirects["/moved"] = "http://10.1.2.3/internal"
    key_id, _, _ = await _endpoint(db, hooks.url("/moved"), ["batch.completed"])
    await _event(db, key_id)
    sender = await _running(db, queue, _settings(max_attempts=1))
    (delivery,) = await _until_settled(db)
    await sender.close()
    assert delivery.status == "failed"
    assert delivery.last_status_code is None
    assert (
        delivery.last_error == "url leads to a loopback, private, link-local or otherwise non-public address."
    )
    assert len(hooks.at("/moved")) == 1  # the first hop was sent; the redirect was refused


async def test_unsubscribed_types_later_endpoints_and_other_keys_get_nothing(
    db: Database, queue: MemoryJobQueue, hooks: Receiver
) -> None:
    key_id, _, _ = await _endpoint(db, hooks.url("/jobs"), ["job.failed"])
    await _event(db, key_id, "batch.completed")
    other_key, _, _ = await _endpoint(db, hooks.url("/other"), ["batch.completed"])
    late_event = await _event(db, other_key)
    await WebhookStore(db).create(NewEndpoint(other_key, hooks.url("/late"), ["batch.completed"]))
    sender = await _running(db, queue, _settings())
    rows = await _until_settled(db)
    await sender.close()
    assert [(r.event_id, r.status) for r in rows] == [(late_event, "succeeded")]
    assert hooks.at("/jobs") == []
    assert hooks.at("/late") == []


async def test_only_the_lease_holder_sends(db: Database, queue: MemoryJobQueue, hooks: Receiver) -> None:
    key_id, _, _ = await _endpoint(db, hooks.url("/ok"), ["batch.completed"])
    await _event(db, key_id)
    assert await queue.lead("webhook-sender", "gw-other", 3600)
    sender = WebhookSender(db, queue, "gw-1", _settings())
    await sender.start()
    await sender.step()
    await sender.close()
    assert await _deliveries(db) == []  # not even fanned out
    assert hooks.received == []


async def test_an_organisations_endpoint_gets_the_events_of_all_its_keys_only(
    db: Database, queue: MemoryJobQueue, hooks: Receiver
) -> None:
    orgs, keys = OrgService(db, LocalKeyChanges()), KeyService(db)
    team, rivals = (await orgs.create("team")).id, (await orgs.create("rivals")).id
    maker, _ = await keys.create(NewKey(name="maker", org_id=team))
    colleague, _ = await keys.create(NewKey(name="colleague", org_id=team))
    outsider, _ = await keys.create(NewKey(name="outsider", org_id=rivals))
    unorganised, _ = await keys.create(NewKey(name="alone"))
    store = WebhookStore(db)
    shared, _ = await store.create(
        NewEndpoint(maker.id, hooks.url("/team"), ["batch.completed"], org_id=team)
    )
    await store.create(NewEndpoint(unorganised.id, hooks.url("/alone"), ["batch.completed"]))
    await keys.revoke(colleague.id)  # its work that ends after is still the organisation's
    ours = {await _event(db, maker.id), await _event(db, colleague.id)}
    theirs = await _event(db, outsider.id)
    alone = await _event(db, unorganised.id)
    sender = await _running(db, queue, _settings())
    rows = await _until_settled(db, 3)
    await sender.close()
    assert {(r.endpoint_id, r.event_id) for r in rows if r.endpoint_id == shared.id} == {
        (shared.id, event_id) for event_id in ours
    }
    assert {r.headers["webhook-id"] for r in hooks.at("/team")} == ours
    assert [r.headers["webhook-id"] for r in hooks.at("/alone")] == [alone]
    assert theirs not in {r.event_id for r in rows}
