"""users, signing keys, organisations and their members, the audit log; keys move into the default
organisation

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 12:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gpucloud.db.models

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("token_version", sa.Integer(), nullable=False),
        sa.Column("created_at", gpucloud.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", gpucloud.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("password_changed_at", gpucloud.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_table(
        "signing_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("created_at", gpucloud.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )

    _organisations()
    _audit_log()


def _audit_log() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", gpucloud.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=120), nullable=False),
        sa.Column("target", sa.String(length=320), nullable=True),
        sa.Column("org_id", sa.String(length=40), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("client_ip", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_org_id", ["org_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_actor"), ["actor"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_action"), ["action"], unique=False)


def _organisations() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", gpucloud.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("allowed_models", sa.JSON(), nullable=True),
        sa.Column("rpm_limit", sa.Integer(), nullable=True),
        sa.Column("tpm_limit", sa.Integer(), nullable=True),
        sa.Column("token_quota", sa.BigInteger(), nullable=True),
        sa.Column("budget_micros", sa.BigInteger(), nullable=True),
        sa.Column("budget_period", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "org_members",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", gpucloud.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("org_id", "user_id"),
    )
    with op.batch_alter_table("org_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_org_members_user_id"), ["user_id"], unique=False)
    _default_organisation()
    _keys_into_default_organisation()


def _default_organisation() -> None:
    organizations = sa.table(
        "organizations",
        sa.column("id", sa.String()),
        sa.column("name", sa.String()),
        sa.column("created_at", gpucloud.db.models.UTCDateTime(timezone=True)),
    )
    op.bulk_insert(
        organizations,
        [
            {
                "id": gpucloud.db.models.DEFAULT_ORG_ID,
                "name": "default",
                "created_at": gpucloud.db.models.utcnow(),
            }
        ],
    )


def _keys_into_default_organisation() -> None:
    # Existing keys move into the default organisation, then the column becomes required.
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("org_id", sa.String(length=40), nullable=True))
    op.execute(sa.text("UPDATE api_keys SET org_id = :org").bindparams(org=gpucloud.db.models.DEFAULT_ORG_ID))
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.alter_column("org_id", existing_type=sa.String(length=40), nullable=False)
        batch_op.create_index(batch_op.f("ix_api_keys_org_id"), ["org_id"], unique=False)
        batch_op.create_foreign_key("fk_api_keys_org_id_organizations", "organizations", ["org_id"], ["id"])


def downgrade() -> None:
    op.drop_table("audit_log")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_constraint("fk_api_keys_org_id_organizations", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_api_keys_org_id"))
        batch_op.drop_column("org_id")
    with op.batch_alter_table("org_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_members_user_id"))
    op.drop_table("org_members")
    op.drop_table("organizations")
    op.drop_table("signing_keys")
    op.drop_table("users")
