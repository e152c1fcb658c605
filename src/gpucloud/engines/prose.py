"""The simulated model's prose: a Zipf word distribution shaped by the sampling parameters.

`Vocabulary` is one request's distribution over a built-in word list: temperature and top_p shape
it, `presence_penalty` / `frequency_penalty` lower the weight of words already written (as OpenAI
lowers their logits: `logit -= frequency * count + presence * (count > 0)`), and `logit_bias`
raises or lowers the words whose first token it names. `prose` turns it into endless text in
pieces, each with its log probability and the most likely alternatives at that point (for
`logprobs`), all drawn from one seeded generator so that a seeded request is reproducible.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator
from typing import NamedTuple

# Most frequent first: a word's weight falls with its rank (Zipf). The non-ASCII words sit at ranks
# where a typical answer contains a few of them; 日本語, 東京, 世界 and Ελλάδα have tokens that end
# in the middle of a character.
# fmt: off
WORDS: tuple[str, ...] = (
    "the", "and", "of", "to", "a", "in", "is", "that", "it", "for",
    "as", "with", "was", "on", "be", "by", "this", "are", "from", "at",
    "or", "an", "not", "which", "but", "café", "have", "they", "日本語", "one",
    "naïve", "all", "their", "has", "more", "résumé", "can", "東京", "about", "over",
    "Zürich", "into", "will", "世界", "other", "façade", "time", "Ελλάδα", "system", "model",
    "people", "data", "new", "first", "also", "after", "many", "each", "some", "these",
    "would", "through", "between", "world", "work", "while", "before", "where", "every", "small",
    "large", "city", "water", "river", "light", "morning", "evening", "history", "language", "music",
    "garden", "market", "window", "question", "answer", "problem", "result", "process", "number", "part",
    "simple", "careful", "quiet", "bright", "ancient", "modern", "gentle", "quick", "steady", "clear",
    "engine", "signal", "network", "machine", "memory", "token", "request", "server", "cluster", "queue",
    "travels", "builds", "writes", "reads", "finds", "keeps", "moves", "grows", "opens", "carries",
    "often", "always", "rarely", "slowly", "together", "again", "almost", "already", "perhaps", "nearly",
    "mountain", "forest", "ocean", "valley", "island", "bridge", "station", "library", "kitchen", "harbor",
    "theory", "method", "pattern", "measure", "example", "detail", "picture", "story", "reason", "idea",
    "crème", "jalapeño", "señor", "smörgåsbord", "déjà", "piñata", "fiancée", "Kraków", "São", "brûlée",
)
# fmt: on

_ZIPF_EXPONENT = 0.8  # flatter than natural English, so that text is varied
_TEMPERATURE_RANGE = (0.7, 1.5)  # temperature nudges the exponent; it never makes text degenerate
_MIN_NUCLEUS = 24  # top_p keeps at least this many words
_SENTENCE_WORDS = (4, 16)
_COMMA_P = 0.08
_ENDINGS = ((".", 85), ("?", 8), ("!", 7))

Alternatives = list[tuple[str, float]]


class Piece(NamedTuple):
    """A word with its leading separator, or punctuation; `ends_sentence` marks where an answer
    may end naturally."""

    text: str
    ends_sentence: bool
    logprob: float
    top: Alternatives


class Penalties(NamedTuple):
    presence: float = 0.0
    frequency: float = 0.0
    bias: dict[int, float] | None = None  # token id → logit bias


class Vocabulary:
    """The word distribution of one request (see module docstring)."""

    def __init__(
        self,
        temperature: float | None,
        top_p: float | None,
        penalties: Penalties | None = None,
        first_tokens: Callable[[str], set[int]] | None = None,
    ) -> None:
        low, high = _TEMPERATURE_RANGE
        effective = min(max(1.0 if temperature is None else temperature, low), high)
        exponent = _ZIPF_EXPONENT / effective
        weights = [1.0 / (rank + 1) ** exponent for rank in range(len(WORDS))]
        if top_p is not None and 0 < top_p < 1:
            weights = _nucleus(weights, top_p)
        self._words = WORDS[: len(weights)]
        self._penalties = penalties or Penalties()
        bias = self._penalties.bias or {}
        if bias and first_tokens is not None:  # logit bias multiplies a word's weight by e^bias
            weights = [
                w * math.exp(sum(bias.get(t, 0.0) for t in first_tokens(word)))
                for w, word in zip(weights, self._words, strict=True)
            ]
        self._weights = weights
        self._cumulative = list(itertools.accumulate(weights))
        self._counts = [0] * len(weights)
        self._adaptive = bool(self._penalties.presence or self._penalties.frequency)

    def sentence(self, rng: random.Random) -> list[tuple[str, float]]:
        """The words of one sentence, each with its log probability when it was drawn."""
        size = rng.randint(*_SENTENCE_WORDS)
        if not self._adaptive:
            chosen = rng.choices(range(len(self._words)), cum_weights=self._cumulative, k=size)
            total = self._cumulative[-1]
            return [(self._words[i], math.log(self._weights[i] / total)) for i in chosen]
        out = []
        for _ in range(size):  # penalties change the distribution after every word
            weights = self._penalised()
            i = rng.choices(range(len(self._words)), weights=weights)[0]
            out.append((self._words[i], math.log(weights[i] / sum(weights))))
            self._counts[i] += 1
        return out

    def _penalised(self) -> list[float]:
        presence, frequency = self._penalties.presence, self._penalties.frequency
        return [
            w * math.exp(-(frequency * c + (presence if c else 0.0)))
            for w, c in zip(self._weights, self._counts, strict=True)
        ]

    def top(self, n: int, separator: str) -> Alternatives:
        """The `n` most likely next words now, with their log probabilities."""
        if n <= 0:
            return []
        weights = self._penalised() if self._adaptive else self._weights
        total = sum(weights)
        best = sorted(range(len(weights)), key=lambda i: -weights[i])[:n]
        return [(separator + self._words[i], math.log(weights[i] / total)) for i in best]


def _nucleus(weights: list[float], top_p: float) -> list[float]:
    """The most likely words whose probability adds up to `top_p` (at least `_MIN_NUCLEUS`)."""
    total = sum(weights)
    kept = 0.0
    for count, weight in enumerate(weights, start=1):
        kept += weight
        if kept / total >= top_p:
            return weights[: max(count, _MIN_NUCLEUS)]
    return weights


def prose(rng: random.Random, words: Vocabulary, top_n: int = 0) -> Iterator[Piece]:
    """Endless text in pieces; `top_n` alternatives per piece (0: none, and none computed)."""
    separator = ""
    endings = [text for text, _ in _ENDINGS]
    weights = [weight for _, weight in _ENDINGS]
    ending_top = [(text, math.log(w / 100)) for text, w in _ENDINGS][:top_n]
    while True:
        sentence = words.sentence(rng)
        for position, (word, logprob) in enumerate(sentence):
            if position == 0:
                word = word[0].upper() + word[1:]
            yield Piece(separator + word, False, logprob, words.top(top_n, separator))
            separator = " "
            if position < len(sentence) - 1 and rng.random() < _COMMA_P:
                yield Piece(",", False, math.log(_COMMA_P), [(",", math.log(_COMMA_P))][:top_n])
        ending = rng.choices(endings, weights=weights)[0]
        yield Piece(ending, True, math.log(dict(_ENDINGS)[ending] / 100), ending_top)
        roll = rng.random()
        separator = "\n\n" if roll < 0.1 else "\n" if roll < 0.15 else " "
