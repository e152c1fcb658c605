"""`WebhookSender`: turns outbox events into deliveries and sends them. Every gateway runs one; only
the holder of the `webhook-sender` lease acts, so an event is fanned out and sent by one process.

A round: (1) each event not yet dispatched becomes one delivery per endpoint that subscribes to
its type and is its key's own or its key's organisation's (rows and the event's `dispatched_at` in
one transaction); the organisation is read from the key here rather than written on every event
(keys never move between organisations, so it is the same answer, and no writer has to know); (2) due
deliveries are sent, signed (Standard Webhooks), to the address the SSRF guard checked, redirects
followed only after the same check. A 2xx ends a delivery; anything else schedules the next try
after `backoff_s · 2^(attempts-1)` (capped at two hours) until `max_attempts` are spent (about a day
with the defaults). A crash between sending and recording sends again: receivers deduplicate by
`webhook-id`, which the event's id keeps the same across tries.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urljoin

import httpx
import orjson
from sqlalchemy import and_, insert, or_, select, update

from gpucloud.db import ApiKey, Database
from gpucloud.db.models import DEFAULT_ORG_ID, OutboxEvent, WebhookDelivery, WebhookEndpoint, utcnow
from gpucloud.db.models.offline import DeliveryStatus
from gpucloud.periodic import periodic
from gpucloud.queue.protocol import JobQueue
from gpucloud.settings import WebhookSettings
from gpucloud.webhooks import signing
from gpucloud.webhooks.job_events import JobEvents
from gpucloud.webhooks.ssrf import Resolver, Target, UnsafeTarget, check_url, system_resolver

log = logging.getLogger(__name__)
_BATCH = 100
_MAX_REDIRECTS = 3
_MAX_DELAY_S = 7200.0


class WebhookSender:
    def __init__(
        self,
        db: Database,
        queue: JobQueue,
        holder: str,
        settings: WebhookSettings,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._db, self._queue, self._holder = db, queue, holder
        self._settings = settings
        self._resolver = resolver
        self._jobs = JobEvents(db)
        self._networks = settings.networks()
        self._http: httpx.AsyncClient | None = None
        self._loop = periodic("webhook sender", self.step, settings.every_s)

    async def start(self) -> None:
        self._http = httpx.AsyncClient(
            timeout=self._settings.timeout_s, follow_redirects=False, trust_env=False
        )
        self._loop.start()

    async def close(self) -> None:
        await self._loop.close()
        if self._http is not None:
            await self._http.aclose()

    async def step(self) -> None:
        ttl = max(self._settings.every_s * 3, 5.0)
        if not await self._queue.lead("webhook-sender", self._holder, ttl):
            self._jobs.reset()
            return
        await self._jobs.record()
        await self._dispatch()
        due = await self._due()
        await asyncio.gather(*(self._deliver(*item) for item in due))

    async def _dispatch(self) -> None:
        """Fan new events out into deliveries, once each (the event is marked in the same transaction)."""
        async with self._db.transaction() as connection:
            events = (
                await connection.execute(
                    select(
                        OutboxEvent.id,
                        OutboxEvent.key_id,
                        ApiKey.org_id,
                        OutboxEvent.type,
                        OutboxEvent.created_at,
                    )
                    .join(ApiKey, ApiKey.id == OutboxEvent.key_id)
                    .where(OutboxEvent.dispatched_at.is_(None))
                    .order_by(OutboxEvent.created_at)
                    .limit(_BATCH)
                )
            ).all()
            if not events:
                return
            endpoints = (
                await connection.execute(
                    select(
                        WebhookEndpoint.id,
                        WebhookEndpoint.key_id,
                        WebhookEndpoint.org_id,
                        WebhookEndpoint.events,
                        WebhookEndpoint.created_at,
                    ).where(
                        or_(
                            and_(
                                WebhookEndpoint.org_id.is_(None),
                                WebhookEndpoint.key_id.in_({e.key_id for e in events}),
                            ),
                            WebhookEndpoint.org_id.in_({e.org_id for e in events} - {DEFAULT_ORG_ID}),
                        ),
                        WebhookEndpoint.disabled_at.is_(None),
                    )
                )
            ).all()
            rows = _deliveries(events, endpoints)
            if rows:
                await connection.execute(insert(WebhookDelivery), rows)
            await connection.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id.in_([e.id for e in events]))
                .values(dispatched_at=utcnow())
            )

    async def _due(self) -> list[tuple[WebhookDelivery, WebhookEndpoint, OutboxEvent]]:
        query = (
            select(WebhookDelivery, WebhookEndpoint, OutboxEvent)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING, WebhookDelivery.next_attempt_at <= utcnow()
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(_BATCH)
        )
        async with self._db.session() as session:
            return [(d, e, o) for d, e, o in (await session.execute(query)).all()]

    async def _deliver(
        self, delivery: WebhookDelivery, endpoint: WebhookEndpoint, event: OutboxEvent
    ) -> None:
        body = orjson.dumps(
            {"type": event.type, "timestamp": event.created_at.isoformat(), "data": event.data}
        )
        status: int | None = None
        try:
            status = await self._send(endpoint, event.id, body)
            error = None if 200 <= status < 300 else f"the receiver answered {status}"
        except UnsafeTarget as exc:
            error = exc.message
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: the request failed"
        await self._record(delivery, status, error)

    async def _send(self, endpoint: WebhookEndpoint, message_id: str, body: bytes) -> int:
        """POST the signed body; follow a redirect only after checking where it leads."""
        assert self._http is not None
        url = endpoint.url
        for _ in range(_MAX_REDIRECTS + 1):
            target = await check_url(
                url,
                allow_private=self._settings.allow_private,
                networks=self._networks,
                resolver=self._resolver,
            )
            headers = signing.headers(endpoint.secret, message_id, int(time.time()), body)
            response = await self._http.send(_pinned(target, headers, body))
            await response.aclose()
            location = response.headers.get("location")
            if not (response.is_redirect and location):
                return response.status_code
            url = urljoin(url, location)
        raise UnsafeTarget("too many redirects", param="url")

    async def _record(self, delivery: WebhookDelivery, status: int | None, error: str | None) -> None:
        attempts = delivery.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "last_status_code": status, "last_error": error}
        if error is None:
            values.update(status=DeliveryStatus.SUCCEEDED, delivered_at=utcnow(), next_attempt_at=None)
        elif attempts >= self._settings.max_attempts:
            values.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
        else:
            delay = min(_MAX_DELAY_S, self._settings.backoff_s * 2 ** (attempts - 1))
            values.update(next_attempt_at=utcnow() + timedelta(seconds=delay))
        async with self._db.transaction() as connection:
            await connection.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery.id, WebhookDelivery.attempts == delivery.attempts)
                .values(**values)
            )


def _deliveries(events: Sequence[Any], endpoints: Sequence[Any]) -> list[dict[str, Any]]:
    """One pending delivery per (event, endpoint) of the event's key or its organisation that
    subscribes to the event's type and existed when it happened."""
    now = utcnow()
    return [
        {
            "id": f"whd_{uuid.uuid4().hex[:24]}",
            "endpoint_id": endpoint.id,
            "event_id": event.id,
            "status": DeliveryStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for event in events
        for endpoint in endpoints
        if _owns(endpoint, event)
        and event.type in endpoint.events
        and endpoint.created_at <= event.created_at
    ]


def _owns(endpoint: Any, event: Any) -> bool:
    """Whether the event is the endpoint's: its key's (an endpoint of no organisation) or of a key
    of its organisation."""
    if endpoint.org_id is None:
        return bool(endpoint.key_id == event.key_id)
    return bool(endpoint.org_id == event.org_id)


def _pinned(target: Target, headers: dict[str, str], body: bytes) -> httpx.Request:
    """The request to the checked address, with the host's name in Host and in TLS (SNI and the
    certificate check), so the connection goes where the check said and nowhere else."""
    url = httpx.URL(target.url).copy_with(host=target.address, port=target.port)
    default = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default else f"{target.host}:{target.port}"
    return httpx.Request(
        "POST",
        url,
        headers={**headers, "host": host_header},
        content=body,
        extensions={"sni_hostname": target.host},
    )
