"""Tiny causal language models made at test time: no hub, no download, a few hundred milliseconds.

`make_tiny_llama(path)` writes a complete Hugging Face model directory (config, seeded random
weights, a real fast tokenizer with a chat template) that `AutoModelForCausalLM` and
`AutoTokenizer` load like any other checkpoint. Engine tests (transformers, engine servers) and the
batching benchmark share it.

Two vocabularies:
- "bpe": a byte-level BPE trained in-process on a small multilingual corpus, so ordinary text
  tokenizes into a plausible number of tokens and every string round-trips;
- "bytes": the 256 byte tokens only (no merges), so every non-ASCII character is split over
  several tokens: the case that incremental detokenisation must get right.

The weights are random (seeded), so what the model writes is noise drawn from its vocabulary;
that is what the tests want (for "bytes" it is mostly invalid UTF-8, which exercises U+FFFD
handling). A random model may emit the end-of-sequence token at any step, rarely; tests that need
an exact length should not depend on it (greedy output of a fixed seed is reproducible, though).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

Vocabulary = Literal["bpe", "bytes"]

SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>")

# A simple, well-formed template so that chat prompts differ visibly from plain text (the engine
# tests check that the template is used). `add_generation_prompt` primes the assistant's turn.
# Like real templates (Llama 3.1, Qwen 2.5) it renders the declared tools first, each one's JSON on
# a line of its own, and an assistant's earlier calls in the history, so that tools cost prompt
# tokens as they do on a real model.
CHAT_TEMPLATE = (
    "{% if tools %}"
    "<|system|>\nYou may call these tools:\n"
    "{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}"
    "</s>\n"
    "{% endif %}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] or '' }}"
    "{% for call in message['tool_calls'] or [] %}"
    "<tool_call>{{ call['function'] | tojson }}</tool_call>"
    "{% endfor %}"
    "</s>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

_CORPUS = (
    "The quick brown fox jumps over the lazy dog. ",
    "Hello world! How are you today? I am fine, thank you. ",
    "A small model writes small sentences about the river, the city and the morning light. ",
    "café naïve résumé Zürich façade crème brûlée jalapeño señor smörgåsbord déjà vu ",
    "日本語 東京 世界 こんにちは 你好 Ελλάδα Привет мир 🙂 🚀 ",
    "<|system|>\n<|user|>\n<|assistant|>\n</s>\n",
    "0123456789 + - * / = ( ) [ ] { } , . ; : ! ? ' \" ",
)


def make_tiny_llama(
    path: Path,
    *,
    vocabulary: Vocabulary = "bpe",
    vocab_size: int = 512,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 512,
    seed: int = 0,
    cycle: str | None = None,
    chat_template: str | None = CHAT_TEMPLATE,
) -> Path:
    """Write a tiny Llama with seeded random weights and its tokenizer into `path`; returns `path`.

    `vocab_size` is the BPE's target size (the "bytes" vocabulary is always 256 + specials).
    Bigger `hidden_size`/`num_layers` make compute dominate (benchmarks); the defaults are tiny.
    `chat_template=None` makes a base model's tokenizer (no chat template).
    With `cycle` (only for the "bytes" vocabulary), the weights are rewired so that the model writes
    the UTF-8 bytes of `cycle` over and over, one byte per token (see `_wire_cycle`).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _make_tokenizer(vocabulary, vocab_size, chat_template)
    tokenizer.save_pretrained(path)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    # fork_rng: seeding must not disturb the caller's global random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    if cycle is not None:
        _wire_cycle(model, tokenizer, cycle)
    model.save_pretrained(path)
    return path


def _wire_cycle(model: Any, tokenizer: Any, cycle: str) -> None:
    """Make the model a byte-bigram machine that follows `cycle` (its bytes must be distinct).

    The attention and MLP outputs are zeroed, so the last hidden state is the (normalised)
    embedding of the current token; the output row of each byte's successor is that byte's
    embedding, scaled so that the successor wins by a wide margin, even when sampling. A prompt
    that ends with the last character of `cycle` makes the answer start at its first character,
    so the output is whole characters split over 2-4 tokens each: what streaming must not break.
    """
    import torch

    ids = tokenizer.encode(cycle, add_special_tokens=False)
    if len(ids) != len(cycle.encode()) or len(set(ids)) != len(ids):
        raise ValueError("cycle needs the bytes vocabulary and distinct bytes")
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embeddings = model.model.embed_tokens.weight
        head = model.lm_head.weight
        head.zero_()
        for current, successor in zip(ids, ids[1:] + ids[:1], strict=True):
            head[successor] = embeddings[current] / embeddings[current].norm() * 50.0


def _make_tokenizer(vocabulary: Vocabulary, vocab_size: int, chat_template: str | None) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=vocabulary == "bpe")
    if vocabulary == "bytes":
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
        vocab.update({char: len(SPECIAL_TOKENS) + i for i, char in enumerate(sorted(alphabet))})
        tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
        tok.pre_tokenizer = byte_level
    else:
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = byte_level
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(list(_CORPUS) * 4, trainer=trainer)
    tok.decoder = decoders.ByteLevel()
    # transformers' TokenizersBackend (PreTrainedTokenizerFast) has an unannotated __init__.
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        chat_template=chat_template,
        model_max_length=1_000_000,
    )
