"""`S3Store`: objects in an S3-compatible service (AWS S3, MinIO, ...) through boto3.

boto3 is synchronous: every call runs in a thread. An object smaller than one part is sent with
one PUT; a larger one as a multipart upload, one part in memory at a time, aborted on any error so
that no orphaned parts are left billed. Reads stream the body in chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING, Any

from gpucloud.settings import StorageSettings
from gpucloud.storage.protocol import ObjectMissing, StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_CHUNK = 1 << 20


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` → ("bucket", "some/prefix/")."""
    if not url.startswith("s3://"):
        raise ValueError(f"storage URL must start with s3:// or file://, got {url.split(':', 1)[0]!r}")
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError("storage URL names no bucket")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


class S3Store:
    def __init__(self, bucket: str, prefix: str, settings: StorageSettings) -> None:
        self._bucket = bucket
        self._prefix = prefix
        self._settings = settings
        self._client: S3Client | None = None

    def _s3(self) -> S3Client:
        if self._client is None:
            import boto3  # only cluster mode with S3 needs it (the `s3` extra)

            s = self._settings
            self._client = boto3.client(
                "s3",
                endpoint_url=s.endpoint_url,
                region_name=s.region,
                aws_access_key_id=s.access_key_id.get_secret_value() if s.access_key_id else None,
                aws_secret_access_key=s.secret_access_key.get_secret_value() if s.secret_access_key else None,
            )
        return self._client

    def _key(self, key: str) -> str:
        return self._prefix + key

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        part_size = self._settings.part_size_bytes
        buffer = bytearray()
        upload: _Multipart | None = None
        size = 0
        try:
            async for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                while len(buffer) >= part_size:
                    upload = upload or await _Multipart.begin(self._s3(), self._bucket, self._key(key))
                    await upload.send(bytes(buffer[:part_size]))
                    del buffer[:part_size]
            if upload is None:
                await self._call(
                    self._s3().put_object, Bucket=self._bucket, Key=self._key(key), Body=bytes(buffer)
                )
                return size
            if buffer:
                await upload.send(bytes(buffer))
            await upload.complete()
        except BaseException:
            if upload is not None:
                await upload.abort()
            raise
        return size

    async def read(self, key: str) -> AsyncIterator[bytes]:
        client = self._s3()
        try:
            response = await asyncio.to_thread(client.get_object, Bucket=self._bucket, Key=self._key(key))
        except client.exceptions.NoSuchKey:
            raise ObjectMissing(key) from None
        except Exception as exc:  # botocore's errors: no single base class worth naming
            raise StorageError(f"S3 read failed: {type(exc).__name__}") from exc
        body = response["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, _CHUNK):
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        await self._call(self._s3().delete_object, Bucket=self._bucket, Key=self._key(key))

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @staticmethod
    async def _call(fn: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, **kwargs)
        except Exception as exc:  # botocore's errors: no single base class worth naming
            raise StorageError(f"S3 request failed: {type(exc).__name__}") from exc


class _Multipart:
    """One multipart upload in progress."""

    def __init__(self, client: S3Client, bucket: str, key: str, upload_id: str) -> None:
        self._client, self._bucket, self._key, self._id = client, bucket, key, upload_id
        self._parts: list[dict[str, Any]] = []

    @classmethod
    async def begin(cls, client: S3Client, bucket: str, key: str) -> _Multipart:
        created = await S3Store._call(client.create_multipart_upload, Bucket=bucket, Key=key)
        return cls(client, bucket, key, str(created["UploadId"]))

    async def send(self, data: bytes) -> None:
        number = len(self._parts) + 1
        sent = await S3Store._call(
            self._client.upload_part,
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._id,
            PartNumber=number,
            Body=data,
        )
        self._parts.append({"ETag": sent["ETag"], "PartNumber": number})

    async def complete(self) -> None:
        await S3Store._call(
            self._client.complete_multipart_upload,
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._id,
            MultipartUpload={"Parts": self._parts},
        )

    async def abort(self) -> None:
        # The bucket's lifecycle rule is the last resort for an upload that cannot be aborted.
        with contextlib.suppress(StorageError):
            await S3Store._call(
                self._client.abort_multipart_upload, Bucket=self._bucket, Key=self._key, UploadId=self._id
            )
