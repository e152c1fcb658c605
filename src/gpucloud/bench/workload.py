"""What `gpucloud bench` sends: synthetic prompts of about P tokens asking for O tokens, or the rows of
a JSONL dataset.

Synthetic prompts are random words cut to P tokens of cl100k_base (the project's offline tokenizer),
seeded, each one different so that no server-side prefix cache makes them cheaper than real traffic.
A dataset row is `{"prompt": "…"}` or `{"messages": [...]}`, with an optional `"output_tokens"`
(default: `--output-tokens`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpucloud.engines.tokenizer import Tokenizer

# Common English words: each one is a single cl100k token after a space, so P words are about P tokens.
WORDS = (
    "the of and to in is you that it he was for on are as with his they at be this have from or one had "
    "by word but not what all were we when your can said there use an each which she do how their if "
    "will up other about out many then them these so some her would make like him into time has look "
    "two more write go see number no way could people my than first water been call who oil its now "
    "find long down day did get come made may part over new sound take only little work know place year"
)


class DatasetError(ValueError):
    """A dataset file that cannot be used; the message says which line and why."""


@dataclass(frozen=True, slots=True)
class BenchRequest:
    """One request's content: `prompt` (completions) or `messages` (chat), and its token budget."""

    messages: list[dict[str, Any]]
    prompt: str
    max_tokens: int


def synthetic(count: int, prompt_tokens: int, output_tokens: int, seed: int) -> list[BenchRequest]:
    rng = random.Random(seed)
    vocabulary = WORDS.split()
    tokenizer = Tokenizer()
    requests = []
    for _ in range(count):
        words = " ".join(rng.choice(vocabulary) for _ in range(prompt_tokens + 8))
        text = tokenizer.decode(tokenizer.encode(words)[:prompt_tokens])
        requests.append(BenchRequest([{"role": "user", "content": text}], text, output_tokens))
    return requests


def load_dataset(path: Path, output_tokens: int) -> list[BenchRequest]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                rows.append(_row(line, number, output_tokens))
    if not rows:
        raise DatasetError(f"{path.name}: no requests in the file")
    return rows


def _row(line: str, number: int, output_tokens: int) -> BenchRequest:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"line {number}: not JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise DatasetError(f"line {number}: expected an object")
    budget = row.get("output_tokens", output_tokens)
    if not isinstance(budget, int) or budget < 1:
        raise DatasetError(f"line {number}: output_tokens must be a positive integer")
    if isinstance(row.get("prompt"), str) and row["prompt"]:
        return BenchRequest([{"role": "user", "content": row["prompt"]}], row["prompt"], budget)
    messages = row.get("messages")
    if isinstance(messages, list) and messages and all(isinstance(m, dict) for m in messages):
        text = "\n".join(str(m.get("content", "")) for m in messages)
        return BenchRequest(messages, text, budget)
    raise DatasetError(f"line {number}: needs a non-empty 'prompt' string or 'messages' list")


def cycle(requests: list[BenchRequest]) -> Iterator[BenchRequest]:
    """The workload repeated for as long as a level asks (a duration-bound level may need more)."""
    while True:
        yield from requests
