"""webhook endpoints owned by an organisation

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 10:12:41.318204
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing endpoints stay their key's (org_id NULL): making them the organisation's would send
    # them every other key's events, which whoever registered them never asked for.
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("org_id", sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f("ix_webhook_endpoints_org_id"), ["org_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_webhook_endpoints_org_id_organizations", "organizations", ["org_id"], ["id"]
        )


def downgrade() -> None:
    # An organisation's endpoints become the key's that made them (what they were before).
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_constraint("fk_webhook_endpoints_org_id_organizations", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_webhook_endpoints_org_id"))
        batch_op.drop_column("org_id")
