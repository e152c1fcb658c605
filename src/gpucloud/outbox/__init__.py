"""The transactional outbox: events written in the same transaction as the change they announce,
so an event exists if and only if its change committed. The webhook dispatcher turns each event
into deliveries after the fact (`gpucloud.webhooks`); nothing is sent from inside a transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from gpucloud.db.models import OutboxEvent, utcnow

EVENT_TYPES = (
    "batch.completed",
    "batch.failed",
    "batch.expired",
    "batch.cancelled",
    "job.completed",
    "job.failed",
)


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


async def record(connection: AsyncConnection, key_id: str, event_type: str, data: dict[str, Any]) -> str:
    """Add an event to the caller's open transaction; its id (the deliveries' `webhook-id`)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    event_id = new_event_id()
    await connection.execute(
        insert(OutboxEvent),
        {"id": event_id, "key_id": key_id, "type": event_type, "data": data, "created_at": utcnow()},
    )
    return event_id
