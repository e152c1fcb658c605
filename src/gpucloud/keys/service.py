"""`KeyService`: keys in the database, and authentication through the per-process key cache."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from gpucloud.db import ApiKey, Database, Organization
from gpucloud.db.models import DEFAULT_ORG_ID, utcnow
from gpucloud.errors import AuthenticationFailed, InvalidRequest, NotFound
from gpucloud.keycache import CachedKey, KeyCache, KeyChanges, LocalKeyChanges
from gpucloud.keys.principal import EDITABLE, ORG_LIMIT_COLUMNS, NewKey, Principal
from gpucloud.keys.secrets import (
    DISPLAY_LEN,
    KEY_PREFIX,
    OPERATOR_LABEL,
    OPERATOR_NAME,
    ROLES,
    WORKER_TOKEN_PREFIX,
    check_operator_key,
    digest,
    generate_key,
    well_formed,
)
from gpucloud.queue.protocol import Priority


class KeyService:
    """Keys in the database. Authentication goes through a `KeyCache`; every change is announced
    through `KeyChanges` after its commit, so every gateway drops the key from its cache."""

    def __init__(
        self, db: Database, cache: KeyCache | None = None, changes: KeyChanges | None = None
    ) -> None:
        self._db = db
        self._cache = cache if cache is not None else KeyCache(ttl_s=0.0)
        self._changes = changes if changes is not None else LocalKeyChanges()
        self._loading: dict[str, asyncio.Future[CachedKey | None]] = {}  # digest → its read in flight
        # Built once: constructing a statement costs more than running it (SQLAlchemy's Python).
        table = ApiKey.__table__
        org = Organization.__table__
        org_columns = (*ORG_LIMIT_COLUMNS, "allowed_models")  # the organisation's, in the key's cache
        with_org = select(table, *(org.c[name].label(f"org_{name}") for name in org_columns)).join(
            org, org.c.id == table.c.org_id
        )
        self._by_digest = with_org.where(table.c.digest == bindparam("digest"))
        self._by_id = with_org.where(table.c.id == bindparam("key_id"))

    async def start(self) -> None:
        """Follow other processes' key changes (cluster mode: Redis pub/sub)."""
        await self._changes.start(self._forget)

    async def close(self) -> None:
        await self._changes.close()

    def _forget(self, key_id: str | None) -> None:
        if key_id is None:
            self._cache.clear()
        else:
            self._cache.drop(key_id)

    async def create(
        self, new: NewKey, *, secret: str | None = None, label: str | None = None
    ) -> tuple[ApiKey, str]:
        """Store a key; returns the row and the secret, which is never retrievable again. `label`
        replaces the display prefix (an operator-chosen secret shows none of its characters)."""
        if new.role not in ROLES:
            raise InvalidRequest(f"role must be one of {', '.join(ROLES)}", param="role")
        if new.default_priority.rank < new.max_priority.rank:
            raise InvalidRequest("default_priority is above max_priority", param="default_priority")
        secret = secret or generate_key()
        row = ApiKey(
            id=f"key_{uuid.uuid4().hex[:24]}",
            name=new.name,
            prefix=label or secret[:DISPLAY_LEN],
            digest=digest(secret),
            role=new.role,
            allowed_models=list(new.allowed_models) if new.allowed_models is not None else None,
            default_priority=new.default_priority.value,
            max_priority=new.max_priority.value,
            created_at=utcnow(),
            expires_at=new.expires_at,
            rpm_limit=new.rpm_limit,
            tpm_limit=new.tpm_limit,
            max_concurrency=new.max_concurrency,
            token_quota=new.token_quota,
            budget_micros=new.budget_micros,
            budget_period=new.budget_period,
            org_id=new.org_id or DEFAULT_ORG_ID,
            owner_user_id=new.owner_user_id,
        )
        async with self._db.transaction() as connection:
            await connection.execute(insert(ApiKey).values(row.column_values()))
        return row, secret

    async def authenticate(self, secret: str) -> Principal:
        """The principal for `secret`, or `AuthenticationFailed` (same message for every cause)."""
        if (
            not secret
            or secret.startswith(WORKER_TOKEN_PREFIX)  # a worker token is never an API key
            or (secret.startswith(KEY_PREFIX) and not well_formed(secret))
        ):
            raise AuthenticationFailed("Incorrect API key provided.")
        key_digest = digest(secret)
        entry = self._cache.get(key_digest)
        if entry is None:
            entry = await self._load(key_digest)
            if entry is None:
                raise AuthenticationFailed("Incorrect API key provided.")
        if entry.revoked:
            raise AuthenticationFailed("Incorrect API key provided.")
        if entry.expires_at is not None and entry.expires_at <= utcnow():
            raise AuthenticationFailed("The API key has expired.")
        principal: Principal = entry.principal  # type: ignore[assignment]  # KeyCache keeps Principals
        return principal

    async def _load(self, key_digest: str) -> CachedKey | None:
        """Read the key's row once for all the requests that missed the cache together (after a
        change dropped it, every in-flight request of that key misses at the same moment). The read
        is a task of its own, so a requester that goes away does not cancel it for the others."""
        loading = self._loading.get(key_digest)
        if loading is None:
            loading = asyncio.ensure_future(self._read(key_digest))
            self._loading[key_digest] = loading
            loading.add_done_callback(lambda _done: self._loading.pop(key_digest, None))
        return await asyncio.shield(loading)

    async def _read(self, key_digest: str) -> CachedKey | None:
        async with self._db.read() as connection:
            row = (await connection.execute(self._by_digest, {"digest": key_digest})).first()
        if row is None:
            return None
        entry = CachedKey(
            key_id=row.id,
            principal=Principal.of(row),  # type: ignore[arg-type]  # a Core row has the same attributes
            expires_at=row.expires_at,
            revoked=row.revoked_at is not None,
            loaded_at=time.monotonic(),
        )
        self._cache.put(key_digest, entry)
        return entry

    async def list(self, owner_user_id: str | None = None) -> list[ApiKey]:
        """Every key, or those `owner_user_id` made for themselves."""
        query = select(ApiKey).order_by(ApiKey.created_at)
        if owner_user_id is not None:
            query = query.where(ApiKey.owner_user_id == owner_user_id)
        async with self._db.session() as session:
            return list((await session.execute(query)).scalars())

    async def usable_principal(self, key_id: str) -> Principal | None:
        """The principal of a key that may still be used (not revoked, not expired), with its
        organisation's limits, as authentication would give it; None otherwise. For work done on
        a key's behalf without its secret (batch lines)."""
        async with self._db.read() as connection:
            row = (await connection.execute(self._by_id, {"key_id": key_id})).first()
        if row is None or row.revoked_at is not None:
            return None
        if row.expires_at is not None and row.expires_at <= utcnow():
            return None
        return Principal.of(row)  # type: ignore[arg-type]  # a Core row has the same attributes

    async def get(self, key_id: str) -> ApiKey:
        async with self._db.session() as session:
            row = await session.get(ApiKey, key_id)
        if row is None:
            raise NotFound(f"No API key with id {key_id!r}.")
        return row

    async def update(self, key_id: str, changes: dict[str, object]) -> ApiKey:
        """Change the editable fields given (validated by the caller's schema); others stay."""
        unknown = set(changes) - EDITABLE
        if unknown:
            raise InvalidRequest(f"{sorted(unknown)[0]} cannot be changed", param=sorted(unknown)[0])
        row = await self.get(key_id)
        default = Priority(str(changes.get("default_priority", row.default_priority)))
        ceiling = Priority(str(changes.get("max_priority", row.max_priority)))
        if default.rank < ceiling.rank:
            raise InvalidRequest("default_priority is above max_priority", param="default_priority")
        if changes:
            async with self._db.transaction() as connection:
                await connection.execute(update(ApiKey).where(ApiKey.id == key_id).values(**changes))
            await self._changes.announce(key_id)
        return await self.get(key_id)

    async def revoke(self, key_id: str) -> ApiKey:
        async with self._db.transaction() as session:
            result = await session.execute(
                update(ApiKey)
                .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        if result.rowcount == 0:
            await self.get(key_id)  # raises NotFound for an unknown id; revoking twice is a no-op
        await self._changes.announce(key_id)
        return await self.get(key_id)

    async def bootstrap_admin(self, operator_key: str | None) -> str | None:
        """Make sure an admin can log in; returns a newly generated secret to print once, or None.

        With `operator_key` (GPUCLOUD_ADMIN_KEY, checked by `check_operator_key`) that key is
        registered as an admin if it is not yet, and every other operator key is revoked: changing
        the variable rotates the key. Without it, a key is generated only when no usable admin
        key exists.
        """
        if operator_key is not None:
            check_operator_key(operator_key)
            key_digest = digest(operator_key)
            if await self._find(key_digest) is None:
                # Replicas starting together may all try: the unique digest lets one win.
                with contextlib.suppress(IntegrityError):
                    await self.create(
                        NewKey(name=OPERATOR_NAME, role="admin", max_priority=Priority.HIGH),
                        secret=operator_key,
                        label=OPERATOR_LABEL,
                    )
            await self._retire_other_operator_keys(key_digest)
            return None
        if await self._has_usable_admin():
            return None
        _, secret = await self.create(
            NewKey(name="admin (generated)", role="admin", max_priority=Priority.HIGH)
        )
        return secret

    async def _retire_other_operator_keys(self, current: str) -> None:
        """Revoke the operator keys of earlier GPUCLOUD_ADMIN_KEY values, and show none of any
        operator key's characters (rows from before labels stored the first 11)."""
        operator = ApiKey.name == OPERATOR_NAME
        async with self._db.transaction() as connection:
            retired = await connection.execute(
                update(ApiKey)
                .where(operator, ApiKey.digest != current, ApiKey.revoked_at.is_(None))
                .values(revoked_at=utcnow())
                .returning(ApiKey.id)
            )
            retired_ids = list(retired.scalars())
            await connection.execute(
                update(ApiKey).where(operator, ApiKey.prefix != OPERATOR_LABEL).values(prefix=OPERATOR_LABEL)
            )
        for key_id in retired_ids:  # gateways still running with the old variable drop it too
            await self._changes.announce(key_id)

    async def _find(self, key_digest: str) -> ApiKey | None:
        async with self._db.session() as session:
            return (await session.execute(select(ApiKey).where(ApiKey.digest == key_digest))).scalar()

    async def _has_usable_admin(self) -> bool:
        now = utcnow()
        async with self._db.session() as session:
            rows = await session.execute(
                select(ApiKey).where(ApiKey.role == "admin", ApiKey.revoked_at.is_(None))
            )
            return any(r.expires_at is None or r.expires_at > now for r in rows.scalars())
