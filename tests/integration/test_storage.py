"""Object storage on the local filesystem and on a real S3-compatible server (moto_server):
round trips, a multipart upload of a large object read back as a stream, missing objects, deletes."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gpucloud.settings import Settings
from gpucloud.storage import LocalStore, ObjectStore, S3Store, StorageError, build_store
from gpucloud.storage.protocol import ObjectMissing, chunks_of, read_all
from tests.s3_support import S3Server, moto_server


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


def _s3_store(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> tuple[ObjectStore, str]:
    bucket = s3.create_bucket()
    for name, value in s3.env(bucket, "tenant-a").items():
        monkeypatch.setenv(name, value)
    store = build_store(Settings())
    assert isinstance(store, S3Store)
    return store, bucket


async def _random_chunks(total: int, chunk: int, digest: hashlib._Hash) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        data = os.urandom(min(chunk, total - sent))
        digest.update(data)
        sent += len(data)
        yield data


async def test_local_store_round_trip_and_atomic_keys(tmp_path: Path) -> None:
    store = build_store(Settings(data_dir=tmp_path))
    assert isinstance(store, LocalStore)
    assert await store.put("files/a", chunks_of(b"hello\n" * 1000, 7)) == 6000
    assert await read_all(store, "files/a") == b"hello\n" * 1000
    assert (tmp_path / "objects" / "files" / "a").exists()
    assert not list((tmp_path / "objects" / "files").glob(".*part"))  # no temporary left behind
    await store.delete("files/a")
    await store.delete("files/a")  # absent: nothing happens
    with pytest.raises(ObjectMissing):
        await read_all(store, "files/a")
    with pytest.raises(StorageError):
        await store.put("../escape", chunks_of(b"x"))


async def test_s3_small_object_round_trip(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    store, bucket = _s3_store(s3, monkeypatch)
    try:
        assert await store.put("files/small", chunks_of(b'{"a": 1}\n')) == 9
        assert s3.keys(bucket) == ["tenant-a/files/small"]
        assert await read_all(store, "files/small") == b'{"a": 1}\n'
        await store.delete("files/small")
        assert s3.keys(bucket) == []
        with pytest.raises(ObjectMissing):
            await read_all(store, "files/small")
    finally:
        await store.close()


async def test_s3_multipart_upload_and_streaming_download(
    s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPUCLOUD_STORAGE__PART_SIZE_BYTES", str(5 * 1024 * 1024))
    store, bucket = _s3_store(s3, monkeypatch)
    total = 23 * 1024 * 1024 + 17  # five parts, the last one short
    sent = hashlib.sha256()
    try:
        assert await store.put("big/object", _random_chunks(total, 300_000, sent)) == total
        head = s3.client().head_object(Bucket=bucket, Key="tenant-a/big/object")
        assert head["ContentLength"] == total
        assert str(head["ETag"]).strip('"').endswith("-5")  # S3's mark of a 5-part multipart object
        received = hashlib.sha256()
        chunks = 0
        async for chunk in store.read("big/object"):
            assert len(chunk) <= 1 << 20  # streamed, never the whole object at once
            received.update(chunk)
            chunks += 1
        assert received.hexdigest() == sent.hexdigest()
        assert chunks >= 23
    finally:
        await store.close()


async def test_s3_failed_upload_leaves_no_object_and_no_parts(
    s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPUCLOUD_STORAGE__PART_SIZE_BYTES", str(5 * 1024 * 1024))
    store, bucket = _s3_store(s3, monkeypatch)

    async def failing() -> AsyncIterator[bytes]:
        yield os.urandom(6 * 1024 * 1024)  # one whole part is uploaded
        raise OSError("the client went away")

    try:
        with pytest.raises(OSError, match="went away"):
            await store.put("broken", failing())
        assert s3.keys(bucket) == []
        uploads = s3.client().list_multipart_uploads(Bucket=bucket)
        assert uploads.get("Uploads", []) == []
    finally:
        await store.close()
