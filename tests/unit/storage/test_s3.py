"""`S3Store` against a real S3 API server (moto's, in a thread on 127.0.0.1): small and multipart
objects round-trip under the prefix, a failed multipart upload is aborted, and URL parsing."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from pydantic import SecretStr

from gpucloud.settings import StorageSettings
from gpucloud.storage.protocol import ObjectMissing, chunks_of, read_all
from gpucloud.storage.s3 import S3Store, parse_s3_url

PART = 5 * 1024 * 1024  # S3's smallest part


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def _settings(endpoint: str) -> StorageSettings:
    return StorageSettings(
        url=None,
        endpoint_url=endpoint,
        region="us-east-1",
        access_key_id=SecretStr("unit-access"),
        secret_access_key=SecretStr("unit-secret"),
        part_size_bytes=PART,
    )


def _client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="unit-access",
        aws_secret_access_key="unit-secret",
    )


@pytest.fixture
def bucket(endpoint: str) -> str:
    name = f"unit-{uuid.uuid4().hex[:12]}"
    _client(endpoint).create_bucket(Bucket=name)
    return name


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("s3://b", ("b", "")),
        ("s3://b/", ("b", "")),
        ("s3://b/p/q/", ("b", "p/q/")),
        ("s3://b//p", ("b", "p/")),
    ],
)
def test_urls_parse_into_bucket_and_prefix(url: str, parsed: tuple[str, str]) -> None:
    assert parse_s3_url(url) == parsed


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "http://b/p"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"bucket|s3://"):
        parse_s3_url(url)


async def test_a_small_object_round_trips_under_the_prefix(endpoint: str, bucket: str) -> None:
    store = S3Store(bucket, "gc/", _settings(endpoint))
    assert await store.put("files/a", chunks_of(b"hello", 2)) == 5
    assert await read_all(store, "files/a") == b"hello"
    listed = _client(endpoint).list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listed["Contents"]] == ["gc/files/a"]
    await store.delete("files/a")
    await store.delete("files/a")
    with pytest.raises(ObjectMissing):
        await read_all(store, "files/a")
    await store.close()


async def test_a_large_object_goes_up_in_parts(endpoint: str, bucket: str) -> None:
    store = S3Store(bucket, "", _settings(endpoint))
    data = bytes(range(256)) * (PART // 256) + b"tail"  # one full part and a short last one
    assert await store.put("big", chunks_of(data, 1 << 20)) == len(data)
    assert await read_all(store, "big") == data
    head = _client(endpoint).head_object(Bucket=bucket, Key="big")
    assert str(head["ETag"]).endswith('-2"')  # a multipart object of two parts
    await store.close()


async def test_a_failed_multipart_upload_is_aborted(endpoint: str, bucket: str) -> None:
    store = S3Store(bucket, "", _settings(endpoint))

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * PART
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        await store.put("broken", broken())
    client = _client(endpoint)
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert "Contents" not in client.list_objects_v2(Bucket=bucket)
    await store.close()
