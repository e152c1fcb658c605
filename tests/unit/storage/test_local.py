"""`LocalStore`: objects round-trip and replace atomically, a failed write leaves nothing, keys
cannot escape the root, and `build_store` picks it for file URLs and the default."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gpucloud.settings import Settings, StorageSettings
from gpucloud.storage import LocalStore, S3Store, build_store
from gpucloud.storage.protocol import ObjectMissing, StorageError, chunks_of, read_all


async def test_put_replaces_and_delete_is_idempotent(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    await store.put("files/x", chunks_of(b"first version"))
    await store.put("files/x", chunks_of(b"second"))
    assert await read_all(store, "files/x") == b"second"
    await store.delete("files/x")
    await store.delete("files/x")
    with pytest.raises(ObjectMissing):
        await read_all(store, "files/x")
    await store.close()


async def test_a_write_that_fails_midway_leaves_no_object_and_no_partial_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    await store.put("files/x", chunks_of(b"kept"))

    async def broken() -> AsyncIterator[bytes]:
        yield b"half an object"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        await store.put("files/x", broken())
    assert await read_all(store, "files/x") == b"kept"  # the old object stays whole
    assert sorted(p.name for p in (tmp_path / "files").iterdir()) == ["x"]


@pytest.mark.parametrize("key", ["../outside", "files/../../outside", "/etc/passwd", "", "."])
async def test_keys_cannot_escape_or_be_the_root(tmp_path: Path, key: str) -> None:
    store = LocalStore(tmp_path / "root")
    with pytest.raises(StorageError, match="invalid object key"):
        await store.put(key, chunks_of(b"x"))
    with pytest.raises(StorageError):
        await store.delete(key)
    assert not (tmp_path / "outside").exists()


async def test_a_large_object_reads_back_in_chunks(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    data = b"z" * (3 * (1 << 20) + 5)
    await store.put("big", chunks_of(data, 1 << 16))
    chunks = [chunk async for chunk in store.read("big")]
    assert len(chunks) == 4
    assert b"".join(chunks) == data


def test_build_store_chooses_local_for_the_default_and_file_urls(tmp_path: Path) -> None:
    default = build_store(Settings(data_dir=tmp_path))
    assert isinstance(default, LocalStore)
    for url in (f"file://{tmp_path}/objs", str(tmp_path / "plain")):
        assert isinstance(
            build_store(Settings(data_dir=tmp_path, storage=StorageSettings(url=url))), LocalStore
        )
    s3 = build_store(Settings(data_dir=tmp_path, storage=StorageSettings(url="s3://bucket/p")))
    assert isinstance(s3, S3Store)
    with pytest.raises(ValueError, match="s3:// or file://"):
        build_store(Settings(data_dir=tmp_path, storage=StorageSettings(url="gs://bucket")))
