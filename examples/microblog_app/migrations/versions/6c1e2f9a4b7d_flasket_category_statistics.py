"""Flasket category statistics

PostgreSQL only: ``CREATE STATISTICS`` on ``flasket_ticket_category (name,
value)``, so the planner knows a category value belongs to one category name
(see CHANGELOG.md, "Unreleased"). Written out here as it was at this revision;
``flasket.migrations.category_statistics_sql()`` gives the current statement.
Nothing changes on other databases.

Revision ID: 6c1e2f9a4b7d
Revises: 3548a31549ff
Create Date: 2026-11-24 07:15:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "6c1e2f9a4b7d"
down_revision = "3548a31549ff"
branch_labels = None
depends_on = None

STATISTICS = "flasket_ticket_category_name_value"


def upgrade():
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(
        f"CREATE STATISTICS IF NOT EXISTS {STATISTICS} (dependencies, mcv)"
        " ON name, value FROM flasket_ticket_category"
    )
    op.execute("ANALYZE flasket_ticket_category")


def downgrade():
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(f"DROP STATISTICS IF EXISTS {STATISTICS}")
