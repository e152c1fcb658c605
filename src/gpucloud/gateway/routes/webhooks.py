"""Webhook endpoints (`/api/webhooks`): a key registers URLs for its events, gets each signing
secret once, reads the delivery log and asks for a redelivery. The URL passes the SSRF guard here
and again at every delivery.

A key of an organisation registers the organisation's endpoints, told of the events of all its
keys (`gpucloud.webhooks.store`). Every key of the organisation lists them and reads their
deliveries; changing them (create, delete, redeliver) is organisation management, as adding
members is: it takes a key of one of its owners or admins (the member who made the key has that
role now), a key no member owns (made by a platform admin for the organisation: it acts for it,
as every key did before organisations), or a platform admin's key — not a key of a member or
viewer (403). A key of the default organisation manages its own endpoints, as before.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from gpucloud.accounts import Accounts
from gpucloud.accounts.orgs import MANAGERS
from gpucloud.errors import InvalidRequest, PermissionDenied
from gpucloud.gateway.deps import PrincipalDep, RuntimeDep, get_principal
from gpucloud.gateway.offline import Offline, get_offline
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.routes.auth import AccountsDep
from gpucloud.gateway.views.base import documented
from gpucloud.gateway.views.offline import (
    WebhookDeliveryList,
    WebhookDeliveryView,
    WebhookEndpointList,
    WebhookEndpointView,
    delivery_view,
    endpoint_view,
)
from gpucloud.keys import Principal
from gpucloud.outbox import EVENT_TYPES
from gpucloud.runtime import Runtime
from gpucloud.webhooks import NewEndpoint, check_url
from gpucloud.webhooks.store import shared_org

router = APIRouter(tags=["webhooks"], dependencies=[Depends(get_principal)])
OfflineDep = Annotated[Offline, Depends(get_offline)]


class CreateWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048)
    events: list[str] = Field(min_length=1, max_length=len(EVENT_TYPES))


async def _may_change(principal: Principal, org_id: str | None, runtime: Runtime, accounts: Accounts) -> None:
    """PermissionDenied unless the caller may change the endpoints of `org_id` (None: its own)."""
    if not await _can_change(principal, org_id, runtime, accounts):
        raise PermissionDenied(
            "Changing the organisation's webhooks needs a key of one of its owners or admins.",
            code="org_role_required",
        )


async def _can_change(principal: Principal, org_id: str | None, runtime: Runtime, accounts: Accounts) -> bool:
    """See the module docstring."""
    if org_id is None or principal.is_admin:
        return True
    owner = (await runtime.keys.get(principal.key_id)).owner_user_id
    if owner is None:
        return True
    # The member's role now, not when the key was made: a demoted admin's keys lose the right.
    return await accounts.orgs.role_of(org_id, owner) in MANAGERS


def _audited(request: Request, endpoint_id: str, org_id: str | None) -> None:
    """Name the endpoint and its organisation in the audit row (its owners read their org's)."""
    request.scope["state"].update(audit_target=endpoint_id, audit_org=org_id)


@router.post("/api/webhooks", status_code=201, responses=documented(WebhookEndpointView, 201))
async def create_webhook(
    body: CreateWebhook,
    request: Request,
    principal: PrincipalDep,
    offline: OfflineDep,
    runtime: RuntimeDep,
    accounts: AccountsDep,
) -> Response:
    unknown = [e for e in body.events if e not in EVENT_TYPES]
    if unknown:
        raise InvalidRequest(
            f"Unknown event {unknown[0]!r}; events are {', '.join(EVENT_TYPES)}.", param="events"
        )
    org_id = shared_org(principal)
    await _may_change(principal, org_id, runtime, accounts)
    guard = runtime.settings.webhooks
    await check_url(body.url, allow_private=guard.allow_private, networks=guard.networks())
    row, secret = await offline.webhooks.create(
        NewEndpoint(principal.key_id, body.url, sorted(set(body.events)), org_id=org_id)
    )
    _audited(request, row.id, org_id)
    return json_response(endpoint_view(row, secret), status_code=201)


@router.get("/api/webhooks", responses=documented(WebhookEndpointList))
async def list_webhooks(
    principal: PrincipalDep, offline: OfflineDep, runtime: RuntimeDep, accounts: AccountsDep
) -> Response:
    rows = await offline.webhooks.page(principal)
    manage = await _can_change(principal, shared_org(principal), runtime, accounts)
    return json_response(
        WebhookEndpointList(object="list", data=[endpoint_view(r) for r in rows], can_manage=manage)
    )


@router.delete("/api/webhooks/{webhook_id}", responses=documented(WebhookEndpointView))
async def delete_webhook(
    webhook_id: str,
    request: Request,
    principal: PrincipalDep,
    offline: OfflineDep,
    runtime: RuntimeDep,
    accounts: AccountsDep,
) -> Response:
    row = await offline.webhooks.get(webhook_id, principal)
    _audited(request, row.id, row.org_id)
    await _may_change(principal, row.org_id, runtime, accounts)
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
    webhook_id: str,
    delivery_id: str,
    request: Request,
    principal: PrincipalDep,
    offline: OfflineDep,
    runtime: RuntimeDep,
    accounts: AccountsDep,
) -> Response:
    row = await offline.webhooks.get(webhook_id, principal)
    _audited(request, f"{row.id}/{delivery_id}", row.org_id)
    await _may_change(principal, row.org_id, runtime, accounts)
    return json_response(delivery_view(*await offline.webhooks.redeliver(row, delivery_id)), status_code=202)
