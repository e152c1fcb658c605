"""Worker tokens on a real database: a token authenticates only as itself, API keys and revoked
or mistyped tokens are refused alike, and revoking ends its workers' sessions."""

from __future__ import annotations

import pytest

from gpucloud.cluster.tokens import WorkerCaller, WorkerTokenService
from gpucloud.db import Database
from gpucloud.errors import AuthenticationFailed, NotFound
from gpucloud.keys import WORKER_TOKEN_PREFIX, KeyService, NewKey, digest, generate_secret


async def test_a_token_authenticates_and_stores_only_its_digest(db: Database) -> None:
    tokens = WorkerTokenService(db)
    row, secret = await tokens.create("rack-1")
    assert secret.startswith(WORKER_TOKEN_PREFIX)
    assert (row.digest, row.prefix) == (digest(secret), secret[:12])
    assert await tokens.authenticate(secret) == WorkerCaller(row.id, "rack-1")
    assert [t.id for t in await tokens.list()] == [row.id]


async def test_api_keys_unknown_mistyped_and_revoked_tokens_are_refused_alike(db: Database) -> None:
    tokens = WorkerTokenService(db)
    row, secret = await tokens.create("rack-1")
    _, api_key = await KeyService(db).create(NewKey(name="k", role="admin"))
    mistyped = secret[:-1] + ("a" if secret[-1] != "a" else "b")
    revoked = await tokens.revoke(row.id)
    assert revoked.revoked_at is not None
    assert (await tokens.revoke(row.id)).revoked_at == revoked.revoked_at
    for bad in (secret, api_key, mistyped, generate_secret(WORKER_TOKEN_PREFIX), ""):
        with pytest.raises(AuthenticationFailed) as refused:
            await tokens.authenticate(bad)
        assert (refused.value.code, refused.value.message) == (
            "invalid_worker_token",
            "Incorrect worker token provided.",
        )


async def test_unknown_token_ids_are_not_found(db: Database) -> None:
    with pytest.raises(NotFound):
        await WorkerTokenService(db).get("wtk_missing")
