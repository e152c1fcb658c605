"""The simulated model's prose (engines/prose.py): a seeded Zipf distribution shaped by temperature,
top_p, penalties and logit bias, turned into sentences with log probabilities."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import pytest

from gpucloud.engines.prose import WORDS, Penalties, Vocabulary, prose


def draw(words: Vocabulary, seed: int = 1, sentences: int = 200) -> Counter[str]:
    rng = random.Random(seed)
    counts: Counter[str] = Counter()
    for _ in range(sentences):
        counts.update(word for word, _ in words.sentence(rng))
    return counts


def test_same_seed_same_text_and_log_probabilities_are_probabilities() -> None:
    first = list(itertools.islice(prose(random.Random(7), Vocabulary(None, None), top_n=2), 60))
    again = list(itertools.islice(prose(random.Random(7), Vocabulary(None, None), top_n=2), 60))
    assert first == again
    for piece in first:
        assert piece.logprob <= 0
        assert len(piece.top) <= 2
        assert all(lp <= 0 for _, lp in piece.top)


def test_sentences_start_capitalised_and_end_with_punctuation() -> None:
    pieces = list(itertools.islice(prose(random.Random(3), Vocabulary(None, None)), 300))
    ends = [i for i, piece in enumerate(pieces) if piece.ends_sentence]
    assert ends
    for i in ends:
        assert pieces[i].text in {".", "?", "!"}
        following = pieces[i + 1].text.lstrip() if i + 1 < len(pieces) else "X"
        assert following[:1] == following[:1].upper()
    assert all(piece.top == [] for piece in pieces)  # top_n=0 computes no alternatives


def test_low_temperature_concentrates_on_frequent_words() -> None:
    cold = draw(Vocabulary(0.1, None))
    hot = draw(Vocabulary(5.0, None))
    assert cold["the"] / cold.total() > hot["the"] / hot.total()
    assert len(hot) > len(cold)


def test_top_p_keeps_a_nucleus_of_at_least_24_words() -> None:
    counts = draw(Vocabulary(None, 0.01))
    assert set(counts) <= set(WORDS[:24])
    assert len(counts) > 10


def test_frequency_penalty_spreads_the_words() -> None:
    plain = draw(Vocabulary(None, None), sentences=50)
    penalised = draw(Vocabulary(None, None, Penalties(frequency=2.0)), sentences=50)
    assert penalised.most_common(1)[0][1] < plain.most_common(1)[0][1]


def test_logit_bias_raises_a_word_through_its_first_token() -> None:
    def first_tokens(word: str) -> set[int]:
        return {1} if word == "river" else {0}

    biased = draw(Vocabulary(None, None, Penalties(bias={1: 10.0}), first_tokens))
    assert biased.most_common(1)[0][0] == "river"
    banned = draw(Vocabulary(None, None, Penalties(bias={1: -100.0}), first_tokens))
    assert banned["river"] == 0


def test_top_alternatives_are_sorted_and_carry_the_separator() -> None:
    top = Vocabulary(None, None).top(3, " ")
    assert [text for text, _ in top] == [" the", " and", " of"]
    assert top[0][1] >= top[1][1] >= top[2][1]
    assert math.fsum(math.exp(lp) for _, lp in Vocabulary(None, None).top(len(WORDS), "")) == pytest.approx(1)
    assert Vocabulary(None, None).top(0, " ") == []
