"""Flasket search splits punctuation

PostgreSQL only: ticket search's GIN index turns ASCII punctuation into spaces
before PostgreSQL parses a ticket's text, so parts of e-mail addresses, URLs,
paths and version numbers are words of their own (see CHANGELOG.md,
"Unreleased"). The index is dropped and built again with the new expression,
Flasket's ``flasket.models.SEARCH_DOCUMENT``, written out here as it was at
this revision. Nothing changes on other databases.

Revision ID: 3548a31549ff
Revises: 09fa3bc6b78a
Create Date: 2026-11-24 06:45:12.518204

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "3548a31549ff"
down_revision = "09fa3bc6b78a"
branch_labels = None
depends_on = None

#: ASCII punctuation but "%" (see flasket/models.py), as an SQL string, and as many spaces.
PUNCTUATION = "'!\"#$&''()*+,-./:;<=>?@[\\]^_`{|}~'"
SPACES = "'" + " " * 31 + "'"

SPLIT_PUNCTUATION = (
    "(to_tsvector('simple', translate((flasket_ticket.title || ' ') || flasket_ticket.body, "
    f"{PUNCTUATION}, {SPACES})))"
)
WHOLE_TOKENS = "(to_tsvector('simple', (title || ' ') || body))"


def recreate_search_index(expression):
    if op.get_context().dialect.name != "postgresql":
        return
    op.drop_index("ix_flasket_ticket_search", table_name="flasket_ticket")
    op.create_index(
        "ix_flasket_ticket_search",
        "flasket_ticket",
        [sa.text(expression)],
        postgresql_using="gin",
    )


def upgrade():
    recreate_search_index(SPLIT_PUNCTUATION)


def downgrade():
    recreate_search_index(WHOLE_TOKENS)
