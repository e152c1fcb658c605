"""Logging setup: readable lines in a terminal, one JSON object per line in production.

Secrets never reach a log line by construction — keys are logged by id, URLs with credentials are
never formatted — and `Redactor` is a last line of defence that masks anything shaped like an
API key, worker token, worker session or webhook signing secret (`gc_…`, `gcw_…`, `gcs_…`,
`whsec_…`) in a message, in every structured field of the record and in its exception text
before it is written.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import orjson

from gpucloud.observability.context import ContextFilter

# Keys, worker tokens and worker sessions; webhook signing secrets (base64).
_KEY_SHAPE = re.compile(r"(gc[ws]?_)[0-9A-Za-z]{20,}|(whsec_)[0-9A-Za-z+/]{20,}=*")


def looks_like_secret(text: str) -> bool:
    """Whether `text` holds something shaped like one of our secrets (a key, token, session or
    webhook signing secret)."""
    return _KEY_SHAPE.search(text) is not None


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def mask(text: str) -> str:
    """`text` with everything shaped like one of our secrets masked (its prefix kept)."""
    if "gc" not in text and "whsec_" not in text:
        return text  # the common case, without running the expression
    return _KEY_SHAPE.sub(lambda m: f"{m.group(1) or m.group(2)}[redacted]", text)


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(v) for v in value]
    return value


class Redactor(logging.Filter):
    """Masks secret-shaped text in the message, in every structured field (the request id, the
    model, anything a client chose) and in the exception's text, before any formatter sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "gc" in message or "whsec_" in message:
            record.msg = mask(message)
            record.args = None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and value is not None:
                record.__dict__[key] = _masked(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
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
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
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
