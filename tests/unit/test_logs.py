"""`Redactor`: secret-shaped text is masked in messages, in every structured field and in exception
text, in both log formats (finding 8 of the security review)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from gpucloud.keys import generate_secret
from gpucloud.logs import ConsoleFormatter, JsonFormatter, Redactor, looks_like_secret

KEY = generate_secret("gc_")
TOKEN = generate_secret("gcw_")
SESSION = generate_secret("gcs_")


@pytest.fixture(params=["json", "console"])
def logged(request: pytest.FixtureRequest) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(Redactor())
    handler.setFormatter(JsonFormatter() if request.param == "json" else ConsoleFormatter())
    logger = logging.getLogger(f"test-masking-{request.param}")
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    yield logger, out
    logger.handlers = []


def test_every_field_is_masked(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = logged
    extra = {"request_id": KEY, "model": f"x{TOKEN}", "user": {"nested": [SESSION]}, "status": 200}
    logger.info("key %s", KEY, extra=extra)
    try:
        raise ValueError(f"bad key {KEY}")
    except ValueError:
        logger.exception("failed", extra={"request_id": "plain-id"})
    text = out.getvalue()
    for secret in (KEY, TOKEN, SESSION):
        assert secret not in text
    assert "gc_[redacted]" in text
    assert "plain-id" in text


def test_the_json_record_keeps_its_fields() -> None:
    record = logging.LogRecord("x", logging.INFO, "", 0, "hello", None, None)
    record.model = KEY
    record.tokens = 5
    Redactor().filter(record)
    entry = orjson.loads(JsonFormatter().format(record))
    assert entry["model"] == "gc_[redacted]"
    assert entry["tokens"] == 5


def test_looks_like_secret() -> None:
    assert looks_like_secret(KEY)
    assert looks_like_secret(f"trace-{SESSION}")
    assert not looks_like_secret("gc_short")
    assert not looks_like_secret("trace-1234.abc:xyz_9")
