"""`OrgService`: organisations and their members.

An organisation owns API keys (`api_keys.org_id`) and has members, each with one role:
`owner` and `admin` manage its keys and members, `member` uses it, `viewer` only reads. The
default organisation (`DEFAULT_ORG_ID`, made by the migration) holds the keys made without one.
"""

from __future__ import annotations

import uuid
from typing import Literal, get_args

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from gpucloud.db import ApiKey, Database, Organization, OrgMember, User
from gpucloud.db.models import utcnow
from gpucloud.errors import Conflict, InvalidRequest, NotFound
from gpucloud.keycache import KeyChanges

OrgRole = Literal["owner", "admin", "member", "viewer"]
ORG_ROLES: tuple[str, ...] = get_args(OrgRole)
MANAGERS = ("owner", "admin")


LIMIT_FIELDS = frozenset(
    {"rpm_limit", "tpm_limit", "token_quota", "budget_micros", "budget_period", "allowed_models"}
)


class OrgService:
    def __init__(self, db: Database, changes: KeyChanges) -> None:
        self._db = db
        self._changes = changes

    async def set_limits(self, org_id: str, values: dict[str, object]) -> Organization:
        """Change the organisation's limits and allowed models (None: unlimited, any model). Its
        keys carry them in every gateway's key cache, so each of its keys is announced as changed."""
        await self.get(org_id)
        if values:
            async with self._db.transaction() as connection:
                await connection.execute(
                    update(Organization).where(Organization.id == org_id).values(**values)
                )
                key_ids = (
                    await connection.execute(select(ApiKey.id).where(ApiKey.org_id == org_id))
                ).scalars()
                changed = list(key_ids)
            for key_id in changed:
                await self._changes.announce(key_id)
        return await self.get(org_id)

    async def create(self, name: str, owner_user_id: str | None = None) -> Organization:
        """A new organisation; `owner_user_id` (the signed-in user who made it) becomes its owner."""
        row = Organization(id=f"org_{uuid.uuid4().hex[:24]}", name=name.strip(), created_at=utcnow())
        try:
            async with self._db.transaction() as connection:
                await connection.execute(insert(Organization).values(row.column_values()))
                if owner_user_id is not None:
                    member = {
                        "org_id": row.id,
                        "user_id": owner_user_id,
                        "role": "owner",
                        "created_at": utcnow(),
                    }
                    await connection.execute(insert(OrgMember).values(member))
        except IntegrityError:
            raise Conflict(f"An organisation named {row.name!r} exists.", param="name") from None
        return row

    async def listed(self, user_id: str | None = None) -> list[Organization]:
        """All organisations, or those `user_id` is a member of."""
        query = select(Organization).order_by(Organization.created_at)
        if user_id is not None:
            query = query.join(OrgMember, OrgMember.org_id == Organization.id).where(
                OrgMember.user_id == user_id
            )
        async with self._db.session() as session:
            return list((await session.execute(query)).scalars())

    async def get(self, org_id: str) -> Organization:
        async with self._db.session() as session:
            row = await session.get(Organization, org_id)
        if row is None:
            raise NotFound(f"No organisation with id {org_id!r}.")
        return row

    async def role_of(self, org_id: str, user_id: str) -> str | None:
        query = select(OrgMember.role).where(OrgMember.org_id == org_id, OrgMember.user_id == user_id)
        async with self._db.read() as connection:
            found = (await connection.execute(query)).first()
        return str(found[0]) if found is not None else None

    async def members(self, org_id: str) -> list[tuple[OrgMember, str]]:
        """The members with their emails, oldest first."""
        await self.get(org_id)
        query = (
            select(OrgMember, User.email)
            .join(User, User.id == OrgMember.user_id)
            .where(OrgMember.org_id == org_id)
            .order_by(OrgMember.created_at)
        )
        async with self._db.session() as session:
            return [(member, str(email)) for member, email in (await session.execute(query)).all()]

    async def add_member(self, org_id: str, user_id: str, role: str) -> OrgMember:
        check_role(role)
        await self.get(org_id)
        async with self._db.session() as session:
            if await session.get(User, user_id) is None:
                raise InvalidRequest(f"No user with id {user_id!r}.", param="user_id", code="user_not_found")
        row = OrgMember(org_id=org_id, user_id=user_id, role=role, created_at=utcnow())
        try:
            async with self._db.transaction() as connection:
                await connection.execute(insert(OrgMember).values(row.column_values()))
        except IntegrityError:
            raise Conflict(
                "The user is a member already; change its role instead.", param="user_id"
            ) from None
        return row

    async def set_role(self, org_id: str, user_id: str, role: str) -> None:
        check_role(role)
        statement = update(OrgMember).where(OrgMember.org_id == org_id, OrgMember.user_id == user_id)
        async with self._db.transaction() as connection:
            result = await connection.execute(statement.values(role=role))
        if result.rowcount == 0:
            raise NotFound(f"No member {user_id!r} in organisation {org_id!r}.")

    async def remove_member(self, org_id: str, user_id: str) -> None:
        statement = delete(OrgMember).where(OrgMember.org_id == org_id, OrgMember.user_id == user_id)
        async with self._db.transaction() as connection:
            result = await connection.execute(statement)
        if result.rowcount == 0:
            raise NotFound(f"No member {user_id!r} in organisation {org_id!r}.")


def check_role(role: str) -> None:
    if role not in ORG_ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ORG_ROLES)}.", param="role")
