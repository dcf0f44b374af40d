"""Flasket statuses

Statuses are configured (``FLASKET_STATUSES``, see CHANGELOG.md, "Unreleased"):
``flasket_ticket.status`` holds the configured status and the new ``state`` its
kind (open or closed), which the lists filter on; ``resolution`` says why a
closed ticket was closed. Existing tickets keep their status ("open" or
"closed", both statuses of the default set) and get its kind. The open and
closed lists get indexes on ``state``; those on ``status`` stay for the list of
one status, but the author's, which now reads ``state``.

Revision ID: f3c9a2d7e5b1
Revises: e8b2c6f4a1d3
Create Date: 2026-12-07 14:10:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "f3c9a2d7e5b1"
down_revision = "e8b2c6f4a1d3"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ALTER TABLE, no batch: SQLite adds these columns in place, keeping the table's
    # AUTOINCREMENT and its triggers.
    op.add_column(
        "flasket_ticket",
        sa.Column("state", sa.String(length=8), server_default="open", nullable=False),
    )
    op.add_column("flasket_ticket", sa.Column("resolution", sa.String(length=16), nullable=True))
    op.execute("UPDATE flasket_ticket SET state = 'closed' WHERE status = 'closed'")
    op.create_index(
        "ix_flasket_ticket_state_updated", "flasket_ticket", ["state", "updated_at", "id"]
    )
    op.create_index("ix_flasket_ticket_state_id", "flasket_ticket", ["state", "id"])
    op.create_index("ix_flasket_ticket_author_state", "flasket_ticket", ["author_id", "state"])
    op.drop_index("ix_flasket_ticket_author_status", table_name="flasket_ticket")


def downgrade():
    # Statuses other than open and closed have no place in the older schema: their kind
    # decides.
    op.execute("UPDATE flasket_ticket SET status = state WHERE status NOT IN ('open', 'closed')")
    op.create_index("ix_flasket_ticket_author_status", "flasket_ticket", ["author_id", "status"])
    op.drop_index("ix_flasket_ticket_author_state", table_name="flasket_ticket")
    op.drop_index("ix_flasket_ticket_state_id", table_name="flasket_ticket")
    op.drop_index("ix_flasket_ticket_state_updated", table_name="flasket_ticket")
    if op.get_context().dialect.name == "sqlite":
        # SQLite 3.35+ drops an unindexed column in place; a batch rebuild would lose the
        # table's AUTOINCREMENT and triggers.
        op.execute("ALTER TABLE flasket_ticket DROP COLUMN resolution")
        op.execute("ALTER TABLE flasket_ticket DROP COLUMN state")
    else:
        op.drop_column("flasket_ticket", "resolution")
        op.drop_column("flasket_ticket", "state")
