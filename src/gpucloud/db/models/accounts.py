"""Accounts' tables: users, signing keys, organisations, members, the audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from gpucloud.db.models.base import Base, utcnow


class User(Base):
    """A person who signs in to the management API (`gpucloud.accounts`). `password_hash` is an
    argon2id hash, never the password; `token_version` is part of every access token the user is
    issued, so bumping it (sign-out, password reset, disable) revokes all of them at once."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "usr_…"
    email: Mapped[str] = mapped_column(String(320), unique=True)  # kept lower-case
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class SigningKey(Base):
    """A secret the control plane generated for itself on first start (the access tokens' HS256
    key when none is configured); shared by every gateway through the database."""

    __tablename__ = "signing_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # what the key is for: "jwt"
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Organization(Base):
    """A team that owns API keys and has members (`OrgMember`). Its limits apply across all its
    keys, on top of each key's own; None means unlimited, money in micro-dollars like keys'."""

    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "org_…"
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    allowed_models: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    rpm_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tpm_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    token_quota: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    budget_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    budget_period: Mapped[str | None] = mapped_column(String(16), nullable=True)


class OrgMember(Base):
    """A user's role in an organisation: owner, admin, member or viewer."""

    __tablename__ = "org_members"

    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """One state-changing management call (gpucloud.accounts.audit): who, what, on what, how it
    ended, from where. Appended only: no route updates or deletes a row. Never a secret."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_org_id", "org_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)  # a key or user id, or "anonymous"
    action: Mapped[str] = mapped_column(String(120), index=True)  # "POST /api/keys/{key_id}"
    target: Mapped[str | None] = mapped_column(String(320), nullable=True)
    org_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    result: Mapped[str] = mapped_column(String(16))  # "success" or "failure"
    status: Mapped[int] = mapped_column(Integer)
    client_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_id: Mapped[str] = mapped_column(String(128))


class Invitation(Base):
    """An invitation to join an organisation with a role (`gpucloud.accounts.invitations`). The
    token is shown once to whoever made it; only its SHA-256 digest is kept. Used, revoked or past
    `expires_at`, it is refused."""

    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "inv_…"
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))  # kept lower-case
    role: Mapped[str] = mapped_column(String(16))
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(64))  # a user or key id
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    accepted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    accepted_by: Mapped[str | None] = mapped_column(String(40), nullable=True)  # the user's id
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class SsoLogin(Base):
    """A single sign-on started at the identity provider and not yet back (`accounts.oidc`): what
    the callback checks (the state, by digest) and needs (the nonce, the PKCE verifier). In the
    database so that the callback may reach any gateway; deleted when used, ignored past expiry."""

    __tablename__ = "sso_logins"

    state_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128))
    code_verifier: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(index=True)


class SsoCode(Base):
    """A one-time code that the dashboard exchanges for an access token after a single sign-on:
    kept by digest, good once, for about a minute (`accounts.oidc`)."""

    __tablename__ = "sso_codes"

    code_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)
