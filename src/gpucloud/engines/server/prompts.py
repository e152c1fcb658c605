"""`PromptCounter`: an engine server's prompt tokens, counted on the worker's side.

What is billed comes from the server's own usage report whenever it sends one (the engine reads
`usage` from the stream). This count is for the rest: admission-time estimates, and a request
cancelled before the server reported its usage. With a local model directory and `transformers`
installed, it uses the model's own tokenizer (chat prompts through its chat template, as servers
do, the declared tools included), so it matches the server; otherwise it falls back to the
cl100k estimate of `engines.tokenizer` (the tools' JSON counted on top) and says so once in the log.
The model's directory also gives its vocabulary's size (`config.json`'s `vocab_size`, the width
of its logits, else the tokenizer's length), which bounds `logit_bias` token ids.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from gpucloud.engines.protocol import GenerationRequest
from gpucloud.engines.tokenizer import Tokenizer

log = logging.getLogger(__name__)


class PromptCounter:
    def __init__(self, tokenizer_dir: Path | None) -> None:
        self._dir = tokenizer_dir
        self._hf: Any = None  # transformers tokenizer, once loaded
        self._vocabulary: int | None = None
        self._fallback = Tokenizer()

    def load(self) -> None:
        """Load the model's tokenizer if there is one to load (blocking: call it in a thread)."""
        if self._dir is None or not self._dir.is_dir():
            log.info("engine server: no local tokenizer; prompt counts before usage are estimates")
            return
        try:
            from transformers import AutoTokenizer
        except ImportError:
            log.info("engine server: transformers not installed; prompt counts before usage are estimates")
            return
        try:
            self._hf = AutoTokenizer.from_pretrained(str(self._dir), local_files_only=True)
        except (OSError, ValueError) as exc:
            log.warning("engine server: could not load the model's tokenizer (%s); estimating", exc)
            return
        self._vocabulary = _config_vocabulary(self._dir) or len(self._hf)

    def count(self, request: GenerationRequest) -> int:
        if self._hf is None:
            if request.kind == "chat":
                tools = self._fallback.count(json.dumps(request.tools)) if request.tools else 0
                return self._fallback.count_chat(request.messages or []) + tools
            return self._fallback.count(request.prompt or "")
        if request.kind == "chat":
            ids = self._hf.apply_chat_template(
                request.messages or [],
                tools=request.tools or None,  # servers render them into the prompt
                add_generation_prompt=True,
                tokenize=True,
                return_dict=False,
            )
            return len(ids)
        return len(self._hf(request.prompt or "")["input_ids"])

    def vocabulary_size(self) -> int | None:
        """How many token ids the model has (None without its tokenizer)."""
        return self._vocabulary


def _config_vocabulary(directory: Path) -> int | None:
    """`vocab_size` of the model's config.json (top level, or its text model's), if it says."""
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    for section in (config, config.get("text_config") or {}):
        size = section.get("vocab_size") if isinstance(section, dict) else None
        if isinstance(size, int) and size > 0:
            return size
    return None
