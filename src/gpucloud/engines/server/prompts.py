"""`PromptCounter`: an engine server's prompt tokens, counted on the worker's side.

What is billed comes from the server's own usage report whenever it sends one (the engine reads
`usage` from the stream). This count is for the rest: admission-time estimates, and a request
cancelled before the server reported its usage. With a local model directory and `transformers`
installed, it uses the model's own tokenizer (chat prompts through its chat template, as servers
do), so it matches the server; otherwise it falls back to the cl100k estimate of
`engines.tokenizer` and says so once in the log.
"""

from __future__ import annotations

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

    def count(self, request: GenerationRequest) -> int:
        if self._hf is None:
            if request.kind == "chat":
                return self._fallback.count_chat(request.messages or [])
            return self._fallback.count(request.prompt or "")
        if request.kind == "chat":
            ids = self._hf.apply_chat_template(
                request.messages or [], add_generation_prompt=True, tokenize=True, return_dict=False
            )
            return len(ids)
        return len(self._hf(request.prompt or "")["input_ids"])
