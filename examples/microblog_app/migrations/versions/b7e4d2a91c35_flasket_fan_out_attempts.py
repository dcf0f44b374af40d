"""Flasket fan-out attempts

An event whose fan-out keeps raising is retried like a message and then given
up with its error kept (see CHANGELOG.md, "Unreleased"): four nullable or
defaulted columns on ``flasket_outbox_event``. Existing events start with no
attempts.

Revision ID: b7e4d2a91c35
Revises: 6c1e2f9a4b7d
Create Date: 2026-11-25 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import flasket.models

# revision identifiers, used by Alembic.
revision = "b7e4d2a91c35"
down_revision = "6c1e2f9a4b7d"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("flasket_outbox_event", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("attempts", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("next_attempt_at", flasket.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("failed_at", flasket.models.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade():
    with op.batch_alter_table("flasket_outbox_event", schema=None) as batch_op:
        batch_op.drop_column("failed_at")
        batch_op.drop_column("last_error")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("attempts")
