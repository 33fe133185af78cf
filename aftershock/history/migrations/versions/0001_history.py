"""The first history schema: runs and their experiments' figures.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "aftershock_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(64), nullable=False, unique=True),
        sa.Column("started", sa.String(40)),
        sa.Column("finished", sa.String(40)),
        sa.Column("recorded_at", sa.Float, nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("namespace", sa.String(63)),
        sa.Column("deployment", sa.String(253)),
        sa.Column("images", sa.Text),
        sa.Column("profile", sa.String(200), nullable=False),
        sa.Column("kubernetes_version", sa.String(64)),
        sa.Column("nodes", sa.Integer),
        sa.Column("aftershock_version", sa.String(40)),
        sa.Column("verdict", sa.String(20)),
    )
    op.create_table(
        "aftershock_experiments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer,
                  sa.ForeignKey("aftershock_runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("experiment", sa.String(300), nullable=False),
        sa.Column("profile", sa.String(200), nullable=False),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("aborted", sa.Boolean, nullable=False),
        sa.Column("aborted_at_s", sa.Float),
        sa.Column("aborted_reason", sa.Text),
        sa.Column("fault", sa.String(100)),
        sa.Column("reason", sa.Text),
        sa.Column("during_longest_outage_ms", sa.Float),
        sa.Column("during_error_rate", sa.Float),
        sa.Column("during_p99_ms", sa.Float),
        sa.Column("after_longest_outage_ms", sa.Float),
        sa.Column("after_error_rate", sa.Float),
        sa.Column("after_p99_ms", sa.Float),
        sa.Column("recovery_s", sa.Float),
        sa.Column("phases", sa.Text),
        sa.Column("outages", sa.Text),
        sa.Column("learned", sa.Text),
    )
    op.create_index("ix_aftershock_experiments_key", "aftershock_experiments",
                    ["target", "experiment", "profile", "id"])


def downgrade() -> None:
    op.drop_index("ix_aftershock_experiments_key", "aftershock_experiments")
    op.drop_table("aftershock_experiments")
    op.drop_table("aftershock_runs")
