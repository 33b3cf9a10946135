"""Job leases across processes, translated stages and errors, the vault's folded search and
a video's parts, and the engine's record (what releases before migrations added by hand:
each is added only where it is missing, so a database any of them made comes out the same).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = (
    ("jobs", sa.Column("owner", sa.String(120), nullable=True)),
    ("jobs", sa.Column("heartbeat_at", sa.DateTime(), nullable=True)),
    (
        "jobs",
        sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()),
    ),
    ("jobs", sa.Column("stage_i18n", sa.JSON(), nullable=True)),
    ("jobs", sa.Column("error_i18n", sa.JSON(), nullable=True)),
    ("assets", sa.Column("search_text", sa.Text(), nullable=True)),
    ("assets", sa.Column("part_of", sa.String(40), nullable=True)),
)
INDEXES = (("ix_jobs_owner", "jobs", "owner"), ("ix_assets_part_of", "assets", "part_of"))


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, column in COLUMNS:
        if column.name not in {c["name"] for c in inspector.get_columns(table)}:
            op.add_column(table, column)
    for name, table, column in INDEXES:
        if name not in {i["name"] for i in inspector.get_indexes(table)}:
            op.create_index(name, table, [column])
    if "engine" not in inspector.get_table_names():
        op.create_table(
            "engine",
            sa.Column("key", sa.String(20), primary_key=True),
            sa.Column("owner", sa.String(120), nullable=False),
            sa.Column("host", sa.String(255), nullable=False),
            sa.Column("pid", sa.Integer(), nullable=False),
            sa.Column("url", sa.String(255), nullable=False),
            sa.Column("token", sa.String(255), nullable=False),
            sa.Column("started_at", sa.DateTime(), nullable=False),
            sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        )


def downgrade() -> None:
    op.drop_table("engine")
    for name, table, _column in INDEXES:
        op.drop_index(name, table)
    for table, column in reversed(COLUMNS):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column.name)
