"""The store helpers: `chunks_of` splits bytes into bounded chunks that join back, and `read_all`
reads an object back whole (on a real `LocalStore`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpucloud.storage.local import LocalStore
from gpucloud.storage.protocol import ObjectMissing, StorageError, chunks_of, read_all


@pytest.mark.parametrize(("size", "data"), [(1, b"abc"), (2, b"abcde"), (10, b"abc"), (3, b"")])
async def test_chunks_are_bounded_and_join_back(size: int, data: bytes) -> None:
    chunks = [chunk async for chunk in chunks_of(data, size)]
    assert b"".join(chunks) == data
    assert all(0 < len(chunk) <= size for chunk in chunks)
    assert len(chunks) == -(-len(data) // size)


async def test_read_all_returns_the_object_and_a_missing_one_is_a_storage_error(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    data = bytes(range(256)) * 10_000
    assert await store.put("a/b", chunks_of(data, 4096)) == len(data)
    assert await read_all(store, "a/b") == data
    with pytest.raises(ObjectMissing):
        await read_all(store, "a/missing")
    assert issubclass(ObjectMissing, StorageError)
