"""Logging setup: readable lines in a terminal, one JSON object per line in production.

Secrets never reach a log line by construction — keys are logged by id, URLs with credentials are
never formatted — and `Redactor` is a last line of defence that masks anything shaped like an
API key, worker token or webhook signing secret (`gc_…`, `gcw_…`, `whsec_…`: the database
driver logs statement parameters at DEBUG) in a message before it is written.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import orjson

from gpucloud.observability.context import ContextFilter

_KEY_SHAPE = re.compile(r"(gcw?_)[0-9A-Za-z]{20,}|(whsec_)[0-9A-Za-z+/]{20,}=*")
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class Redactor(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "gc_" in message or "gcw_" in message or "whsec_" in message:
            record.msg = _KEY_SHAPE.sub(lambda m: f"{m.group(1) or m.group(2)}[redacted]", message)
            record.args = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    """One readable line; the request id (when there is one) right after the logger's name."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s%(context)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.context = f" [{request_id}]" if request_id else ""
        return super().format(record)


def configure_logging(level: str = "INFO", fmt: str = "console") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.addFilter(Redactor())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(ConsoleFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # One line per HTTP call of a client (a worker's heartbeats, engine servers) is noise; callers
    # log what failed themselves.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
