"""`UserService`: users in the database — create, list, disable, delete, reset a password.

Every change that affects sign-in (disable, delete, a new password, sign-out) bumps the user's
`token_version` and is announced after its commit (`KeyChanges`, the channel API key changes use),
so every gateway drops the user from its cache and the user's access tokens stop working at once.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from gpucloud.accounts.passwords import Passwords, check_policy
from gpucloud.db import ApiKey, Database, OrgMember, User
from gpucloud.db.models import utcnow
from gpucloud.errors import Conflict, InvalidRequest, NotFound
from gpucloud.keycache import KeyChanges

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def normalise_email(email: str, param: str = "email") -> str:
    email = email.strip().lower()
    if len(email) > 320 or not _EMAIL.match(email):
        raise InvalidRequest("email must be an email address, like ada@example.com.", param=param)
    return email


@dataclass(frozen=True, slots=True)
class NewUser:
    email: str
    password: str
    is_admin: bool = False


class UserService:
    """Users' rows; see the module docstring for how changes reach the gateways."""

    def __init__(self, db: Database, changes: KeyChanges, passwords: Passwords | None = None) -> None:
        self._db = db
        self._changes = changes
        self.passwords = passwords or Passwords()

    async def create(self, new: NewUser) -> User:
        email = normalise_email(new.email)
        check_policy(new.password)
        row = User(
            id=f"usr_{uuid.uuid4().hex[:24]}",
            email=email,
            password_hash=await self.passwords.hash(new.password),
            is_admin=new.is_admin,
            token_version=0,
            created_at=utcnow(),
        )
        try:
            async with self._db.transaction() as connection:
                await connection.execute(insert(User).values(row.column_values()))
        except IntegrityError:
            raise Conflict(f"A user with the email {email!r} exists.", param="email") from None
        return row

    async def list(self) -> list[User]:
        async with self._db.session() as session:
            return list((await session.execute(select(User).order_by(User.created_at))).scalars())

    async def get(self, user_id: str) -> User:
        async with self._db.session() as session:
            row = await session.get(User, user_id)
        if row is None:
            raise NotFound(f"No user with id {user_id!r}.")
        return row

    async def find(self, email: str) -> User | None:
        async with self._db.session() as session:
            rows = await session.execute(select(User).where(User.email == email.strip().lower()))
            return rows.scalars().first()

    async def update(
        self, user_id: str, *, disabled: bool | None = None, is_admin: bool | None = None
    ) -> User:
        """Disable or enable the user, make or unmake a platform admin; both revoke its tokens."""
        values: dict[str, object] = {}
        if disabled is not None:
            values["disabled_at"] = utcnow() if disabled else None
        if is_admin is not None:
            values["is_admin"] = is_admin
        if values:
            await self._change(user_id, values)
        return await self.get(user_id)

    async def reset_password(self, user_id: str, password: str) -> User:
        check_policy(password)
        password_hash = await self.passwords.hash(password)
        await self._change(user_id, {"password_hash": password_hash, "password_changed_at": utcnow()})
        return await self.get(user_id)

    async def revoke_tokens(self, user_id: str) -> None:
        """Sign the user out everywhere: every access token issued so far stops working."""
        await self._change(user_id, {})

    async def delete(self, user_id: str) -> None:
        """Delete the user and its memberships, and revoke the API keys it made for itself."""
        revoke = (
            update(ApiKey)
            .where(ApiKey.owner_user_id == user_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .returning(ApiKey.id)
        )
        async with self._db.transaction() as connection:
            await connection.execute(delete(OrgMember).where(OrgMember.user_id == user_id))
            result = await connection.execute(delete(User).where(User.id == user_id))
            if result.rowcount == 0:
                raise NotFound(f"No user with id {user_id!r}.")
            revoked = list((await connection.execute(revoke)).scalars())
        for key_id in [user_id, *revoked]:  # every gateway drops the user and the keys
            await self._changes.announce(key_id)

    async def _change(self, user_id: str, values: dict[str, object]) -> None:
        """Apply `values` and bump the token version in one statement, then announce it."""
        statement = (
            update(User).where(User.id == user_id).values(**values, token_version=User.token_version + 1)
        )
        async with self._db.transaction() as connection:
            result = await connection.execute(statement)
        if result.rowcount == 0:
            raise NotFound(f"No user with id {user_id!r}.")
        await self._changes.announce(user_id)
