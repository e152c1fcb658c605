"""A real S3-compatible server for the tests: moto's standalone server (`moto_server`) on
127.0.0.1, speaking the S3 HTTP API, and the settings that point gpucloud at it."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from tests.support import SECRETS, free_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ACCESS_KEY = "gctest-access"
SECRET_KEY = "gctest-secret-" + uuid.uuid4().hex
REGION = "us-east-1"
SECRETS.add(SECRET_KEY)  # never in a server log (conftest scans them)


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def env(self, bucket: str, prefix: str = "gc") -> dict[str, str]:
        """gpucloud's settings for this server (the bucket must exist: see `create_bucket`)."""
        return {
            "GPUCLOUD_STORAGE__URL": f"s3://{bucket}/{prefix}",
            "GPUCLOUD_STORAGE__ENDPOINT_URL": self.endpoint,
            "GPUCLOUD_STORAGE__REGION": REGION,
            "GPUCLOUD_STORAGE__ACCESS_KEY_ID": ACCESS_KEY,
            "GPUCLOUD_STORAGE__SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def client(self) -> S3Client:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def create_bucket(self) -> str:
        name = f"gctest-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=bucket)
        return [str(o["Key"]) for o in listed.get("Contents", [])]


@contextmanager
def moto_server(log_dir: Path) -> Iterator[S3Server]:
    port = free_port()
    log = (log_dir / "moto.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield S3Server(endpoint)
    finally:
        process.terminate()
        process.wait(timeout=10)
