"""Flasket mail in each recipient's language

Each recipient's mail is written in their own language and time zone (see
CHANGELOG.md, "Unreleased"): ``flasket_outbox_event`` records what its rendering
is written for and which reply it is about; a ``flasket_outbox`` copy written
in another language keeps its own bodies. Five nullable columns; existing
events count as English and UTC.

Revision ID: e8b2c6f4a1d3
Revises: d5a9e3c7b1f4
Create Date: 2026-12-07 11:30:00.000000

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from flasket.migrations import sqlite_drop_trigger_sql, sqlite_trigger_sql

# revision identifiers, used by Alembic.
revision = "e8b2c6f4a1d3"
down_revision = "d5a9e3c7b1f4"
branch_labels = None
depends_on = None

LONG_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def upgrade():
    with op.batch_alter_table("flasket_outbox_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reply_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("locale", sa.String(length=35), nullable=True))
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))
    with op.batch_alter_table("flasket_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("text", LONG_TEXT, nullable=True))
        batch_op.add_column(sa.Column("html", LONG_TEXT, nullable=True))


def downgrade():
    # SQLite rebuilds both tables to drop the columns; its triggers name them.
    sqlite = op.get_context().dialect.name == "sqlite"
    if sqlite:
        for statement in sqlite_drop_trigger_sql():
            op.execute(statement)
    with op.batch_alter_table(
        "flasket_outbox", table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.drop_column("html")
        batch_op.drop_column("text")
    with op.batch_alter_table(
        "flasket_outbox_event", table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.drop_column("time_zone")
        batch_op.drop_column("locale")
        batch_op.drop_column("reply_id")
    if sqlite:
        for statement in sqlite_trigger_sql("user", "id"):
            op.execute(statement)
