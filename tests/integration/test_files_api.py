"""The Files API on a live embedded server with the official SDK: upload, retrieve, list, content,
delete; a key sees only its own files; batch files are checked line by line at upload (a 400 that
names the first bad line); the size bound."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MODEL, create_key
from tests.support import Server, error_body, make_server

# Deliberately outside the SDK's purposes: the server must refuse it with a 400 naming `purpose`.
NO_SUCH_PURPOSE: Any = "nonsense"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = make_server(tmp_path_factory.mktemp("files"), env={"GPUCLOUD_FILES__MAX_BYTES": "200000"})
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _client(server: Server, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key=key or str(create_key(server)["key"]), max_retries=0)


def _line(custom_id: str, **body: object) -> str:
    request = {"model": MODEL, "messages": [{"role": "user", "content": custom_id}], **body}
    return json.dumps(
        {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": request}
    )


def test_upload_retrieve_list_content_delete(server: Server) -> None:
    client = _client(server)
    data = ("\n".join(_line(f"req-{i}") for i in range(50)) + "\n").encode()
    created = client.files.create(file=("requests.jsonl", io.BytesIO(data)), purpose="batch")
    assert created.id.startswith("file-")
    assert (created.bytes, created.filename, created.purpose) == (len(data), "requests.jsonl", "batch")
    assert client.files.retrieve(created.id).id == created.id
    assert client.files.content(created.id).content == data
    other = client.files.create(file=("notes.txt", io.BytesIO(b"free text")), purpose="user_data")
    listed = [f.id for f in client.files.list()]
    assert listed == [other.id, created.id]  # newest first
    assert [f.id for f in client.files.list(purpose="batch")] == [created.id]
    stored = list((server.data_dir / "objects" / "files").iterdir())
    assert {p.name for p in stored} == {created.id, other.id}  # the bytes live in the data dir
    deleted = client.files.delete(created.id)
    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(created.id)
    assert not (server.data_dir / "objects" / "files" / created.id).exists()


def test_another_keys_file_is_a_404(server: Server) -> None:
    owner, stranger = _client(server), _client(server)
    created = owner.files.create(file=("a.jsonl", io.BytesIO(_line("x").encode())), purpose="batch")
    for call in (stranger.files.retrieve, stranger.files.content, stranger.files.delete):
        with pytest.raises(openai.NotFoundError):
            call(created.id)
    assert created.id not in [f.id for f in stranger.files.list()]
    assert owner.files.retrieve(created.id).id == created.id


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps(["a", "list"]), "not a JSON object"),
        (
            json.dumps({"method": "POST", "url": "/v1/chat/completions", "body": {"model": MODEL}}),
            "custom_id",
        ),
        (
            json.dumps({"custom_id": "z", "method": "GET", "url": "/v1/chat/completions", "body": {}}),
            "method",
        ),
        (
            json.dumps({"custom_id": "z", "method": "POST", "url": "/v1/images", "body": {"model": MODEL}}),
            "url",
        ),
        (json.dumps({"custom_id": "z", "method": "POST", "url": "/v1/completions", "body": {}}), "model"),
        (_line("req-0"), "used by an earlier line"),
    ],
)
def test_a_bad_batch_line_is_a_400_naming_it(server: Server, bad: str, why: str) -> None:
    lines = [_line("req-0"), "", _line("req-1"), bad, "also bad"]  # line 4 is the first bad one
    r = httpx.post(
        f"{server.v1}/files",
        headers={"Authorization": f"Bearer {server.admin_key}"},
        files={"file": ("in.jsonl", "\n".join(lines).encode())},
        data={"purpose": "batch"},
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "file"
    assert error["message"].startswith("Line 4 of the batch input file is invalid")
    assert why in error["message"]


def test_refused_uploads(server: Server) -> None:
    client = _client(server, server.admin_key)
    before = {f.id for f in client.files.list()}
    with pytest.raises(openai.BadRequestError) as too_big:
        client.files.create(file=("big.txt", io.BytesIO(b"x" * 200_001)), purpose="user_data")
    assert error_body(too_big.value)["code"] == "file_too_large"
    with pytest.raises(openai.BadRequestError) as purpose:
        client.files.create(file=("a.txt", io.BytesIO(b"x")), purpose=NO_SUCH_PURPOSE)
    assert error_body(purpose.value)["param"] == "purpose"
    with pytest.raises(openai.BadRequestError) as empty:
        client.files.create(file=("a.jsonl", io.BytesIO(b"\n\n")), purpose="batch")
    assert error_body(empty.value)["code"] == "empty_file"
    auth = {"Authorization": f"Bearer {server.admin_key}"}
    no_file = httpx.post(f"{server.v1}/files", headers=auth, data={"purpose": "batch"})
    assert no_file.status_code == 400
    assert no_file.json()["error"]["param"] == "file"
    huge = httpx.post(
        f"{server.v1}/files",
        headers=auth,
        files={"file": ("h", b"x" * 400_000)},
        data={"purpose": "user_data"},
    )
    assert huge.status_code == 413  # beyond the upload bound: refused before it is read
    assert {f.id for f in client.files.list()} == before  # nothing refused was kept
    assert not [
        p for p in (Path(server.data_dir) / "objects").rglob("*") if p.is_file() and p.name.startswith(".")
    ]
