"""Flasket form keys

A ticket or reply form sent twice (a double click, a reload) stores one row
(see CHANGELOG.md, "Unreleased"): a nullable ``form_key`` column with a unique
index on ``flasket_ticket`` and ``flasket_reply``. Existing rows keep no key.

Revision ID: c4f1a7d93e20
Revises: b7e4d2a91c35
Create Date: 2026-12-02 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c4f1a7d93e20"
down_revision = "b7e4d2a91c35"
branch_labels = None
depends_on = None


def upgrade():
    for table in ("flasket_ticket", "flasket_reply"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("form_key", sa.String(length=43), nullable=True))
            batch_op.create_index(f"ix_{table}_form_key", ["form_key"], unique=True)


def downgrade():
    for table in ("flasket_reply", "flasket_ticket"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_form_key")
            batch_op.drop_column("form_key")
