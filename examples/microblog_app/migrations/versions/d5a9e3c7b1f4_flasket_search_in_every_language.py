"""Flasket search in every language, and in replies

PostgreSQL: ticket search's GIN index folds text the same way whatever the
database's locale (ICU lower case, NFD without combining marks), and replies get a
GIN index of their own; MariaDB/MySQL: replies get a FULLTEXT index; SQLite: FTS5
tables over ticket and reply text, kept in step by triggers, filled from the rows
already there. The expressions are Flasket's (``flasket.models``), written out here
through its functions as they were at this revision.

Revision ID: d5a9e3c7b1f4
Revises: c4d8e1f2a6b9
Create Date: 2026-12-02 09:12:40.120418

"""

import sqlalchemy as sa
from alembic import op

from flasket import migrations
from flasket.models import REPLY_SEARCH_DOCUMENT, SEARCH_DOCUMENT

# revision identifiers, used by Alembic.
revision = "d5a9e3c7b1f4"
down_revision = "c4d8e1f2a6b9"
branch_labels = None
depends_on = None

PUNCTUATION = "'!\"#$&''()*+,-./:;<=>?@[\\]^_`{|}~'"
SPACES = "'" + " " * 31 + "'"
SPLIT_PUNCTUATION = (
    "(to_tsvector('simple', translate((flasket_ticket.title || ' ') || flasket_ticket.body, "
    f"{PUNCTUATION}, {SPACES})))"
)


def recreate_ticket_index(expression):
    op.drop_index("ix_flasket_ticket_search", table_name="flasket_ticket")
    op.create_index(
        "ix_flasket_ticket_search",
        "flasket_ticket",
        [sa.text(expression)],
        postgresql_using="gin",
    )


def upgrade():
    dialect = op.get_context().dialect.name
    if dialect == "postgresql":
        recreate_ticket_index(f"({SEARCH_DOCUMENT})")
        op.create_index(
            "ix_flasket_reply_search",
            "flasket_reply",
            [sa.text(f"({REPLY_SEARCH_DOCUMENT})")],
            postgresql_using="gin",
        )
    elif dialect in ("mysql", "mariadb"):
        op.create_index(
            "ix_flasket_reply_fulltext", "flasket_reply", ["body"], mysql_prefix="FULLTEXT"
        )
    elif dialect == "sqlite":
        for statement in migrations.sqlite_search_sql():
            op.execute(statement)


def downgrade():
    dialect = op.get_context().dialect.name
    if dialect == "postgresql":
        op.drop_index("ix_flasket_reply_search", table_name="flasket_reply")
        recreate_ticket_index(SPLIT_PUNCTUATION)
    elif dialect in ("mysql", "mariadb"):
        op.drop_index("ix_flasket_reply_fulltext", table_name="flasket_reply")
    elif dialect == "sqlite":
        for statement in migrations.sqlite_drop_search_sql():
            op.execute(statement)
