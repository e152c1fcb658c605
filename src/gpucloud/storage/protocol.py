"""`ObjectStore`: what the rest of the code may ask of object storage (put by streaming chunks,
read back as a stream of chunks, delete). Keys are relative paths such as `files/file-abc`."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol


class StorageError(Exception):
    """The store could not do what was asked (missing object, unreachable service)."""


class ObjectMissing(StorageError):
    """No object under that key."""


class ObjectStore(Protocol):
    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store the concatenated chunks under `key` (replacing any object); the size written."""
        ...

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks; `ObjectMissing` if there is none."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; nothing happens if it is absent."""
        ...

    async def close(self) -> None: ...


async def chunks_of(data: bytes, size: int = 1 << 20) -> AsyncIterator[bytes]:
    """`data` as an async stream of chunks, for `put`."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def read_all(store: ObjectStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(key)])
