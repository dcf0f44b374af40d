"""Flasket staff desk: assignment, queues, internal notes, history, editing, duplicates

Staff assign tickets, write internal notes, edit titles and categories, hide replies and
close duplicates; authors edit their own texts; every change of a ticket is recorded (see
CHANGELOG.md, "Unreleased"). New tables: ``flasket_note`` (the notes),
``flasket_ticket_change`` (the history), ``flasket_revision`` (earlier texts);
``flasket_ticket`` and ``flasket_reply`` get ``edited_at``, replies ``hidden_at``, tickets
``duplicate_of_id``; ``flasket_ticket`` gets
``assignee_id`` (``ON DELETE SET NULL``) and ``awaiting_staff`` (whether the
last public word is not staff's, which the "waiting on staff" queue reads),
filled in from each ticket's last reply; ``flasket_outbox_event`` gets
``recipient_key``, the one user an event's mail is for (the new assignee), and
``note_id``, the note a ``note`` event is about. Three indexes serve the queues.
On SQLite the triggers that clean up after a host's deletion of a user or a
ticket learn the new column and table.

Revision ID: a7d3e9f1c2b8
Revises: f3c9a2d7e5b1
Create Date: 2026-12-07 17:00:00.000000

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import flasket.models
from flasket.migrations import sqlite_trigger_sql
from flasket.search_index import sqlite_search_ddl

# revision identifiers, used by Alembic.
revision = "a7d3e9f1c2b8"
down_revision = "f3c9a2d7e5b1"
branch_labels = None
depends_on = None

USERS = "user"
LONG_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
TIMESTAMP = flasket.models.UTCDateTime(timezone=True)
# SQLite's foreign keys have no names; batch mode names them by this.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}

# The SQLite trigger as the previous revision left it, for the downgrade.
USER_DELETED_BEFORE = (
    "CREATE TRIGGER IF NOT EXISTS flasket_user_deleted AFTER DELETE ON user FOR EACH ROW"
    " BEGIN UPDATE flasket_ticket SET author_id = NULL WHERE author_id = OLD.id;"
    " UPDATE flasket_ticket SET closed_by_id = NULL WHERE closed_by_id = OLD.id;"
    " UPDATE flasket_reply SET author_id = NULL WHERE author_id = OLD.id;"
    " DELETE FROM flasket_follow WHERE user_id = OLD.id;"
    " DELETE FROM flasket_outbox WHERE recipient_id = OLD.id; END"
)
TICKET_DELETED_BEFORE = (
    "CREATE TRIGGER IF NOT EXISTS flasket_ticket_deleted AFTER DELETE ON flasket_ticket"
    " FOR EACH ROW BEGIN DELETE FROM flasket_ticket_category WHERE ticket_id = OLD.id;"
    " DELETE FROM flasket_reply WHERE ticket_id = OLD.id;"
    " DELETE FROM flasket_follow WHERE ticket_id = OLD.id;"
    " DELETE FROM flasket_outbox WHERE ticket_id = OLD.id OR event_id IN"
    " (SELECT id FROM flasket_outbox_event WHERE ticket_id = OLD.id);"
    " DELETE FROM flasket_outbox_event WHERE ticket_id = OLD.id; END"
)


def upgrade():
    sqlite = op.get_context().dialect.name == "sqlite"
    awaiting = sa.Column("awaiting_staff", sa.Boolean(), server_default="1", nullable=False)
    if sqlite:
        # The trigger names flasket_ticket, which the rebuild renames: it goes first.
        op.execute("DROP TRIGGER IF EXISTS flasket_user_deleted")
        # SQLite adds a foreign key only by rebuilding the table (an inline REFERENCES
        # clause would lose ON DELETE to reflection), which drops the triggers on it: they
        # are created again below.
        with op.batch_alter_table(
            "flasket_ticket",
            naming_convention=NAMING,
            recreate="always",
            table_kwargs={"sqlite_autoincrement": True},
        ) as batch_op:
            batch_op.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
            batch_op.add_column(awaiting)
            batch_op.create_foreign_key(
                "fk_flasket_ticket_assignee_id_user",
                USERS,
                ["assignee_id"],
                ["id"],
                ondelete="SET NULL",
            )
            batch_op.add_column(sa.Column("duplicate_of_id", sa.Integer(), nullable=True))
            batch_op.add_column(sa.Column("edited_at", TIMESTAMP, nullable=True))
            batch_op.create_foreign_key(
                "fk_flasket_ticket_duplicate_of_id_flasket_ticket",
                "flasket_ticket",
                ["duplicate_of_id"],
                ["id"],
                ondelete="SET NULL",
            )
    else:
        op.add_column(
            "flasket_ticket",
            sa.Column(
                "assignee_id",
                sa.Integer(),
                sa.ForeignKey(f"{USERS}.id", ondelete="SET NULL"),
                nullable=True,
            ),
        )
        op.add_column("flasket_ticket", awaiting)
        op.add_column("flasket_ticket", sa.Column("edited_at", TIMESTAMP, nullable=True))
        op.add_column(
            "flasket_ticket",
            sa.Column(
                "duplicate_of_id",
                sa.Integer(),
                sa.ForeignKey("flasket_ticket.id", ondelete="SET NULL"),
                nullable=True,
            ),
        )
    op.add_column(
        "flasket_outbox_event", sa.Column("recipient_key", sa.String(length=64), nullable=True)
    )
    op.add_column("flasket_outbox_event", sa.Column("note_id", sa.Integer(), nullable=True))
    # Plain ALTER TABLE ... ADD COLUMN on every database: no foreign key, so SQLite keeps
    # the table, its AUTOINCREMENT and its triggers.
    op.add_column("flasket_reply", sa.Column("edited_at", TIMESTAMP, nullable=True))
    op.add_column("flasket_reply", sa.Column("hidden_at", TIMESTAMP, nullable=True))
    op.create_table(
        "flasket_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("reply_id", sa.Integer(), nullable=True),
        sa.Column("body", LONG_TEXT, nullable=False),
        sa.Column("reason", sa.String(length=8), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("editor_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["editor_id"], [f"{USERS}.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["reply_id"], ["flasket_reply.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["ticket_id"], ["flasket_ticket.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_flasket_revision_ticket_reply", "flasket_revision", ["ticket_id", "reply_id", "id"]
    )
    op.create_index("ix_flasket_revision_reply", "flasket_revision", ["reply_id"])
    op.create_index("ix_flasket_revision_editor", "flasket_revision", ["editor_id"])
    op.create_table(
        "flasket_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("body", LONG_TEXT, nullable=False),
        sa.Column("created_at", flasket.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("after_reply_id", sa.Integer(), nullable=True),
        sa.Column("form_key", sa.String(length=43), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["author_id"], [f"{USERS}.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["ticket_id"], ["flasket_ticket.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_flasket_note_form_key", "flasket_note", ["form_key"], unique=True)
    op.create_index(
        "ix_flasket_note_ticket_after", "flasket_note", ["ticket_id", "after_reply_id", "id"]
    )
    op.create_index("ix_flasket_note_author", "flasket_note", ["author_id"])
    op.create_table(
        "flasket_ticket_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("created_at", flasket.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("after_reply_id", sa.Integer(), nullable=True),
        sa.Column("field", sa.String(length=16), nullable=False),
        sa.Column("old_value", sa.String(length=200), nullable=True),
        sa.Column("new_value", sa.String(length=200), nullable=True),
        sa.Column("detail", sa.String(length=64), nullable=True),
        sa.Column("staff_only", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("old_user_id", sa.Integer(), nullable=True),
        sa.Column("new_user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], [f"{USERS}.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["new_user_id"], [f"{USERS}.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["old_user_id"], [f"{USERS}.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["ticket_id"], ["flasket_ticket.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_flasket_ticket_change_ticket_after",
        "flasket_ticket_change",
        ["ticket_id", "after_reply_id", "id"],
    )
    op.create_index("ix_flasket_ticket_change_actor", "flasket_ticket_change", ["actor_id"])
    op.create_index("ix_flasket_ticket_change_old_user", "flasket_ticket_change", ["old_user_id"])
    op.create_index("ix_flasket_ticket_change_new_user", "flasket_ticket_change", ["new_user_id"])
    # A ticket whose last reply is staff's has its answer. Who is staff is the host's
    # FLASKET_IS_STAFF; the microblog's staff are its admins.
    ticket = sa.table("flasket_ticket", sa.column("id"), sa.column("awaiting_staff", sa.Boolean()))
    last = sa.table("flasket_reply", sa.column("id"), sa.column("ticket_id")).alias("r2")
    reply = sa.table(
        "flasket_reply", sa.column("id"), sa.column("ticket_id"), sa.column("author_id")
    ).alias("r")
    user = sa.table(USERS, sa.column("id"), sa.column("is_admin", sa.Boolean())).alias("u")
    last_id = (
        sa.select(sa.func.max(last.c.id)).where(last.c.ticket_id == ticket.c.id).correlate(ticket)
    )
    answered = (
        sa.select(sa.literal(1))
        .select_from(reply.join(user, user.c.id == reply.c.author_id))
        .where(reply.c.id == last_id.scalar_subquery(), user.c.is_admin.is_(True))
        .exists()
    )
    op.execute(sa.update(ticket).where(answered).values(awaiting_staff=False))
    op.create_index(
        "ix_flasket_ticket_assignee_state_updated",
        "flasket_ticket",
        ["assignee_id", "state", "updated_at", "id"],
    )
    op.create_index(
        "ix_flasket_ticket_assignee_state_id", "flasket_ticket", ["assignee_id", "state", "id"]
    )
    op.create_index(
        "ix_flasket_ticket_state_awaiting_updated",
        "flasket_ticket",
        ["state", "awaiting_staff", "updated_at", "id", "status"],
    )
    op.create_index(
        "ix_flasket_ticket_state_closed", "flasket_ticket", ["state", "closed_at", "id"]
    )
    op.create_index("ix_flasket_ticket_duplicate_of", "flasket_ticket", ["duplicate_of_id", "id"])
    if sqlite:
        op.execute("DROP TRIGGER IF EXISTS flasket_ticket_deleted")
        for statement in sqlite_trigger_sql(USERS, "id"):
            op.execute(statement)
        for statement in sqlite_search_ddl("flasket_ticket_search"):
            op.execute(statement)


def downgrade():
    sqlite = op.get_context().dialect.name == "sqlite"
    if sqlite:
        op.execute("DROP TRIGGER IF EXISTS flasket_user_deleted")
        op.execute("DROP TRIGGER IF EXISTS flasket_ticket_deleted")
    op.drop_table("flasket_revision")
    op.drop_table("flasket_ticket_change")
    op.drop_table("flasket_note")
    if not sqlite:
        # MariaDB keeps an index for each foreign key: the keys go first.
        for key in sa.inspect(op.get_bind()).get_foreign_keys("flasket_ticket"):
            if key["constrained_columns"] in (["assignee_id"], ["duplicate_of_id"]):
                op.drop_constraint(key["name"], "flasket_ticket", type_="foreignkey")
    op.drop_index("ix_flasket_ticket_duplicate_of", table_name="flasket_ticket")
    op.drop_index("ix_flasket_ticket_state_closed", table_name="flasket_ticket")
    op.drop_index("ix_flasket_ticket_state_awaiting_updated", table_name="flasket_ticket")
    op.drop_index("ix_flasket_ticket_assignee_state_id", table_name="flasket_ticket")
    op.drop_index("ix_flasket_ticket_assignee_state_updated", table_name="flasket_ticket")
    if not sqlite:
        op.drop_column("flasket_reply", "hidden_at")
        op.drop_column("flasket_reply", "edited_at")
        op.drop_column("flasket_ticket", "edited_at")
        op.drop_column("flasket_outbox_event", "note_id")
        op.drop_column("flasket_outbox_event", "recipient_key")
        op.drop_column("flasket_ticket", "awaiting_staff")
        op.drop_column("flasket_ticket", "assignee_id")
        op.drop_column("flasket_ticket", "duplicate_of_id")
        return
    # As in the upgrade, SQLite drops the foreign key by rebuilding the table.
    op.execute("ALTER TABLE flasket_reply DROP COLUMN hidden_at")
    op.execute("ALTER TABLE flasket_reply DROP COLUMN edited_at")
    op.execute("ALTER TABLE flasket_outbox_event DROP COLUMN note_id")
    op.execute("ALTER TABLE flasket_outbox_event DROP COLUMN recipient_key")
    with op.batch_alter_table(
        "flasket_ticket",
        naming_convention=NAMING,
        recreate="always",
        table_kwargs={"sqlite_autoincrement": True},
    ) as batch_op:
        batch_op.drop_constraint("fk_flasket_ticket_assignee_id_user", type_="foreignkey")
        batch_op.drop_constraint(
            "fk_flasket_ticket_duplicate_of_id_flasket_ticket", type_="foreignkey"
        )
        batch_op.drop_column("duplicate_of_id")
        batch_op.drop_column("edited_at")
        batch_op.drop_column("awaiting_staff")
        batch_op.drop_column("assignee_id")
    op.execute(USER_DELETED_BEFORE)
    op.execute(TICKET_DELETED_BEFORE)
    for statement in sqlite_search_ddl("flasket_ticket_search"):
        op.execute(statement)
