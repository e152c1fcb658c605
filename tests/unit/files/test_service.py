"""`FileService` on a real database and `LocalStore`: uploads are checked as they stream and leave
nothing when refused, files are private to their key, and listing pages by a cursor."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from gpucloud.db import Database
from gpucloud.errors import InvalidRequest, NotFound
from gpucloud.files.service import FileService, NewFile
from gpucloud.gateway.views.offline import file_view
from gpucloud.keys import KeyService, NewKey, Principal
from gpucloud.settings import FilesSettings
from gpucloud.storage import LocalStore
from gpucloud.storage.protocol import chunks_of, read_all


async def _principal(db: Database, role: str = "user") -> Principal:
    row, _ = await KeyService(db).create(NewKey(name=role, role=role))
    return Principal.of(row)


def _service(db: Database, tmp_path: Path, **limits: int) -> tuple[FileService, Path]:
    root = tmp_path / "objects"
    return FileService(db, LocalStore(root), FilesSettings(**limits)), root


def _objects(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _batch(*ids: str) -> bytes:
    line = {"method": "POST", "url": "/v1/chat/completions", "body": {"model": "m"}}
    return b"\n".join(orjson.dumps(line | {"custom_id": i}) for i in ids) + b"\n"


async def test_an_upload_is_stored_and_read_back_by_its_owner(db: Database, tmp_path: Path) -> None:
    files, _ = _service(db, tmp_path)
    owner = await _principal(db)
    row = await files.upload(owner, "batch", "in.jsonl", chunks_of(_batch("a", "b"), 5))
    assert (row.bytes, row.lines, row.purpose, row.filename) == (
        len(_batch("a", "b")),
        2,
        "batch",
        "in.jsonl",
    )
    assert b"".join([c async for c in files.content(row)]) == _batch("a", "b")
    assert [r.custom_id for r in await files.requests(await files.get(row.id, owner))] == ["a", "b"]
    view = file_view(row)
    assert (view.id, view.object, view.status) == (row.id, "file", "processed")


async def test_other_keys_cannot_see_a_file_but_an_admin_can(db: Database, tmp_path: Path) -> None:
    files, _ = _service(db, tmp_path)
    owner, other, admin = await _principal(db), await _principal(db), await _principal(db, "admin")
    row = await files.upload(owner, "user_data", "", chunks_of(b"data"))
    assert row.filename == "upload"
    assert row.lines is None
    with pytest.raises(NotFound, match=row.id):
        await files.get(row.id, other)
    with pytest.raises(NotFound):
        await files.delete(row.id, other)
    assert (await files.get(row.id, admin)).id == row.id
    assert (await files.owned(row.id, None)).id == row.id


@pytest.mark.parametrize(
    ("purpose", "data", "code"),
    [
        ("batch", b'{"custom_id": "a"}\n', "invalid_batch_line"),
        ("batch", b"\n\n", "empty_file"),
        ("user_data", b"x" * 101, "file_too_large"),
    ],
)
async def test_a_refused_upload_leaves_no_row_and_no_bytes(
    db: Database, tmp_path: Path, purpose: str, data: bytes, code: str
) -> None:
    files, root = _service(db, tmp_path, max_bytes=100)
    owner = await _principal(db)
    with pytest.raises(InvalidRequest) as refused:
        await files.upload(owner, purpose, "f", chunks_of(data, 3))
    assert refused.value.code == code
    assert _objects(root) == []
    assert await files.list(owner, purpose=None, limit=10, after=None, ascending=True) == []


async def test_an_unknown_purpose_and_too_many_lines_are_refused(db: Database, tmp_path: Path) -> None:
    files, _ = _service(db, tmp_path, max_batch_lines=1)
    owner = await _principal(db)
    with pytest.raises(InvalidRequest) as purpose:
        await files.upload(owner, "batch_output", "f", chunks_of(b"x"))
    assert purpose.value.param == "purpose"
    with pytest.raises(InvalidRequest) as many:
        await files.upload(owner, "batch", "f", chunks_of(_batch("a", "b")))
    assert many.value.code == "too_many_lines"


async def test_writing_a_fixed_id_again_replaces_the_bytes_and_keeps_one_row(
    db: Database, tmp_path: Path
) -> None:
    files, root = _service(db, tmp_path)
    owner = await _principal(db)
    new = NewFile(key_id=owner.key_id, purpose="batch_output", filename="out.jsonl", id="file-fixed")
    await files.write(new, chunks_of(b"first"))
    await files.write(new, chunks_of(b"second"))
    listed = await files.list(owner, purpose="batch_output", limit=10, after=None, ascending=True)
    assert [r.id for r in listed] == ["file-fixed"]
    assert await read_all(LocalStore(root), "files/file-fixed") == b"second"


async def test_listing_pages_both_ways_and_filters_by_purpose(db: Database, tmp_path: Path) -> None:
    files, _ = _service(db, tmp_path)
    owner = await _principal(db)
    ids = [(await files.upload(owner, "user_data", f"{n}", chunks_of(b"x"))).id for n in range(4)]
    await files.upload(owner, "vision", "v", chunks_of(b"x"))
    await files.upload(await _principal(db), "user_data", "theirs", chunks_of(b"x"))

    async def page(limit: int, after: str | None, ascending: bool) -> list[str]:
        rows = await files.list(owner, purpose="user_data", limit=limit, after=after, ascending=ascending)
        return [r.id for r in rows]

    assert await page(2, None, True) == ids[:2]
    assert await page(10, ids[1], True) == ids[2:]
    assert await page(2, None, False) == ids[::-1][:2]
    assert await page(10, ids[2], False) == ids[:2][::-1]
    with pytest.raises(NotFound):
        await page(10, "file-unknown", True)


async def test_deleting_removes_the_row_then_the_bytes(db: Database, tmp_path: Path) -> None:
    files, root = _service(db, tmp_path)
    owner = await _principal(db)
    row = await files.upload(owner, "user_data", "f", chunks_of(b"x"))
    assert _objects(root) == [row.id]
    assert (await files.delete(row.id, owner)).id == row.id
    assert _objects(root) == []
    with pytest.raises(NotFound):
        await files.get(row.id, owner)
