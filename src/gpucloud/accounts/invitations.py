"""`InvitationService`: invitations to join an organisation with a role.

An owner or admin of an organisation (or a platform admin) invites an email address; the token is
returned once (the dashboard's link is `/?invite=<token>`) and only its SHA-256 digest is stored.
Accepting it with a password creates the user with that email — or, when the email already has
an account, checks that account's password — and makes it a member with the invited role, in one
transaction that also marks the invitation used, so a token is good exactly once. Expired,
revoked and used tokens are refused with a message saying which.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gpucloud.accounts.orgs import OrgService, check_role
from gpucloud.accounts.passwords import check_policy
from gpucloud.accounts.users import UserService, normalise_email
from gpucloud.db import Database, Invitation, OrgMember, User
from gpucloud.db.models import utcnow
from gpucloud.errors import AuthenticationFailed, Conflict, InvalidRequest, NotFound

TOKEN_PREFIX = "gci_"  # noqa: S105 (a prefix, not a secret)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


InvitationStatus = Literal["pending", "accepted", "revoked", "expired"]


def status_of(row: Invitation) -> InvitationStatus:
    """Where an invitation stands, derived from its times."""
    if row.accepted_at is not None:
        return "accepted"
    if row.revoked_at is not None:
        return "revoked"
    return "expired" if row.expires_at <= utcnow() else "pending"


@dataclass(frozen=True, slots=True)
class NewInvitation:
    org_id: str
    email: str
    role: str
    created_by: str


class InvitationService:
    """See the module docstring."""

    def __init__(self, db: Database, users: UserService, orgs: OrgService, *, ttl_s: int) -> None:
        self._db = db
        self._users = users
        self._orgs = orgs
        self._ttl_s = ttl_s

    async def create(self, new: NewInvitation) -> tuple[Invitation, str]:
        """The invitation and its token (shown once)."""
        check_role(new.role)
        email = normalise_email(new.email)
        await self._orgs.get(new.org_id)
        existing = await self._users.find(email)
        if existing is not None and await self._orgs.role_of(new.org_id, existing.id) is not None:
            raise Conflict(f"{email} is a member of the organisation already.", param="email")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        row = Invitation(
            id=f"inv_{uuid.uuid4().hex[:24]}",
            org_id=new.org_id,
            email=email,
            role=new.role,
            token_digest=digest(token),
            created_by=new.created_by[:64],
            created_at=now,
            expires_at=now + timedelta(seconds=self._ttl_s),
        )
        async with self._db.transaction() as connection:
            await connection.execute(insert(Invitation).values(row.column_values()))
        return row, token

    async def listed(self, org_id: str) -> list[Invitation]:
        """The organisation's invitations, newest first."""
        await self._orgs.get(org_id)
        query = select(Invitation).where(Invitation.org_id == org_id).order_by(Invitation.created_at.desc())
        async with self._db.session() as session:
            return list((await session.execute(query)).scalars())

    async def revoke(self, org_id: str, invitation_id: str) -> Invitation:
        """Revoke a pending invitation (a used one stays as it is: 409)."""
        row = await self._get(org_id, invitation_id)
        if row.accepted_at is not None:
            raise Conflict("The invitation was accepted already; remove the member instead.")
        if row.revoked_at is None:
            statement = update(Invitation).where(
                Invitation.id == invitation_id, Invitation.accepted_at.is_(None)
            )
            async with self._db.transaction() as connection:
                await connection.execute(statement.values(revoked_at=utcnow()))
        return await self._get(org_id, invitation_id)

    async def find(self, token: str) -> Invitation:
        """The pending invitation the token names, or a 400 saying why it is not usable."""
        async with self._db.session() as session:
            found = await session.execute(select(Invitation).where(Invitation.token_digest == digest(token)))
            row = found.scalars().first()
        if row is None:
            raise InvalidRequest("The invitation is not valid.", param="token", code="invalid_invitation")
        status = status_of(row)
        if status != "pending":
            raise InvalidRequest(
                f"The invitation was {status}; ask for a new one.", param="token", code=f"invitation_{status}"
            )
        return row

    async def accept(self, token: str, password: str) -> tuple[Invitation, User]:
        """Join the organisation (see the module docstring); returns the invitation and the user."""
        row = await self.find(token)
        user = await self._users.find(row.email)
        fresh: User | None = None
        if user is None:
            check_policy(password)
            fresh = user = self._new_user(row.email, await self._users.passwords.hash(password))
        elif user.disabled_at is not None or not await self._users.passwords.verify(
            user.password_hash, password
        ):
            raise AuthenticationFailed(
                f"{row.email} has an account: accept with its password.", code="invalid_credentials"
            )
        try:
            async with self._db.transaction() as connection:
                await self._claim(connection, row, user.id)
                if fresh is not None:
                    await connection.execute(insert(User).values(fresh.column_values()))
                await self._join(connection, row, user.id)
        except IntegrityError:  # the same email signed up at the same moment
            raise Conflict(f"A user with the email {row.email!r} exists.", param="token") from None
        return row, user

    async def _claim(self, connection: AsyncConnection, row: Invitation, user_id: str) -> None:
        """Mark the invitation used, if it still is pending: the one step that makes it single-use."""
        statement = update(Invitation).where(
            Invitation.id == row.id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > utcnow(),
        )
        result = await connection.execute(statement.values(accepted_at=utcnow(), accepted_by=user_id))
        if result.rowcount != 1:
            raise InvalidRequest(
                "The invitation was used or revoked; ask for a new one.",
                param="token",
                code="invitation_used",
            )

    async def _join(self, connection: AsyncConnection, row: Invitation, user_id: str) -> None:
        """Add the membership unless the user is a member already (its role then stays)."""
        query = select(OrgMember.role).where(OrgMember.org_id == row.org_id, OrgMember.user_id == user_id)
        if (await connection.execute(query)).first() is None:
            member = {"org_id": row.org_id, "user_id": user_id, "role": row.role, "created_at": utcnow()}
            await connection.execute(insert(OrgMember).values(member))

    def _new_user(self, email: str, password_hash: str) -> User:
        return User(
            id=f"usr_{uuid.uuid4().hex[:24]}",
            email=email,
            password_hash=password_hash,
            is_admin=False,
            token_version=0,
            created_at=utcnow(),
        )

    async def _get(self, org_id: str, invitation_id: str) -> Invitation:
        async with self._db.session() as session:
            row = await session.get(Invitation, invitation_id)
        if row is None or row.org_id != org_id:
            raise NotFound(f"No invitation with id {invitation_id!r}.")
        return row
