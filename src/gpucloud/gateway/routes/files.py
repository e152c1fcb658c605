"""The Files API (`/v1/files`): upload (multipart, with `purpose`), list, retrieve, content,
delete. A key sees only its own files; another key's file is a 404. The upload is streamed into
object storage; its size is bounded by `files.max_bytes`, and a `purpose=batch` file is checked line
by line (a 400 naming the first bad line)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.datastructures import UploadFile
from starlette.responses import Response, StreamingResponse

from gpucloud.errors import InvalidRequest, NotFound
from gpucloud.gateway.deps import PrincipalDep, get_principal
from gpucloud.gateway.offline import Offline, get_offline
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.views.base import documented
from gpucloud.gateway.views.offline import FileDeleted, FileList, FileObject, file_list, file_view
from gpucloud.storage.protocol import ObjectMissing

router = APIRouter(tags=["files"], dependencies=[Depends(get_principal)])
OfflineDep = Annotated[Offline, Depends(get_offline)]
_CHUNK = 1 << 20


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(_CHUNK):
        yield chunk


# The form is read by hand (streamed to storage, not parsed into memory), so its shape is
# declared here for the OpenAPI schema and the dashboard's generated client.
_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file", "purpose"],
                "properties": {"file": {"type": "string", "format": "binary"}, "purpose": {"type": "string"}},
            }
        }
    },
}


@router.post("/v1/files", responses=documented(FileObject), openapi_extra={"requestBody": _UPLOAD_BODY})
async def create_file(request: Request, principal: PrincipalDep, offline: OfflineDep) -> Response:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidRequest("Upload a file as multipart/form-data with 'file' and 'purpose'.", param="file")
    async with request.form(max_files=1, max_fields=8) as form:
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(purpose, str) or not purpose:
            raise InvalidRequest("purpose is required.", param="purpose")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("file is required (a file part of the form).", param="file")
        row = await offline.files.upload(principal, purpose, upload.filename or "upload", _chunks(upload))
    return json_response(file_view(row))


@router.get("/v1/files", responses=documented(FileList))
async def list_files(
    principal: PrincipalDep,
    offline: OfflineDep,
    purpose: str | None = None,
    limit: int = Query(10000, ge=1, le=10000),
    after: str | None = None,
    order: Literal["asc", "desc"] = "desc",
) -> Response:
    rows = await offline.files.list(
        principal, purpose=purpose, limit=limit + 1, after=after, ascending=order == "asc"
    )
    return json_response(file_list(rows, limit))


@router.get("/v1/files/{file_id}", responses=documented(FileObject))
async def retrieve_file(file_id: str, principal: PrincipalDep, offline: OfflineDep) -> Response:
    return json_response(file_view(await offline.files.get(file_id, principal)))


@router.get("/v1/files/{file_id}/content")
async def file_content(file_id: str, principal: PrincipalDep, offline: OfflineDep) -> Response:
    row = await offline.files.get(file_id, principal)
    stream = await _opened(offline.files.content(row), file_id)
    media = "application/jsonl" if row.filename.endswith(".jsonl") else "application/octet-stream"
    return StreamingResponse(
        stream,
        media_type=media,
        headers={"content-length": str(row.bytes), "content-disposition": f'attachment; filename="{row.id}"'},
    )


async def _opened(chunks: AsyncIterator[bytes], file_id: str) -> AsyncIterator[bytes]:
    """The stream with its first chunk read already: a missing object is a 404, not a broken 200."""
    try:
        first = await anext(chunks, b"")
    except ObjectMissing:
        raise NotFound(f"The content of file {file_id} is no longer stored.", param="file_id") from None

    async def rest() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    return rest()


@router.delete("/v1/files/{file_id}", responses=documented(FileDeleted))
async def delete_file(file_id: str, principal: PrincipalDep, offline: OfflineDep) -> Response:
    row = await offline.files.delete(file_id, principal)
    return json_response(FileDeleted(id=row.id, object="file", deleted=True))
