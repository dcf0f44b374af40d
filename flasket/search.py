"""Ticket search: the database's full-text index where there is one, a bounded scan elsewhere.

Every database answers the same question, "tickets whose title or description
contain each word of the query, as a word or the start of one":

- PostgreSQL: a GIN index on ``to_tsvector('simple', title || ' ' || body)``,
  with ASCII punctuation turned into spaces first (models.SEARCH_DOCUMENT), and
  a prefix ``to_tsquery``: a query splits into words at punctuation, and so does
  the index, so ``alice@example.com``, ``example.com``, ``docs/install`` and
  ``2.0.1`` find the addresses, URLs, paths and version numbers that hold them;
- MariaDB/MySQL: a FULLTEXT index on (title, body) in boolean mode for the
  words the index holds; a word it leaves out (under three characters, or an
  InnoDB stopword such as "the") must also start a word in the rows the index
  found (a regular expression); a query with no indexed word falls back to the scan.
  InnoDB reads ``_`` as part of a word, so its index holds ``foo_bar`` whole: in
  the query ``foo_bar``, ``bar`` is one of the words checked by the regular
  expression, but a query of ``bar`` alone does not find ``foo_bar`` there;
- SQLite and anything else: a case-insensitive substring match over the newest
  ``SCAN_LIMIT`` tickets, so a search never reads the whole table.

A query with no letters or digits (``%``, ``_``, ``\\``) is matched literally,
as a substring, by the bounded scan on every database.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Session

from .models import SEARCH_DOCUMENT, Models

SCAN_LIMIT = 100_000
MARIADB_MIN_WORD = 3
MARIADB_MAX_WORD = 84
#: InnoDB's default full-text stopwords: never in the index, so "+the*" would match nothing.
MARIADB_STOPWORDS = frozenset(
    {
        *("a", "about", "an", "are", "as", "at", "be", "by", "com", "de", "en", "for"),
        *("from", "how", "i", "in", "is", "it", "la", "of", "on", "or", "that", "the"),
        *("this", "to", "und", "was", "what", "when", "where", "who", "will", "with", "www"),
    }
)
MAX_WORDS = 10

SIMPLE: sa.ColumnElement[Any] = sa.literal_column("'simple'")
_WORD = re.compile(r"[^\W_]+")


def words(query: str) -> list[str]:
    return _WORD.findall(query.lower())[:MAX_WORDS]


#: PostgreSQL: a query matching fewer tickets than this share is answered from the GIN index.
RARE_SHARE = 0.01


def matches(
    dialect: str, models: Models, query: str, session: Session | None = None
) -> sa.ColumnElement[bool]:
    found = words(query)
    if found and dialect == "postgresql":
        document_matches = postgresql_document().bool_op("@@")(
            sa.func.to_tsquery(SIMPLE, " & ".join(f"{word}:*" for word in found))
        )
        if session is not None and postgresql_share(session, found) < RARE_SHARE:
            return from_gin_index(models, document_matches)
        return document_matches
    indexed = mariadb_index_words(query)
    if indexed and dialect in {"mysql", "mariadb"}:
        ticket = models.Ticket
        against = " ".join(f"+{word}*" for word in indexed)
        title: Any = ticket.title
        body: Any = ticket.body
        condition: sa.ColumnElement[bool] = mysql.match(
            title, body, against=against
        ).in_boolean_mode()
        others = [starts_a_word(models, word) for word in found if word not in indexed]
        return sa.and_(condition, *others)
    return bounded_scan(models, query)


def mariadb_index_words(query: str) -> list[str]:
    """The words of ``query`` that InnoDB's full-text index can find as the start of a word.

    Its words run on across ``_``: "bar" starts no word of "foo_bar" there, so a word after
    an underscore is left to the regular expression (:func:`starts_a_word`).
    """
    lowered = query.lower()
    return [
        found.group()
        for found in list(_WORD.finditer(lowered))[:MAX_WORDS]
        if mariadb_indexes(found.group()) and lowered[found.start() - 1 : found.start()] != "_"
    ]


def mariadb_indexes(word: str) -> bool:
    """Whether InnoDB's full-text index holds ``word`` (with its default settings)."""
    return MARIADB_MIN_WORD <= len(word) <= MARIADB_MAX_WORD and word not in MARIADB_STOPWORDS


def starts_a_word(models: Models, word: str) -> sa.ColumnElement[bool]:
    """``word`` (letters and digits only) at the start of a word of the title or body."""
    pattern = f"(^|[^[:alnum:]]){word}"
    ticket = models.Ticket
    return sa.or_(
        ticket.title.regexp_match(pattern, flags="i"),
        ticket.body.regexp_match(pattern, flags="i"),
    )


def postgresql_share(session: Session, found: list[str]) -> float:
    """The share of tickets holding every word (as a prefix), from PostgreSQL's statistics.

    Its planner guesses as much as 0.5% for a word missing from those statistics, enough to
    read a million tickets in list order, computing each one's document, to find twenty.
    """
    elements = (
        sa.select(sa.column("word"), sa.column("share"))
        .select_from(
            sa.text(
                "pg_stats, unnest(most_common_elems::text::text[], most_common_elem_freqs)"
                " AS element(word, share)"
            )
        )
        .where(
            sa.text("tablename = 'ix_flasket_ticket_search'"),
            sa.text("schemaname = ANY (current_schemas(false))"),
        )
        .subquery()
    )
    per_word = [
        sa.select(sa.func.coalesce(sa.func.sum(elements.c.share), 0.0))
        .where(sa.func.starts_with(elements.c.word, word))
        .scalar_subquery()
        for word in found
    ]
    share = session.scalar(sa.select(sa.func.least(*per_word, 1.0)))
    return float(share or 0.0)


def from_gin_index(models: Models, condition: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """``condition``, evaluated once through the GIN index (a materialised CTE) for rare words."""
    ticket = models.Ticket
    found = sa.select(ticket.id).where(condition).cte("search_matches").prefix_with("MATERIALIZED")
    return ticket.id.in_(sa.select(found.c.id))


def postgresql_document() -> sa.ColumnElement[Any]:
    """The GIN index's own expression (models.SEARCH_DOCUMENT), so PostgreSQL uses the index."""
    return sa.literal_column(SEARCH_DOCUMENT)


def bounded_scan(models: Models, query: str) -> sa.ColumnElement[bool]:
    ticket = models.Ticket
    newest: Any = sa.select(sa.func.max(ticket.id)).scalar_subquery()
    return sa.and_(ticket.id > newest - SCAN_LIMIT, contains(models, query))


def contains(models: Models, text: str) -> sa.ColumnElement[bool]:
    """``text`` anywhere in the title or body, any case, ``%``, ``_`` and ``\\`` literal."""
    ticket = models.Ticket
    return sa.or_(
        ticket.title.icontains(text, autoescape=True),
        ticket.body.icontains(text, autoescape=True),
    )
