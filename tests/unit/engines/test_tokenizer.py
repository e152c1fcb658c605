"""Tests for `gpucloud.engines.tokenizer`: counting, chat counting and incremental decoding."""

from __future__ import annotations

import random
from typing import Any

import bpe_openai
import pytest

from gpucloud.engines.tokenizer import Tokenizer, available_encodings

# The worked example of OpenAI's cookbook "How to count tokens with tiktoken", which documents
# 129 prompt tokens for gpt-4-0613 / gpt-3.5-turbo-0613 (cl100k_base) and checks it against the API.
COOKBOOK_MESSAGES: list[dict[str, Any]] = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate jargon "
        "into plain English.",
    },
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities for "
        "increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    },
]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer()


@pytest.fixture(scope="module")
def reference() -> Any:
    return bpe_openai.get_encoding("cl100k_base")


def test_encode_decode_round_trip(tokenizer: Tokenizer) -> None:
    text = "Hello, world! 日本語 café naïve\n\tend"
    tokens = tokenizer.encode(text)
    assert tokens
    assert tokenizer.decode(tokens) == text
    assert tokenizer.count(text) == len(tokens)


def test_known_counts(tokenizer: Tokenizer) -> None:
    assert tokenizer.encode("hello world") == [15339, 1917]
    assert tokenizer.count("") == 0
    assert tokenizer.count("tiktoken is great!") == 6


def test_special_token_text_is_ordinary_text(tokenizer: Tokenizer) -> None:
    text = "before <|endoftext|> after"
    tokens = tokenizer.encode(text)
    assert tokenizer.decode(tokens) == text
    assert len(tokens) > 3  # spelled out, not the single special token


def test_long_text_is_counted_in_pieces(tokenizer: Tokenizer, reference: Any) -> None:
    text = "lorem ipsum dolor " * 12_000  # 216,000 characters: above the piece size
    assert tokenizer.count(text) == len(reference.encode_ordinary(text))


def test_text_longer_than_backend_limit_is_counted(tokenizer: Tokenizer) -> None:
    text = "word" + " word" * 249_999  # 1,249,999 characters: bpe_openai alone refuses this
    assert tokenizer.count(text) == 250_000


def test_a_long_run_of_cjk_text_stays_under_the_backends_token_limit(tokenizer: Tokenizer) -> None:
    rng = random.Random(4)
    text = "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(93_000))  # no whitespace to cut at
    assert tokenizer.count(text) > 200_000  # more tokens than bpe_openai takes in one input


def test_count_chat_matches_openai_cookbook(tokenizer: Tokenizer) -> None:
    assert tokenizer.count_chat(COOKBOOK_MESSAGES) == 129


def test_count_chat_by_the_rule(tokenizer: Tokenizer, reference: Any) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "name": "ada", "content": "Count me: 日本語"},
    ]

    def n(text: str) -> int:
        return len(reference.encode(text))

    expected = (
        (3 + n("system") + n("You are terse."))
        + (3 + n("user") + n("ada") + 1 + n("Count me: 日本語"))
        + 3  # reply priming
    )
    assert tokenizer.count_chat(messages) == expected


def test_count_chat_content_parts(tokenizer: Tokenizer, reference: Any) -> None:
    parts = [
        {"type": "text", "text": "Describe this"},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/cat.png"}},
        {"type": "text", "text": " in one word."},
    ]
    n = reference.encode
    expected = 3 + len(n("user")) + len(n("Describe this")) + len(n(" in one word.")) + 3
    assert tokenizer.count_chat([{"role": "user", "content": parts}]) == expected


def test_count_chat_empty_and_null_content(tokenizer: Tokenizer) -> None:
    assert tokenizer.count_chat([]) == 3
    with_none = [{"role": "assistant", "content": None}]
    assert tokenizer.count_chat(with_none) == 3 + tokenizer.count("assistant") + 3


def test_incremental_decoder_never_splits_characters(tokenizer: Tokenizer) -> None:
    text = "日本語 café"
    tokens = tokenizer.encode(text)
    decoder = tokenizer.incremental_decoder()
    pieces = [decoder.feed(token) for token in tokens]
    assert "".join(pieces) + decoder.flush() == text
    assert all("\ufffd" not in piece for piece in pieces)
    # 語 is split over two tokens: the first yields nothing, the second the whole character.
    assert "" in pieces
    assert "語" in pieces


def test_incremental_decoder_holds_pending_bytes(tokenizer: Tokenizer) -> None:
    first, second = tokenizer.encode("語")
    decoder = tokenizer.incremental_decoder()
    assert decoder.feed(first) == ""
    assert decoder.pending
    assert decoder.feed(second) == "語"
    assert not decoder.pending


def test_incremental_decoder_flush_replaces_incomplete_bytes(tokenizer: Tokenizer) -> None:
    first, _ = tokenizer.encode("語")
    decoder = tokenizer.incremental_decoder()
    assert decoder.feed(first) == ""
    assert decoder.flush() == "\ufffd"
    assert decoder.flush() == ""
    assert not decoder.pending


def test_encoding_is_loaded_lazily_and_validated() -> None:
    lazy = Tokenizer("no-such-encoding")  # constructing builds nothing, so it cannot fail yet
    assert lazy.name == "no-such-encoding"
    with pytest.raises(ValueError, match="unknown tokenizer encoding"):
        lazy.count("x")


def test_other_encodings() -> None:
    assert "o200k_base" in available_encodings()
    o200k = Tokenizer("o200k_base")
    o200k.load()
    assert o200k.decode(o200k.encode("日本語 café")) == "日本語 café"
    assert o200k.encode("hello world") != Tokenizer().encode("hello world")
