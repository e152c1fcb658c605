"""`Tokenizer`: token ids, token counts and streaming decoding for OpenAI-style BPE encodings.

It owns the one place where text becomes tokens for engines that have no tokenizer of their own
(the simulated engine, and counting for engines that report none): `encode`/`decode`, `count` of a
plain prompt, `count_chat` of a chat request by OpenAI's documented rule, and `IncrementalDecoder`,
which turns a stream of token ids into whole characters.

The tables come from the `bpe_openai` package, which ships them (tiktoken would download them), so
this works offline. Importing `bpe_openai` costs about a third of a second, so it is imported and
the encoding is built on first use, once per `Tokenizer` instance — never at import time and never
in a module-level cache.

Text is always encoded as ordinary text: a user who writes "<|endoftext|>" gets it counted as the
characters it is, not as a special token (and not as an error), as OpenAI does for message content.
"""

from __future__ import annotations

import codecs
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

DEFAULT_ENCODING = "cl100k_base"

# OpenAI's documented chat framing (gpt-3.5-turbo-0613 and later, gpt-4, gpt-4o): every message
# is wrapped in <|start|>{role/name}\n{content}<|end|>\n, and the reply is primed with
# <|start|>assistant<|message|>.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_REPLY_PRIMING = 3

# bpe_openai refuses single inputs of 1,000,000 characters or 200,000 tokens. Longer text is
# encoded in pieces cut at whitespace, which the BPE pre-tokenizer splits at anyway, so counts
# stay exact except, rarely, at a cut inside a run of whitespace (or inside a run of CJK text,
# which has none). A character is at most 4 UTF-8 bytes and a token at least one byte, so a
# piece of 40,000 characters is at most 160,000 tokens whatever the script (CJK text is about
# two tokens a character: 100,000 characters of it overflowed the limit).
_PIECE_CHARS = 40_000


class _Encoding(Protocol):
    """The part of bpe_openai's (tiktoken-compatible) `Encoding` this module uses."""

    def encode_ordinary(self, text: str) -> list[int]: ...

    def decode(self, tokens: Sequence[int]) -> str: ...

    def decode_single_token_bytes(self, token: int) -> bytes: ...


def available_encodings() -> list[str]:
    """Names `Tokenizer` accepts (cheap: does not build any encoding)."""
    import bpe_openai

    names: list[str] = bpe_openai.list_encoding_names()
    return names


class Tokenizer:
    """One BPE encoding, loaded on first use; safe to share between tasks and threads."""

    def __init__(self, encoding: str = DEFAULT_ENCODING) -> None:
        self._name = encoding
        self._encoding: _Encoding | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    def load(self) -> None:
        """Build the encoding now rather than on first use (an engine's `start`)."""
        self._loaded()

    def encode(self, text: str) -> list[int]:
        encoding = self._loaded()
        if len(text) < _PIECE_CHARS:
            return encoding.encode_ordinary(text)
        tokens: list[int] = []
        for piece in _pieces(text, _PIECE_CHARS):
            tokens.extend(encoding.encode_ordinary(piece))
        return tokens

    def decode(self, tokens: Sequence[int]) -> str:
        """Text of `tokens`; bytes that are not valid UTF-8 become U+FFFD."""
        return self._loaded().decode(list(tokens))

    def token_bytes(self, token: int) -> bytes:
        """The raw bytes of one token (may be part of a multi-byte character)."""
        return self._loaded().decode_single_token_bytes(token)

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def count_chat(self, messages: Iterable[Mapping[str, Any]]) -> int:
        """Prompt tokens of a chat request by OpenAI's rule.

        3 per message, plus the tokens of each string field (role, content, name, tool_call_id…),
        plus 1 when a name is present, plus 3 priming the reply. Content may be a list of parts;
        its text parts are counted and other parts (images, audio) are not, since no engine that
        uses this tokenizer receives them.
        """
        total = TOKENS_REPLY_PRIMING
        for message in messages:
            total += TOKENS_PER_MESSAGE
            for key, value in message.items():
                total += sum(self.count(text) for text in _field_texts(value))
                if key == "name":
                    total += TOKENS_PER_NAME
        return total

    def incremental_decoder(self) -> IncrementalDecoder:
        return IncrementalDecoder(self)

    def _loaded(self) -> _Encoding:
        encoding = self._encoding
        if encoding is None:
            with self._lock:
                if self._encoding is None:
                    self._encoding = _build_encoding(self._name)
                encoding = self._encoding
        return encoding


class IncrementalDecoder:
    """Turns token ids, fed one at a time, into text that only ever holds whole characters.

    A token may end in the middle of a multi-byte UTF-8 character (CJK, accents, emoji); those
    bytes are kept until the tokens that complete them arrive. Bytes that can never form a
    character become U+FFFD as soon as that is certain, so nothing is held forever.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token: int) -> str:
        """The characters completed by `token` (often "", while a character is incomplete)."""
        return self._utf8.decode(self._tokenizer.token_bytes(token))

    def flush(self) -> str:
        """End of stream: bytes still pending become U+FFFD; the decoder is ready for reuse."""
        text = self._utf8.decode(b"", final=True)
        self._utf8.reset()
        return text

    @property
    def pending(self) -> bool:
        """Whether bytes of an incomplete character are held back."""
        buffered, _ = self._utf8.getstate()
        return bool(buffered)


def _build_encoding(name: str) -> _Encoding:
    import bpe_openai

    known = bpe_openai.list_encoding_names()
    if name not in known:
        raise ValueError(f"unknown tokenizer encoding {name!r}; known: {', '.join(known)}")
    encoding: _Encoding = bpe_openai.get_encoding(name)
    return encoding


def _field_texts(value: object) -> Iterator[str]:
    """The countable text of one message field: a string, or the text parts of a content list."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for part in value:
            if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str):
                yield part["text"]


def _pieces(text: str, size: int) -> Iterator[str]:
    """`text` in consecutive pieces of at most `size` characters, cut before whitespace if possible."""
    start = 0
    while len(text) - start > size:
        limit = start + size
        cut = next((i for i in range(limit, start + size // 2, -1) if text[i].isspace()), limit)
        yield text[start:cut]
        start = cut
    yield text[start:]
