"""Object storage: one interface (`ObjectStore`) for files, batch outputs and other large blobs.

The local filesystem under the data dir in embedded mode (`LocalStore`), an S3-compatible service
in cluster mode (`S3Store`, `GPUCLOUD_STORAGE__URL=s3://bucket/prefix`). `build_store` picks one
from settings; nothing is opened until it is used.
"""

from __future__ import annotations

from gpucloud.settings import Settings
from gpucloud.storage.local import LocalStore
from gpucloud.storage.protocol import ObjectStore, StorageError
from gpucloud.storage.s3 import S3Store, parse_s3_url


def build_store(settings: Settings) -> ObjectStore:
    s = settings.storage
    if s.url is None or s.url.startswith("file://") or "://" not in s.url:
        root = settings.data_dir / "objects" if s.url is None else s.url.removeprefix("file://")
        return LocalStore(root)
    bucket, prefix = parse_s3_url(s.url)
    return S3Store(bucket, prefix, s)


__all__ = ["LocalStore", "ObjectStore", "S3Store", "StorageError", "build_store"]
