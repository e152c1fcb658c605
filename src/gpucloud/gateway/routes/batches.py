"""The Batch API (`/v1/batches`): create from an uploaded `purpose=batch` file, retrieve, list,
cancel. A key sees only its own batches. The work itself is done by the batch feeder (see
`gpucloud.batches.feeder`); these routes only record what the client asked."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from gpucloud.batches import BatchStore, NewBatch
from gpucloud.batches.states import WINDOWS
from gpucloud.db.models import Batch
from gpucloud.errors import InvalidRequest
from gpucloud.gateway.deps import PrincipalDep, RuntimeDep, get_principal
from gpucloud.gateway.offline import Offline, get_offline
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.views.base import documented
from gpucloud.gateway.views.offline import BatchList, BatchObject, batch_list, batch_view

router = APIRouter(tags=["batches"], dependencies=[Depends(get_principal)])
OfflineDep = Annotated[Offline, Depends(get_offline)]


class CreateBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_file_id: str = Field(min_length=1, max_length=40)
    endpoint: Literal["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"]
    completion_window: str
    metadata: dict[str, str] | None = Field(None, max_length=16)


async def _view(batches: BatchStore, row: Batch) -> BatchObject:
    counts = await batches.counts([row.id])
    return batch_view(row, counts[row.id])


@router.post("/v1/batches", responses=documented(BatchObject))
async def create_batch(
    body: CreateBatch, principal: PrincipalDep, offline: OfflineDep, runtime: RuntimeDep
) -> Response:
    if body.completion_window not in WINDOWS:
        raise InvalidRequest(
            f"completion_window must be one of {', '.join(WINDOWS)}.", param="completion_window"
        )
    source = await offline.files.owned(body.input_file_id, principal.key_id, "input_file_id")
    if source.purpose != "batch":
        raise InvalidRequest("The input file must be uploaded with purpose 'batch'.", param="input_file_id")
    row = await offline.batches.create(
        NewBatch(
            key_id=principal.key_id,
            endpoint=body.endpoint,
            input_file_id=source.id,
            completion_window=body.completion_window,
            window_s=runtime.settings.batches.window_s,
            metadata=body.metadata,
        )
    )
    return json_response(await _view(offline.batches, row))


@router.get("/v1/batches", responses=documented(BatchList))
async def list_batches(
    principal: PrincipalDep,
    offline: OfflineDep,
    limit: int = Query(20, ge=1, le=100),
    after: str | None = None,
) -> Response:
    rows = await offline.batches.page(principal, limit=limit + 1, after=after)
    counts = await offline.batches.counts([r.id for r in rows[:limit]])
    return json_response(batch_list(rows, counts, limit))


@router.get("/v1/batches/{batch_id}", responses=documented(BatchObject))
async def retrieve_batch(batch_id: str, principal: PrincipalDep, offline: OfflineDep) -> Response:
    return json_response(await _view(offline.batches, await offline.batches.get(batch_id, principal)))


@router.post("/v1/batches/{batch_id}/cancel", responses=documented(BatchObject))
async def cancel_batch(batch_id: str, principal: PrincipalDep, offline: OfflineDep) -> Response:
    row = await offline.batches.request_cancel(await offline.batches.get(batch_id, principal))
    return json_response(await _view(offline.batches, row))
