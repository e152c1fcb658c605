"""invitations to organisations; single sign-on (pending logins, one-time codes)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 14:28:42.962052
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gpucloud.db.models

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _sso_logins()
    _invitations()
    _sso_codes()


def _sso_logins() -> None:
    op.create_table(
        "sso_logins",
        sa.Column("state_digest", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("expires_at", gpucloud.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("state_digest"),
    )
    with op.batch_alter_table("sso_logins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sso_logins_expires_at"), ["expires_at"], unique=False)


def _invitations() -> None:
    op.create_table(
        "invitations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", gpucloud.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", gpucloud.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", gpucloud.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("accepted_by", sa.String(length=40), nullable=True),
        sa.Column("revoked_at", gpucloud.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_digest"),
    )
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invitations_org_id"), ["org_id"], unique=False)


def _sso_codes() -> None:
    op.create_table(
        "sso_codes",
        sa.Column("code_digest", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("expires_at", gpucloud.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", gpucloud.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("code_digest"),
    )
    with op.batch_alter_table("sso_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sso_codes_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("sso_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sso_codes_expires_at"))

    op.drop_table("sso_codes")
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invitations_org_id"))

    op.drop_table("invitations")
    with op.batch_alter_table("sso_logins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sso_logins_expires_at"))

    op.drop_table("sso_logins")
