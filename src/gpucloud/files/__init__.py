"""The Files API's store: file metadata in the database, bytes in object storage, each file owned by
the API key that uploaded it. Batch input files are checked line by line as they arrive."""

from gpucloud.files.jsonl import BATCH_ENDPOINTS, BatchRequestLine, LineChecker, parse_batch_line
from gpucloud.files.service import FileService, NewFile

__all__ = [
    "BATCH_ENDPOINTS",
    "BatchRequestLine",
    "FileService",
    "LineChecker",
    "NewFile",
    "parse_batch_line",
]
