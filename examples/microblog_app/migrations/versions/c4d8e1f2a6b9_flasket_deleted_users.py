"""Flasket deleted users

A user the host deletes leaves their tickets and replies, shown as a deleted
user (see CHANGELOG.md, "Unreleased"): ``author_id`` of ``flasket_ticket`` and
``flasket_reply`` becomes nullable with ``ON DELETE SET NULL``; a recipient's
copies in ``flasket_outbox`` go with them (new ``recipient_id``, ``ON DELETE
CASCADE``); a closer's deletion is found by an index. On SQLite, which enforces
foreign keys only when asked, Flasket's tables are rebuilt with AUTOINCREMENT
(no number is handed out twice), rows naming users or tickets that no longer
exist are cleaned up, and triggers do what the foreign keys say from then on.

Revision ID: c4d8e1f2a6b9
Revises: c4f1a7d93e20
Create Date: 2026-11-26 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

from flasket.migrations import sqlite_drop_trigger_sql, sqlite_trigger_sql

# revision identifiers, used by Alembic.
revision = "c4d8e1f2a6b9"
down_revision = "c4f1a7d93e20"
branch_labels = None
depends_on = None

USERS = "user"
AUTHORED = ("flasket_ticket", "flasket_reply")
NUMBERED = ("flasket_ticket", "flasket_reply", "flasket_outbox_event", "flasket_outbox")
# SQLite's foreign keys have no names; batch mode names them by this to drop them.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
ORPHANS = (
    'UPDATE flasket_ticket SET author_id = NULL WHERE author_id NOT IN (SELECT id FROM "user")',
    "UPDATE flasket_ticket SET closed_by_id = NULL"
    ' WHERE closed_by_id NOT IN (SELECT id FROM "user")',
    'UPDATE flasket_reply SET author_id = NULL WHERE author_id NOT IN (SELECT id FROM "user")',
    'DELETE FROM flasket_follow WHERE user_id NOT IN (SELECT id FROM "user")',
    "DELETE FROM flasket_ticket_category WHERE ticket_id NOT IN (SELECT id FROM flasket_ticket)",
    "DELETE FROM flasket_reply WHERE ticket_id NOT IN (SELECT id FROM flasket_ticket)",
    "DELETE FROM flasket_follow WHERE ticket_id NOT IN (SELECT id FROM flasket_ticket)",
    "DELETE FROM flasket_outbox_event WHERE ticket_id NOT IN (SELECT id FROM flasket_ticket)",
    "DELETE FROM flasket_outbox WHERE event_id NOT IN (SELECT id FROM flasket_outbox_event)",
)


def upgrade():
    sqlite = op.get_context().dialect.name == "sqlite"
    if sqlite:
        for statement in ORPHANS:
            op.execute(statement)
    for table in NUMBERED:
        with op.batch_alter_table(
            table,
            naming_convention=NAMING,
            recreate="always" if sqlite else "auto",
            table_kwargs={"sqlite_autoincrement": True},
        ) as batch_op:
            if table in AUTHORED:
                _author_foreign_key(batch_op, table, sqlite, ondelete="SET NULL", nullable=True)
            if table == "flasket_ticket":
                batch_op.create_index("ix_flasket_ticket_closed_by", ["closed_by_id"])
            if table == "flasket_outbox":
                batch_op.add_column(sa.Column("recipient_id", sa.Integer(), nullable=True))
                batch_op.create_index("ix_flasket_outbox_recipient", ["recipient_id"])
                batch_op.create_foreign_key(
                    "fk_flasket_outbox_recipient_id_user",
                    USERS,
                    ["recipient_id"],
                    ["id"],
                    ondelete="CASCADE",
                )
    if sqlite:
        for statement in sqlite_trigger_sql(USERS, "id"):
            op.execute(statement)


def downgrade():
    sqlite = op.get_context().dialect.name == "sqlite"
    if sqlite:
        for statement in sqlite_drop_trigger_sql():
            op.execute(statement)
    for table in reversed(NUMBERED):
        with op.batch_alter_table(table, naming_convention=NAMING) as batch_op:
            if table == "flasket_outbox":
                batch_op.drop_constraint("fk_flasket_outbox_recipient_id_user", "foreignkey")
                batch_op.drop_index("ix_flasket_outbox_recipient")
                batch_op.drop_column("recipient_id")
            if table == "flasket_ticket":
                _drop_closed_by_index(batch_op, sqlite)
            if table in AUTHORED:
                # Rows of deleted users have no author: they go, as before this revision.
                op.execute(
                    sa.delete(sa.table(table, sa.column("author_id"))).where(
                        sa.column("author_id").is_(None)
                    )
                )
                _author_foreign_key(batch_op, table, sqlite, ondelete="CASCADE", nullable=False)


def _author_foreign_key(batch_op, table, sqlite, ondelete, nullable):
    """Replace the foreign key on ``author_id`` by one with ``ondelete``."""
    name = f"fk_{table}_author_id_{USERS}" if sqlite else _foreign_key_name(table, "author_id")
    batch_op.drop_constraint(name, type_="foreignkey")
    batch_op.alter_column("author_id", existing_type=sa.Integer(), nullable=nullable)
    batch_op.create_foreign_key(name, USERS, ["author_id"], ["id"], ondelete=ondelete)


def _drop_closed_by_index(batch_op, sqlite):
    """MariaDB keeps the index for the foreign key on ``closed_by_id``: the key goes first."""
    if sqlite:
        batch_op.drop_index("ix_flasket_ticket_closed_by")
        return
    name = _foreign_key_name("flasket_ticket", "closed_by_id")
    batch_op.drop_constraint(name, type_="foreignkey")
    batch_op.drop_index("ix_flasket_ticket_closed_by")
    batch_op.create_foreign_key(name, USERS, ["closed_by_id"], ["id"], ondelete="SET NULL")


def _foreign_key_name(table, column):
    [name] = [
        key["name"]
        for key in sa.inspect(op.get_bind()).get_foreign_keys(table)
        if key["constrained_columns"] == [column]
    ]
    return name
