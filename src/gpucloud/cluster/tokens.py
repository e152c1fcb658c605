"""Worker tokens: the credentials worker agents use on the control plane's worker endpoints.

A token is `gcw_` + 43 base62 characters + a 6-character checksum (the API key format of
`gpucloud.keys` with its own prefix). Like keys, only the SHA-256 digest and a display prefix
are stored, and the secret is shown once. A worker token authenticates only the worker
endpoints, and those endpoints accept nothing else (docs/architecture.md §6).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import bindparam, insert, select, update

from gpucloud.db import Database, WorkerNode, WorkerToken
from gpucloud.db.models import utcnow
from gpucloud.errors import AuthenticationFailed, NotFound
from gpucloud.keys import DISPLAY_LEN, WORKER_TOKEN_PREFIX, digest, generate_secret, well_formed


@dataclass(frozen=True, slots=True)
class WorkerCaller:
    """Who is calling a worker endpoint: the token, without its secret."""

    token_id: str
    name: str


class WorkerTokenService:
    def __init__(self, db: Database) -> None:
        self._db = db
        table = WorkerToken.__table__
        self._by_digest = select(table.c.id, table.c.name, table.c.revoked_at).where(
            table.c.digest == bindparam("digest")
        )

    async def create(self, name: str) -> tuple[WorkerToken, str]:
        """Store a token; returns the row and the secret, which is never retrievable again."""
        secret = generate_secret(WORKER_TOKEN_PREFIX)
        row = WorkerToken(
            id=f"wtk_{uuid.uuid4().hex[:24]}",
            name=name,
            prefix=secret[: DISPLAY_LEN + 1],  # the same 8 characters of the body as a key shows
            digest=digest(secret),
            created_at=utcnow(),
        )
        async with self._db.transaction() as connection:
            await connection.execute(insert(WorkerToken).values(row.column_values()))
        return row, secret

    async def authenticate(self, secret: str) -> WorkerCaller:
        """The caller for `secret`, or `AuthenticationFailed` (one message for every cause)."""
        if not well_formed(secret, WORKER_TOKEN_PREFIX):  # API keys fail here, without the database
            raise AuthenticationFailed("Incorrect worker token provided.", code="invalid_worker_token")
        async with self._db.read() as connection:
            row = (await connection.execute(self._by_digest, {"digest": digest(secret)})).first()
        if row is None or row.revoked_at is not None:
            raise AuthenticationFailed("Incorrect worker token provided.", code="invalid_worker_token")
        return WorkerCaller(token_id=row.id, name=row.name)

    async def list(self) -> list[WorkerToken]:
        async with self._db.session() as session:
            rows = await session.execute(select(WorkerToken).order_by(WorkerToken.created_at))
            return list(rows.scalars())

    async def get(self, token_id: str) -> WorkerToken:
        async with self._db.session() as session:
            row = await session.get(WorkerToken, token_id)
        if row is None:
            raise NotFound(f"No worker token with id {token_id!r}.")
        return row

    async def revoke(self, token_id: str) -> WorkerToken:
        """Revoke a token: the next request with it gets 401, its workers' sessions end, and the
        worker ids it held are free to be registered by another token. Revoking twice is a no-op."""
        async with self._db.transaction() as connection:
            await connection.execute(
                update(WorkerToken)
                .where(WorkerToken.id == token_id, WorkerToken.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            # Its workers' sessions end with it (`cluster.sessions`): no beat is accepted for them.
            await connection.execute(
                update(WorkerNode).where(WorkerNode.token_id == token_id).values(session_digest=None)
            )
        return await self.get(token_id)
