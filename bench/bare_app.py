"""The floor for `gateway_overhead.py`: a bare FastAPI chat-completions endpoint, no gpucloud code.

It validates the request body with a pydantic model shaped like the gateway's (unknown fields
refused, the same field bounds), and answers with the same-shaped `chat.completion` JSON (fixed
text, rendered with orjson as the gateway does). No auth, no database, no queue, no engine: the
difference between this and `gpucloud serve` is what the gateway itself costs.

It runs under uvicorn with the options `gpucloud serve` uses (loop/http "auto", so uvloop and
httptools; `log_config=None`; access log on; log level from the command line):

    python bench/bare_app.py --port 8123 [--log-level warning]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from typing import Any, Literal

import orjson
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

TEXT = "The that the which a the. The theory crème already of result from moves"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = Field(None, max_length=256)
    tool_call_id: str | None = None
    refusal: str | None = None


class ChatCompletionRequest(_Strict):
    model: str = Field(min_length=1, max_length=256)
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    stream: bool | None = False
    seed: int | None = None
    user: str | None = Field(None, max_length=256)


def create_app() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/ready")
    async def ready() -> Response:
        return Response(b'{"status":"ready"}', media_type="application/json")

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest) -> Response:
        limit = body.max_completion_tokens or body.max_tokens or 16
        prompt_tokens = sum(
            len((m.content if isinstance(m.content, str) else "").split()) for m in body.messages
        )
        result: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": TEXT, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "length",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": limit,
                "total_tokens": prompt_tokens + limit,
            },
            "system_fingerprint": None,
        }
        return Response(orjson.dumps(result), media_type="application/json")

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        log_config=None,
        log_level=args.log_level.lower(),
        access_log=True,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
