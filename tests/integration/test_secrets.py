"""A raw API key appears nowhere but in its creation response: not in the database, not in the
logs (the server runs at DEBUG), not in any other response."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from tests.conftest import MODEL, create_key
from tests.support import Server


def _database_text(server: Server) -> str:
    url = server.env.get("GPUCLOUD_DATABASE_URL")
    if url is None:  # SQLite: the file and its write-ahead log, byte for byte
        return "".join(
            p.read_bytes().decode("latin-1") for p in server.data_dir.glob("gpucloud.db*") if p.is_file()
        )

    async def dump() -> str:
        import asyncpg

        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            parts = []
            for table in ("api_keys", "jobs", "usage_records"):
                rows = await conn.fetch(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
                parts.append(repr([dict(r) for r in rows]))
            return "\n".join(parts)
        finally:
            await conn.close()

    return asyncio.run(dump())


def test_raw_keys_never_stored_logged_or_returned(server: Server) -> None:
    created = create_key(server, name="secret-scan")
    secret, key_id = str(created["key"]), str(created["id"])
    client = openai.OpenAI(base_url=server.v1, api_key=secret, max_retries=0)
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    for _ in client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2, stream=True
    ):
        pass
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")  # a near miss must not be logged either
    bad = openai.OpenAI(base_url=server.v1, api_key=wrong, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()

    auth = {"Authorization": f"Bearer {server.admin_key}"}
    responses = [
        httpx.get(f"{server.base_url}/api/keys", headers=auth).text,
        httpx.get(f"{server.base_url}/api/keys/{key_id}", headers=auth).text,
        httpx.get(f"{server.base_url}/api/me", headers={"Authorization": f"Bearer {secret}"}).text,
        httpx.get(f"{server.base_url}/api/usage", headers=auth).text,
        httpx.delete(f"{server.base_url}/api/keys/{key_id}", headers=auth).text,
    ]
    for text in responses:
        assert secret not in text
        assert server.admin_key not in text

    logs = server.logs()
    assert "DEBUG" in logs  # the scan means something only if the server logged at DEBUG
    for needle in (secret, wrong, server.admin_key, secret[11:30]):
        assert needle not in logs

    stored = _database_text(server)
    assert key_id in stored  # the scan reads the real rows
    for needle in (secret, server.admin_key, secret[11:30]):
        assert needle not in stored
