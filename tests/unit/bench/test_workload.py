"""Benchmark workloads: synthetic prompts are seeded, distinct and cut to the asked token count;
dataset rows take a prompt or messages with their own budget, and bad rows name their line."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from gpucloud.bench.workload import DatasetError, cycle, load_dataset, synthetic
from gpucloud.engines.tokenizer import Tokenizer


def test_synthetic_prompts_are_seeded_distinct_and_of_the_asked_length() -> None:
    first = synthetic(5, 32, 16, seed=7)
    assert first == synthetic(5, 32, 16, seed=7)
    assert first != synthetic(5, 32, 16, seed=8)
    assert len({r.prompt for r in first}) == 5  # no prefix cache makes them cheaper
    tokenizer = Tokenizer()
    for request in first:
        assert abs(len(tokenizer.encode(request.prompt)) - 32) <= 2
        assert request.messages == [{"role": "user", "content": request.prompt}]
        assert request.max_tokens == 16


def test_a_dataset_takes_prompts_or_messages_with_their_budgets(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    rows: list[dict[str, Any]] = [
        {"prompt": "hello"},
        {
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            "output_tokens": 3,
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows[:1]) + "\n\n" + json.dumps(rows[1]) + "\n")
    loaded = load_dataset(path, output_tokens=50)
    assert [(r.prompt, r.max_tokens) for r in loaded] == [("hello", 50), ("be brief\nhi", 3)]
    assert loaded[1].messages == rows[1]["messages"]


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("{oops", "line 2: not JSON"),
        ("[1]", "line 2: expected an object"),
        ('{"prompt": "x", "output_tokens": 0}', "line 2: output_tokens must be a positive integer"),
        ('{"prompt": "x", "output_tokens": "5"}', "line 2: output_tokens"),
        ('{"prompt": ""}', "line 2: needs a non-empty"),
        ('{"messages": []}', "line 2: needs a non-empty"),
        ('{"messages": ["hi"]}', "line 2: needs a non-empty"),
    ],
)
def test_a_bad_row_names_its_line(tmp_path: Path, line: str, why: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "fine"}\n' + line + "\n")
    with pytest.raises(DatasetError, match=why):
        load_dataset(path, 10)


def test_an_empty_dataset_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n  \n")
    with pytest.raises(DatasetError, match="no requests"):
        load_dataset(path, 10)


def test_cycle_repeats_the_workload() -> None:
    requests = synthetic(2, 4, 1, seed=1)
    assert list(itertools.islice(cycle(requests), 5)) == [*requests, *requests, requests[0]]
