"""Tool calling on the transformers engine: the calls as grammar-constrained JSON, then `tool_calls`.

The tools reach the model through its chat template (`tools=`), and the answer is constrained by
a grammar (`grammar.py`) so that a call is always well formed: a JSON array of
`{"name": ..., "arguments": {...}}` objects whose `name` is a declared tool and whose `arguments`
validate against that tool's `parameters`. `tool_choice` shapes the grammar: "required" allows
only calls, a named function only calls of that one, "auto" calls or text (text that does not
begin with "[", so the two can be told apart from the first character), "none" no grammar at
all. `parallel_tool_calls: false` allows one call, otherwise at most one per declared tool.
`relay` turns an answer that is calls into one delta with `tool_calls` (finish reason
"tool_calls"), and passes text through as it streams.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from gpucloud.engines.protocol import Delta, GenerationRequest, ToolCallDelta

# One layout, no free whitespace (as for response formats): the model cannot ramble in blanks.
_LAYOUT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def uses_tools(request: GenerationRequest) -> bool:
    return bool(request.tools) and request.tool_choice != "none"


def tool_grammar(request: GenerationRequest, text_schema: dict[str, Any] | None) -> str:
    """The Lark grammar (llguidance's dialect) of the answer; `text_schema` constrains the text
    alternative of "auto" (a response format), None leaves it free."""
    # Parallel calls: at most one per declared tool, so that a weak model cannot call forever.
    most = (
        1
        if request.parallel_tool_calls is False or isinstance(request.tool_choice, dict)
        else len(request.tools or [])
    )
    calls = {
        "type": "array",
        "items": _call_schema(request),
        "minItems": 1,
        "maxItems": most,
        "x-guidance": _LAYOUT,
    }
    rules = ["calls: %json " + json.dumps(calls)]
    if request.tool_choice in ("required",) or isinstance(request.tool_choice, dict):
        return "\n".join(["start: calls", *rules])
    if text_schema is not None:
        rules.append("text: %json " + json.dumps({**text_schema, "x-guidance": _LAYOUT}))
    else:
        rules.append(r"text: /[^\[](.|\n)*/")
    return "\n".join(["start: calls | text", *rules])


def _call_schema(request: GenerationRequest) -> dict[str, Any]:
    functions = [tool["function"] for tool in request.tools or []]
    if isinstance(request.tool_choice, dict):
        wanted = request.tool_choice["function"]["name"]
        functions = [f for f in functions if f["name"] == wanted]
    options = [
        {
            "type": "object",
            "properties": {
                "name": {"const": f["name"]},
                "arguments": f.get("parameters") or {"type": "object"},
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for f in functions
    ]
    return options[0] if len(options) == 1 else {"anyOf": options}


def parse_calls(text: str) -> list[ToolCallDelta] | None:
    """The calls in an answer that is a JSON array of calls; None for any other answer."""
    if not text.startswith("["):
        return None
    try:
        calls = json.loads(text)
    except ValueError:
        return None
    if not isinstance(calls, list) or not all(isinstance(c, dict) and "name" in c for c in calls):
        return None
    return [
        ToolCallDelta(
            i, json.dumps(call.get("arguments", {})), f"call_{uuid.uuid4().hex[:24]}", str(call["name"])
        )
        for i, call in enumerate(calls)
    ]


async def relay(deltas: AsyncIterator[Delta]) -> AsyncIterator[Delta]:
    """Text streams through; an answer that begins with "[" is held to its end and becomes one
    delta with its `tool_calls` (finish reason "tool_calls"), or its text if it does not parse
    (a token limit cut it short)."""
    held: list[Delta] = []
    deciding = True  # until the first character says whether this is text or calls
    async for delta in deltas:
        if not deciding:
            yield delta
            continue
        held.append(delta)
        text = "".join(d.text for d in held)
        if text and not text.startswith("["):
            deciding = False
            yield merged(held, calls=False)
        elif delta.finish_reason is not None:
            yield merged(held, calls=True)


def merged(held: list[Delta], *, calls: bool) -> Delta:
    """The held deltas as one; with `calls`, a finished array of calls becomes `tool_calls`."""
    text = "".join(d.text for d in held)
    tokens = sum(d.tokens for d in held)
    finish = held[-1].finish_reason
    logprobs = tuple(item for d in held for item in d.logprobs)
    parsed = parse_calls(text) if calls and finish == "stop" else None
    if parsed is None:
        return Delta(text, tokens, finish, logprobs=logprobs)
    return Delta("", tokens, "tool_calls", tool_calls=tuple(parsed), logprobs=logprobs)
