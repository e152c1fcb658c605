"""`WebhookStore`: webhook endpoints and their delivery log. Deliveries are made from outbox events
by the sender (`gpucloud.webhooks.sender`); this module only reads and writes rows.

Who owns an endpoint: a key of an organisation makes endpoints for the organisation (`org_id`),
which every key of it sees and whose events are those of all its keys; a key of the default
organisation — which holds the keys made without one, i.e. of no organisation — makes endpoints
of its own (`org_id` None), seen by it alone and told of its events alone, as before
organisations existed. To any other key an endpoint does not exist (404). Who of an
organisation's keys may change its endpoints is the routes' business (`gateway.routes.webhooks`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, delete, insert, or_, select, update

from gpucloud.db import Database
from gpucloud.db.models import DEFAULT_ORG_ID, OutboxEvent, WebhookDelivery, WebhookEndpoint, utcnow
from gpucloud.db.models.offline import DeliveryStatus
from gpucloud.errors import NotFound
from gpucloud.keys import Principal
from gpucloud.webhooks.signing import new_secret


def shared_org(principal: Principal) -> str | None:
    """The organisation whose endpoints the key shares; None when the endpoints are the key's own
    (a key of the default organisation, or a caller without one)."""
    org_id = principal.org_id
    return None if org_id is None or org_id == DEFAULT_ORG_ID else org_id


def visible(endpoint: WebhookEndpoint, principal: Principal) -> bool:
    """Whether the caller sees the endpoint (see the module docstring)."""
    if endpoint.org_id is None:
        return endpoint.key_id == principal.key_id
    return endpoint.org_id == shared_org(principal)


def _visible_to(principal: Principal) -> ColumnElement[bool]:
    """`visible` as a condition. What a key of an organisation made before endpoints were
    organisations' (migration 0013) stays its own: it alone sees it, and it is sent its events."""
    own = and_(WebhookEndpoint.org_id.is_(None), WebhookEndpoint.key_id == principal.key_id)
    org_id = shared_org(principal)
    return own if org_id is None else or_(own, WebhookEndpoint.org_id == org_id)


@dataclass(frozen=True, slots=True)
class NewEndpoint:
    key_id: str  # the key that makes it
    url: str
    events: Sequence[str]
    org_id: str | None = None  # the organisation that owns it; None: the key alone


class WebhookStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, new: NewEndpoint) -> tuple[WebhookEndpoint, str]:
        """The endpoint and its signing secret (kept to sign; shown to the client once)."""
        secret = new_secret()
        row = WebhookEndpoint(
            id=f"wh_{uuid.uuid4().hex[:24]}",
            key_id=new.key_id,
            org_id=new.org_id,
            url=new.url,
            events=list(new.events),
            secret=secret,
            created_at=utcnow(),
        )
        async with self._db.transaction() as connection:
            await connection.execute(insert(WebhookEndpoint), row.column_values())
        return row, secret

    async def page(self, principal: Principal) -> list[WebhookEndpoint]:
        query = (
            select(WebhookEndpoint)
            .where(_visible_to(principal), WebhookEndpoint.disabled_at.is_(None))
            .order_by(WebhookEndpoint.created_at)
        )
        async with self._db.session() as session:
            return list((await session.execute(query)).scalars())

    async def get(self, endpoint_id: str, principal: Principal) -> WebhookEndpoint:
        async with self._db.session() as session:
            row = await session.get(WebhookEndpoint, endpoint_id)
        if row is None or row.disabled_at is not None or not visible(row, principal):
            raise NotFound(f"No webhook endpoint with id {endpoint_id!r}.", param="webhook_id")
        return row

    async def remove(self, endpoint: WebhookEndpoint) -> None:
        """Stop sending to it; its log stays readable to the operator in the database."""
        async with self._db.transaction() as connection:
            await connection.execute(
                update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint.id).values(disabled_at=utcnow())
            )
            await connection.execute(
                delete(WebhookDelivery).where(
                    WebhookDelivery.endpoint_id == endpoint.id,
                    WebhookDelivery.status == DeliveryStatus.PENDING,
                )
            )

    async def deliveries(self, endpoint: WebhookEndpoint, limit: int) -> list[tuple[WebhookDelivery, str]]:
        """The newest deliveries to the endpoint, each with its event's type."""
        query = (
            select(WebhookDelivery, OutboxEvent.type)
            .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.endpoint_id == endpoint.id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(limit)
        )
        async with self._db.session() as session:
            rows = (await session.execute(query)).all()
        return [(delivery, str(event_type)) for delivery, event_type in rows]

    async def redeliver(self, endpoint: WebhookEndpoint, delivery_id: str) -> tuple[WebhookDelivery, str]:
        """Send a delivery again now, whatever became of it (its attempts keep counting)."""
        async with self._db.transaction() as connection:
            changed = await connection.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint.id)
                .values(status=DeliveryStatus.PENDING, next_attempt_at=utcnow())
            )
        if not changed.rowcount:
            raise NotFound(f"No delivery with id {delivery_id!r} for this endpoint.", param="delivery_id")
        query = (
            select(WebhookDelivery, OutboxEvent.type)
            .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.id == delivery_id)
        )
        async with self._db.session() as session:
            delivery, event_type = (await session.execute(query)).one()
        return delivery, str(event_type)
