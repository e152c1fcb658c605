"""Prompts as the model sees them: chat requests through the tokenizer's chat template.

A chat request is rendered with the tokenizer's own chat template (`add_generation_prompt`, so the
model answers as the assistant) and tokenized without adding special tokens again, exactly as
`apply_chat_template(..., tokenize=True)` does; a completion prompt is tokenized with the
tokenizer's usual special tokens (a BOS for Llama-style models).

A tokenizer without a chat template (a base model) gets `FALLBACK_TEMPLATE`, a plain framing that
base models continue sensibly:

    <|system|>
    You are terse.
    <|user|>
    Hello!
    <|assistant|>

i.e. `<|role|>\\n{content}\\n` per message, then `<|assistant|>\\n`, tokenized with the
tokenizer's special tokens (so a BOS leads it, as for a completion prompt).

The token count of a prompt is the length of these very ids: what is billed is what the model saw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from transformers import PreTrainedTokenizerBase

from gpucloud.engines.protocol import EngineError, GenerationRequest

FALLBACK_TEMPLATE = "<|{role}|>\n{content}\n"
FALLBACK_REPLY_PRIMING = "<|assistant|>\n"


class PromptEncoder:
    """Turns a `GenerationRequest` into the token ids the model is fed."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self._tokenizer = tokenizer
        self._has_template = bool(getattr(tokenizer, "chat_template", None))

    @property
    def has_chat_template(self) -> bool:
        return self._has_template

    def encode(self, request: GenerationRequest) -> list[int]:
        if request.kind == "chat":
            messages = [_plain_message(message) for message in request.messages or []]
            if self._has_template:
                return self._ids(self.render_chat(messages, request.tools), special=False)
            return self._ids(render_fallback(messages), special=True)
        return self._ids(request.prompt or "", special=True)

    def render_chat(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None = None
    ) -> str:
        """The chat template's text for `messages` (and the tools it may call), primed for the
        assistant's reply."""
        try:
            text = self._tokenizer.apply_chat_template(
                [dict(message) for message in messages],
                tools=[dict(tool) for tool in tools] if tools else None,
                tokenize=False,
                add_generation_prompt=True,
            )
        except Exception as exc:  # templates are user Jinja: any error is the request's
            raise EngineError(
                f"the model's chat template rejected these messages: {exc}", code="invalid_request"
            ) from exc
        if not isinstance(text, str):
            raise EngineError("the model's chat template did not render to text")
        return text

    def _ids(self, text: str, *, special: bool) -> list[int]:
        encoded = self._tokenizer(text, add_special_tokens=special)["input_ids"]
        return [int(token) for token in encoded]


def render_fallback(messages: Sequence[Mapping[str, str]]) -> str:
    """`FALLBACK_TEMPLATE` applied to `messages` (see the module docstring)."""
    body = "".join(FALLBACK_TEMPLATE.format(role=m["role"], content=m["content"]) for m in messages)
    return body + FALLBACK_REPLY_PRIMING


def _plain_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """role and text content (a content list contributes its text parts: this engine reads text
    only), and the tool calls and tool-call ids of a conversation with tools."""
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(
            part["text"]
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str)
        )
    plain: dict[str, Any] = {
        "role": str(message.get("role", "user")),
        "content": content if isinstance(content, str) else "",
    }
    for key in ("name", "tool_call_id"):
        if isinstance(message.get(key), str):
            plain[key] = message[key]
    if message.get("tool_calls"):
        plain["tool_calls"] = message["tool_calls"]
    return plain
