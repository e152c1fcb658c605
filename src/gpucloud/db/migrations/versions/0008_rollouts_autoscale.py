"""deployments: rolling updates (spec versions, surge bounds, rollout state) and autoscaling

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 11:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("spec_version", sa.Integer(), server_default="1", nullable=False))
        # Existing rows get an empty history: a replica whose version is missing there runs the
        # deployment's current spec (see `deployments.rollout.spec_of`).
        batch_op.add_column(sa.Column("spec_history", sa.JSON(), server_default="{}", nullable=False))
        batch_op.add_column(sa.Column("max_surge", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("max_unavailable", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("rollout", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("autoscale", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("autoscale_status", sa.JSON(), nullable=True))
    with op.batch_alter_table("deployment_replicas", schema=None) as batch_op:
        batch_op.add_column(sa.Column("spec_version", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("deployment_replicas", schema=None) as batch_op:
        batch_op.drop_column("spec_version")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        for column in (
            "autoscale_status",
            "autoscale",
            "rollout",
            "max_unavailable",
            "max_surge",
            "spec_history",
            "spec_version",
        ):
            batch_op.drop_column(column)
