"""api keys owned by the member who made them

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 14:55:19.064633
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_user_id", sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f("ix_api_keys_owner_user_id"), ["owner_user_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_owner_user_id"))
        batch_op.drop_column("owner_user_id")
