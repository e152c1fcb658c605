"""`FileService`: create, find, list, read and delete files; metadata in the `files` table, bytes in
the object store under `files/{id}`.

An upload is streamed to the store while it is checked (size, and for `purpose=batch` every line);
the row is written only once the bytes are stored, so a listed file always has its content. A
refused or broken upload deletes what it stored.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from sqlalchemy import delete, insert, select

from gpucloud.db import Database
from gpucloud.db.models import StoredFile, utcnow
from gpucloud.errors import InvalidRequest, NotFound
from gpucloud.files.jsonl import BatchRequestLine, LineChecker
from gpucloud.keys import Principal
from gpucloud.settings import FilesSettings
from gpucloud.storage import ObjectStore

# What a client may upload for; `batch_output` files are written by batches only.
UPLOAD_PURPOSES = ("batch", "user_data", "assistants", "fine-tune", "vision", "evals")


def new_file_id() -> str:
    return f"file-{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True, slots=True)
class NewFile:
    key_id: str
    purpose: str
    filename: str
    id: str = ""


class FileService:
    def __init__(self, db: Database, store: ObjectStore, settings: FilesSettings) -> None:
        self._db = db
        self._store = store
        self._settings = settings

    async def upload(
        self, principal: Principal, purpose: str, filename: str, chunks: AsyncIterable[bytes]
    ) -> StoredFile:
        """A client's upload, checked as it streams in; InvalidRequest naming the problem."""
        if purpose not in UPLOAD_PURPOSES:
            raise InvalidRequest(f"purpose must be one of {', '.join(UPLOAD_PURPOSES)}.", param="purpose")
        checker = LineChecker(self._settings.max_batch_lines) if purpose == "batch" else None
        new = NewFile(key_id=principal.key_id, purpose=purpose, filename=filename[:255] or "upload")
        return await self.write(new, self._checked(chunks, checker), checker)

    async def _checked(
        self, chunks: AsyncIterable[bytes], checker: LineChecker | None
    ) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > self._settings.max_bytes:
                raise InvalidRequest(
                    f"The file is larger than {self._settings.max_bytes} bytes.",
                    param="file",
                    code="file_too_large",
                )
            if checker is not None:
                checker.feed(chunk)
            yield chunk

    async def write(
        self, new: NewFile, chunks: AsyncIterable[bytes], checker: LineChecker | None = None
    ) -> StoredFile:
        """Store the bytes, then the row. With `new.id` set (a batch's output) writing again
        replaces the bytes and keeps the one row, so a finalizer that crashed may simply redo it."""
        file_id = new.id or new_file_id()
        key = f"files/{file_id}"
        try:
            size = await self._store.put(key, chunks)
            lines = checker.finish() if checker is not None else None
        except BaseException:
            await self._store.delete(key)
            raise
        row = StoredFile(
            id=file_id,
            key_id=new.key_id,
            purpose=new.purpose,
            filename=new.filename,
            bytes=size,
            lines=lines,
            storage_key=key,
            created_at=utcnow(),
        )
        async with self._db.transaction() as connection:
            exists = await connection.execute(select(StoredFile.id).where(StoredFile.id == file_id))
            if exists.first() is None:
                await connection.execute(insert(StoredFile), row.column_values())
        return row

    async def get(self, file_id: str, principal: Principal) -> StoredFile:
        """The file if `principal` owns it (or is an admin); NotFound otherwise."""
        return await self.owned(file_id, None if principal.is_admin else principal.key_id)

    async def owned(self, file_id: str, key_id: str | None, param: str = "file_id") -> StoredFile:
        """The file if `key_id` owns it (None: whoever does); NotFound otherwise."""
        async with self._db.session() as session:
            row = await session.get(StoredFile, file_id)
        if row is None or (key_id is not None and row.key_id != key_id):
            raise NotFound(f"No such File object: {file_id}", param=param)
        return row

    async def requests(self, row: StoredFile) -> list[BatchRequestLine]:
        """The requests of a batch input file, checked again (the stored bytes are read back)."""
        checker = LineChecker(self._settings.max_batch_lines, keep=True)
        async for chunk in self._store.read(row.storage_key):
            checker.feed(chunk)
        checker.finish()
        return checker.kept or []

    async def list(
        self, principal: Principal, *, purpose: str | None, limit: int, after: str | None, ascending: bool
    ) -> list[StoredFile]:
        query = select(StoredFile).where(StoredFile.key_id == principal.key_id)
        if purpose is not None:
            query = query.where(StoredFile.purpose == purpose)
        order = (StoredFile.created_at, StoredFile.id)
        if after is not None:
            cursor = await self.get(after, principal)
            later = (StoredFile.created_at > cursor.created_at) | (
                (StoredFile.created_at == cursor.created_at) & (StoredFile.id > cursor.id)
            )
            earlier = (StoredFile.created_at < cursor.created_at) | (
                (StoredFile.created_at == cursor.created_at) & (StoredFile.id < cursor.id)
            )
            query = query.where(later if ascending else earlier)
        query = query.order_by(*(order if ascending else (c.desc() for c in order))).limit(limit)
        async with self._db.session() as session:
            return list((await session.execute(query)).scalars())

    def content(self, row: StoredFile) -> AsyncIterator[bytes]:
        return self._store.read(row.storage_key)

    async def delete(self, file_id: str, principal: Principal) -> StoredFile:
        row = await self.get(file_id, principal)
        async with self._db.transaction() as connection:
            await connection.execute(delete(StoredFile).where(StoredFile.id == row.id))
        await self._store.delete(row.storage_key)  # after the row: a crash leaves bytes, never a dangling row
        return row
