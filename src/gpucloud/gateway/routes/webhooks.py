"""Webhook endpoints (`/api/webhooks`): a key registers URLs for its events, gets each signing
secret once, reads the delivery log and asks for a redelivery. The URL passes the SSRF guard here
and again at every delivery."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from gpucloud.errors import InvalidRequest
from gpucloud.gateway.deps import PrincipalDep, RuntimeDep, get_principal
from gpucloud.gateway.offline import Offline, get_offline
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.views.base import documented
from gpucloud.gateway.views.offline import (
    WebhookDeliveryList,
    WebhookDeliveryView,
    WebhookEndpointList,
    WebhookEndpointView,
    delivery_view,
    endpoint_view,
)
from gpucloud.outbox import EVENT_TYPES
from gpucloud.webhooks import NewEndpoint, check_url

router = APIRouter(tags=["webhooks"], dependencies=[Depends(get_principal)])
OfflineDep = Annotated[Offline, Depends(get_offline)]


class CreateWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048)
    events: list[str] = Field(min_length=1, max_length=len(EVENT_TYPES))


@router.post("/api/webhooks", status_code=201, responses=documented(WebhookEndpointView, 201))
async def create_webhook(
    body: CreateWebhook, principal: PrincipalDep, offline: OfflineDep, runtime: RuntimeDep
) -> Response:
    unknown = [e for e in body.events if e not in EVENT_TYPES]
    if unknown:
        raise InvalidRequest(
            f"Unknown event {unknown[0]!r}; events are {', '.join(EVENT_TYPES)}.", param="events"
        )
    guard = runtime.settings.webhooks
    await check_url(body.url, allow_private=guard.allow_private, networks=guard.networks())
    row, secret = await offline.webhooks.create(
        NewEndpoint(principal.key_id, body.url, sorted(set(body.events)))
    )
    return json_response(endpoint_view(row, secret), status_code=201)


@router.get("/api/webhooks", responses=documented(WebhookEndpointList))
async def list_webhooks(principal: PrincipalDep, offline: OfflineDep) -> Response:
    rows = await offline.webhooks.page(principal)
    return json_response(WebhookEndpointList(object="list", data=[endpoint_view(r) for r in rows]))


@router.delete("/api/webhooks/{webhook_id}", responses=documented(WebhookEndpointView))
async def delete_webhook(webhook_id: str, principal: PrincipalDep, offline: OfflineDep) -> Response:
    row = await offline.webhooks.get(webhook_id, principal)
    await offline.webhooks.remove(row)
    return json_response(endpoint_view(row))


@router.get("/api/webhooks/{webhook_id}/deliveries", responses=documented(WebhookDeliveryList))
async def list_deliveries(
    webhook_id: str, principal: PrincipalDep, offline: OfflineDep, limit: int = Query(50, ge=1, le=500)
) -> Response:
    row = await offline.webhooks.get(webhook_id, principal)
    data = [delivery_view(d, event_type) for d, event_type in await offline.webhooks.deliveries(row, limit)]
    return json_response(WebhookDeliveryList(object="list", data=data))


@router.post(
    "/api/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    responses=documented(WebhookDeliveryView, 202),
)
async def redeliver(
    webhook_id: str, delivery_id: str, principal: PrincipalDep, offline: OfflineDep
) -> Response:
    row = await offline.webhooks.get(webhook_id, principal)
    return json_response(delivery_view(*await offline.webhooks.redeliver(row, delivery_id)), status_code=202)
