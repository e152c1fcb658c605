"""`IncrementalDetokenizer`: generated token ids, fed one at a time, into whole characters.

A token may hold part of a multi-byte UTF-8 character (byte-level BPE, SentencePiece byte
fallback). Decoding such a prefix yields U+FFFD at its end, so text is released only when the
decoded window does not end in U+FFFD; the bytes wait for the tokens that complete them. Text is
computed as the difference between decoding a window of ids with and without the newest ones (the
technique of TGI and vLLM), because tokenizers such as SentencePiece decode a token differently
depending on what precedes it (leading spaces), so decoding tokens one by one would be wrong.

A U+FFFD that is really in the output (bytes that never form a character) is released as soon as
a later character follows it, or at `flush`, so nothing is held forever.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

_REPLACEMENT = "\ufffd"


class IncrementalDetokenizer:
    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._prefix = 0  # start of the window decoded for context (already emitted)
        self._read = 0  # ids before this one have had their text emitted
        self._before = ""  # decode(ids[prefix:read]), cached: it changes only when text is released

    def feed(self, token: int) -> str:
        """The characters that `token` completes (often "" while a character is incomplete)."""
        self._ids.append(token)
        after = self._decode(self._ids[self._prefix :])
        if len(after) <= len(self._before) or after.endswith(_REPLACEMENT):
            return ""
        released = after[len(self._before) :]
        self._prefix, self._read = self._read, len(self._ids)
        self._before = self._decode(self._ids[self._prefix : self._read])
        return released

    def flush(self) -> str:
        """End of output: whatever is held back, incomplete bytes becoming U+FFFD."""
        after = self._decode(self._ids[self._prefix :])
        self._prefix = self._read = len(self._ids)
        released, self._before = after[len(self._before) :], ""
        return released

    def piece(self, token: int) -> str:
        """One token's own text (for logprobs; a partial character shows as U+FFFD)."""
        return self._decode([token])

    def _decode(self, ids: list[int]) -> str:
        if not ids:
            return ""
        text = self._tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        return text if isinstance(text, str) else "".join(text)
