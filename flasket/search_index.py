"""What the full-text search indexes hold: the folded text of tickets and replies, per database.

PostgreSQL indexes a ``to_tsvector`` document (:data:`SEARCH_DOCUMENT`,
:data:`REPLY_SEARCH_DOCUMENT`) of text folded by :func:`search_folded`; MariaDB and
MySQL a ``FULLTEXT`` index (:func:`search_indexes`, :func:`reply_search_indexes`);
SQLite FTS5 tables kept in step by triggers (:func:`sqlite_search_ddl`).
:mod:`flasket.models` declares these indexes with its tables, :mod:`flasket.migrations`
writes them into revisions, and :mod:`flasket.search` builds queries on the very same
expressions, so each database uses its index. This module imports nothing of Flasket's.
"""

from __future__ import annotations

import string
from typing import Any

import sqlalchemy as sa


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


#: ASCII punctuation but "%", which search turns into spaces (see SEARCH_DOCUMENT). "%" stays
#: out: Alembic's autogenerate writes it doubled into a revision, whose index then holds "%%"
#: and no longer matches the queries' expression. Nothing is lost, as PostgreSQL's parser
#: splits words at "%" itself once the other punctuation is gone ("a%20b": "a", "20b").
SEARCH_PUNCTUATION = string.punctuation.replace("%", "")

#: The combining diacritical marks (U+0300-U+036F) that search ignores once text is in NFD.
SEARCH_MARKS = "".join(chr(code) for code in range(0x300, 0x370))


def _bracket(characters: str) -> str:
    """A PostgreSQL regular expression bracket matching any of ``characters`` literally."""
    return "[" + "".join("\\" + c if c in "\\]^-[" else c for c in characters) + "]"


#: The regular expression of one :data:`SEARCH_PUNCTUATION` character (PostgreSQL's syntax).
SEARCH_PUNCTUATION_PATTERN = _bracket(SEARCH_PUNCTUATION)


def search_folded(text: str) -> str:
    """PostgreSQL SQL folding the SQL expression ``text`` for search, independent of locale.

    ICU root-locale lowercase (``COLLATE "und-x-icu"``), Unicode NFD, the combining marks
    U+0300-U+036F removed, final sigma as sigma, then :data:`SEARCH_PUNCTUATION` as spaces.
    Marks and punctuation go by ``regexp_replace()`` with a bracket of literal characters
    (or a range of code points), which no locale changes: ``translate()`` compares each
    character with each of its list, 0.6 ms for a 400-character ticket, ten times as long
    as the rest of the document, which the search of a common word computes row by row.

    :param text: a column, or an expression of type text in parentheses.
    :return: the SQL expression, written as PostgreSQL prints it back (for Alembic).
    """
    marks = f"[{SEARCH_MARKS[0]}-{SEARCH_MARKS[-1]}]"
    unmarked = (
        f'replace(regexp_replace(NORMALIZE(lower({text} COLLATE "und-x-icu"), NFD), '
        f"{_sql_string(marks)}, '', 'g'), {_sql_string(chr(0x3C2))}, {_sql_string(chr(0x3C3))})"
    )
    return f"regexp_replace({unmarked}, {_sql_string(SEARCH_PUNCTUATION_PATTERN)}, ' ', 'g')"


#: The PostgreSQL text-search document of a ticket: the GIN index's expression, which search
#: queries use as it is, so the planner matches them to the index.
#:
#: Punctuation becomes spaces first. PostgreSQL's parser keeps an e-mail address, a host name
#: or URL, a file path or a version number as one token ("alice@example.com", "2.0.1"), while
#: a query is split into words at punctuation (search.words()): "example" must be a word of
#: its own to be found. A bracket of the punctuation characters themselves does not depend on
#: the database's locale, unlike a regular expression's [:alnum:], which under the C locale
#: drops letters like "é".
#:
#: Parenthesised as PostgreSQL prints it back, so Alembic's autogenerate sees no change (it
#: prints the columns without the table name, which Alembic's comparison strips too). The
#: backslash in the literal assumes standard_conforming_strings, PostgreSQL's default.
#:
#: Letters are then folded the same way whatever the database's locale (lc_ctype), which
#: decides how to_tsvector() lowercases: under the "C" locale it leaves "É" as it is. Flasket
#: lowercases first with ICU's root locale (the "und-x-icu" collation, in every PostgreSQL
#: built with ICU), decomposes to NFD and drops the combining marks (:data:`SEARCH_MARKS`),
#: and writes Greek final sigma as sigma: "Élan", "élan", "ELAN" and "e\u0301lan" all become
#: "elan", as they do in search.words() for the query.
SEARCH_DOCUMENT = "to_tsvector('simple', {})".format(
    search_folded("((flasket_ticket.title || ' ') || flasket_ticket.body)")
)
#: The text of a ticket that search reads, as written.
SEARCH_SOURCE = "((flasket_ticket.title || ' ') || flasket_ticket.body)"
#: The folded text of a ticket, inside :data:`SEARCH_DOCUMENT`: a word of the document is in
#: it, so a common word's search looks for it there before computing the document.
SEARCH_TEXT = search_folded(SEARCH_SOURCE)


def _is_mysql(
    ddl: Any,
    target: Any,
    bind: Any,
    tables: Any = None,
    state: Any = None,
    *,
    dialect: sa.Dialect,
    compiler: Any = None,
    checkfirst: bool = False,
    **kw: Any,
) -> bool:
    return dialect.name in {"mysql", "mariadb"}


def search_indexes() -> tuple[sa.Index, ...]:
    """Full-text indexes behind ticket search, each created only on its own database.

    PostgreSQL: a GIN index on :data:`SEARCH_DOCUMENT`; MariaDB/MySQL: FULLTEXT on
    ``title`` and ``body``. ``info["dialects"]`` says which database each is for, for a
    migration environment's ``include_object`` hook: Alembic's autogenerate does not
    read ``ddl_if``.

    :return: new, unbound indexes, to declare in ``flasket_ticket``'s ``__table_args__``.
    """
    return (
        sa.Index(
            "ix_flasket_ticket_search",
            sa.text(f"({SEARCH_DOCUMENT})"),
            postgresql_using="gin",
            info={"dialects": ("postgresql",)},
        ).ddl_if(dialect="postgresql"),
        sa.Index(
            "ix_flasket_ticket_fulltext",
            "title",
            "body",
            mysql_prefix="FULLTEXT",
            info={"dialects": ("mysql", "mariadb")},
        ).ddl_if(callable_=_is_mysql),
    )


#: The PostgreSQL text-search document of a reply, folded like :data:`SEARCH_DOCUMENT`.
REPLY_SEARCH_DOCUMENT = "to_tsvector('simple', {})".format(search_folded("flasket_reply.body"))
#: The text of a reply that search reads, and its folded form in :data:`REPLY_SEARCH_DOCUMENT`.
REPLY_SEARCH_SOURCE = "flasket_reply.body"
REPLY_SEARCH_TEXT = search_folded(REPLY_SEARCH_SOURCE)


def reply_search_indexes() -> tuple[sa.Index, ...]:
    """Full-text indexes behind the search of replies, as :func:`search_indexes` for tickets.

    PostgreSQL: a GIN index on :data:`REPLY_SEARCH_DOCUMENT`; MariaDB/MySQL: FULLTEXT on
    ``body``. SQLite's are FTS5 tables (:func:`sqlite_search_ddl`), which are not indexes.

    :return: new, unbound indexes, to declare in ``flasket_reply``'s ``__table_args__``.
    """
    return (
        sa.Index(
            "ix_flasket_reply_search",
            sa.text(f"({REPLY_SEARCH_DOCUMENT})"),
            postgresql_using="gin",
            info={"dialects": ("postgresql",)},
        ).ddl_if(dialect="postgresql"),
        sa.Index(
            "ix_flasket_reply_fulltext",
            "body",
            mysql_prefix="FULLTEXT",
            info={"dialects": ("mysql", "mariadb")},
        ).ddl_if(callable_=_is_mysql),
    )


#: SQLite FTS5's tokenizer for search: Unicode 6.1 letters and digits make words, folded to
#: lower case (Unicode simple case folding, not the ASCII-only one of SQLite's lower()) and
#: with diacritics removed, precomposed or combining ("É" and "E\u0301" are "e").
SQLITE_SEARCH_TOKENIZER = "unicode61 remove_diacritics 2"

#: SQLite's FTS5 tables by name: the table whose text each indexes, and its columns.
SQLITE_SEARCH_TABLES = {
    "flasket_ticket_search": ("flasket_ticket", ("title", "body")),
    "flasket_reply_search": ("flasket_reply", ("body",)),
}


def sqlite_search_ddl(name: str) -> tuple[str, ...]:
    """The SQLite statements creating the FTS5 table ``name`` and the triggers filling it.

    An external-content FTS5 table (https://sqlite.org/fts5.html#external_content_tables):
    it stores only the index, and reads the text from its table. Triggers keep it in step
    on every insert, delete, and update of the text, whoever writes (Flasket, the host's
    own SQL, a cascade); an update of other columns (status, counters) does not touch it.

    :param name: a key of :data:`SQLITE_SEARCH_TABLES`.
    :return: ``CREATE ... IF NOT EXISTS`` statements, safe to run again.
    :raises KeyError: for another name.
    """
    table, columns = SQLITE_SEARCH_TABLES[name]
    listed = ", ".join(columns)
    new = ", ".join(f"new.{column}" for column in columns)
    old = ", ".join(f"old.{column}" for column in columns)
    insert = f"INSERT INTO {name}(rowid, {listed}) VALUES (new.id, {new});"  # noqa: S608
    delete = f"INSERT INTO {name}({name}, rowid, {listed}) VALUES ('delete', old.id, {old});"  # noqa: S608
    return (
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {name} USING fts5({listed}, content='{table}',"
        f" content_rowid='id', tokenize='{SQLITE_SEARCH_TOKENIZER}')",
        f"CREATE TRIGGER IF NOT EXISTS {name}_insert AFTER INSERT ON {table} BEGIN {insert} END",
        f"CREATE TRIGGER IF NOT EXISTS {name}_delete AFTER DELETE ON {table} BEGIN {delete} END",
        f"CREATE TRIGGER IF NOT EXISTS {name}_update AFTER UPDATE OF {listed} ON {table}"
        f" BEGIN {delete} {insert} END",
    )


def sqlite_search_rebuild(name: str) -> str:
    """The statement that refills the FTS5 table ``name`` from its table's rows.

    FTS5's ``'rebuild'`` command, for a database whose rows were there before the FTS5
    table.

    :param name: a key of :data:`SQLITE_SEARCH_TABLES` (not checked).
    :return: one SQLite ``INSERT`` statement.
    """
    return f"INSERT INTO {name}({name}) VALUES ('rebuild')"  # noqa: S608


def add_search_tables(ticket: sa.Table, reply: sa.Table) -> None:
    """On SQLite, create the FTS5 tables and their triggers with the tables they index,
    and drop them with those tables (a DROP TABLE drops its triggers).

    :param ticket: the ``flasket_ticket`` table.
    :param reply: the ``flasket_reply`` table.
    """
    for name, (table_name, _) in SQLITE_SEARCH_TABLES.items():
        table = ticket if table_name == ticket.name else reply
        for statement in sqlite_search_ddl(name):
            sa.event.listen(
                table,
                "after_create",
                sa.DDL(statement).execute_if(dialect="sqlite"),  # type: ignore[no-untyped-call]
            )
        sa.event.listen(
            table,
            "before_drop",
            sa.DDL(f"DROP TABLE IF EXISTS {name}").execute_if(  # type: ignore[no-untyped-call]
                dialect="sqlite"
            ),
        )
