"""Flasket's tables, declared on the host's own ``db.Model``.

The classes are built once per ``(db, user_model)`` pair, so they live in the
host's metadata (``db.create_all()`` and Flask-Migrate see them) and their
foreign keys follow whatever table and primary key the host's user model has.
"""

from __future__ import annotations

import string
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import Mapped, mapped_column, query_expression, relationship

from .config import TITLE_MAX_LENGTH

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy


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

#: PostgreSQL: a value belongs to one category name, so the planner must not take ``name`` and
#: ``value`` for independent columns. Without these statistics it guesses a third of the real
#: share for each category filter, and for two filters together it joins every match and sorts
#: them (0.2 s at a million tickets) instead of reading the list's index in order.
CATEGORY_STATISTICS = (
    "CREATE STATISTICS IF NOT EXISTS flasket_ticket_category_name_value (dependencies, mcv)"
    " ON name, value FROM %(fullname)s"
)

#: Ticket and reply text: MySQL's TEXT holds 65,535 bytes, less than 20,000 four-byte characters.
LONG_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")

OPEN = "open"
CLOSED = "closed"


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database, SQLite included."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in {"mysql", "mariadb"}:
            # MySQL's DATETIME drops fractions of a second unless asked to keep them.
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("Flasket stores only timezone-aware datetimes")
        value = value.astimezone(timezone.utc)
        # Databases without a time zone type get the UTC wall time.
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class TicketBase:
    """Columns of ``flasket_ticket``; the mapped class adds the user links."""

    __tablename__ = "flasket_ticket"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(TITLE_MAX_LENGTH))
    body: Mapped[str] = mapped_column(LONG_TEXT)
    status: Mapped[str] = mapped_column(sa.String(16), default=OPEN)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reply_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    follower_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: The one-time key of the form that submitted the ticket (null without one): the same
    #: form sent again finds this ticket instead of storing a second (``flasket.forms.FORM_KEY``).
    form_key: Mapped[str | None] = mapped_column(
        sa.String(43), nullable=True, unique=True, index=True
    )

    if TYPE_CHECKING:
        author_id: Mapped[Any]
        closed_by_id: Mapped[Any]
        author: Mapped[Any]
        closed_by: Mapped[Any]
        categories: Mapped[list[TicketCategoryBase]]
        listed_categories: Mapped[dict[str, str] | None]

        def __init__(self, **kwargs: Any) -> None: ...

    @property
    def mail_key(self) -> str:
        """The ticket's name outside the database: its number and its creation time.

        ``"12.5f3a9c1e2b7d0"``: the number, then ``created_at`` in microseconds since
        1970 (hexadecimal). A ticket number comes back after the ticket is deleted on a
        database that reuses keys; with the creation time the key never does. Message-IDs
        of a ticket's mail and unfollow tokens carry it.
        """
        micros = (self.created_at - _EPOCH) // timedelta(microseconds=1)
        return f"{self.id}.{micros:x}"

    def category_values(self) -> dict[str, str]:
        """The ticket's category values by category name, in name order.

        Lists load them within the ticket's own row (``listed_categories``); a ticket loaded
        any other way reads its ``categories``.
        """
        listed = self.listed_categories
        if listed is not None:
            return dict(sorted(listed.items()))
        return {c.name: c.value for c in self.categories}

    def __repr__(self) -> str:
        return f"<Ticket #{self.id} {self.status}>"


class TicketCategoryBase:
    """One category value of a ticket (``urgency = High``)."""

    __tablename__ = "flasket_ticket_category"

    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("flasket_ticket.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(100))

    if TYPE_CHECKING:

        def __init__(self, **kwargs: Any) -> None: ...


class ReplyBase:
    __tablename__ = "flasket_reply"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("flasket_ticket.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(LONG_TEXT)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The one-time key of the reply form that posted it, as :attr:`TicketBase.form_key`.
    form_key: Mapped[str | None] = mapped_column(
        sa.String(43), nullable=True, unique=True, index=True
    )

    if TYPE_CHECKING:
        author_id: Mapped[Any]
        author: Mapped[Any]
        ticket: Mapped[TicketBase]

        def __init__(self, **kwargs: Any) -> None: ...

    def __repr__(self) -> str:
        return f"<Reply {self.id} on #{self.ticket_id}>"


class FollowBase:
    __tablename__ = "flasket_follow"

    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("flasket_ticket.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    if TYPE_CHECKING:
        __table__: sa.Table
        user_id: Mapped[Any]
        user: Mapped[Any]
        ticket: Mapped[TicketBase]

        def __init__(self, **kwargs: Any) -> None: ...


PENDING = "pending"
SENT = "sent"
FAILED = "failed"


class OutboxEventBase:
    """One event's mail, rendered once in the event's transaction, before it is fanned out.

    The request writes one row whatever the number of followers; a deliverer
    later works out the recipients and writes one :class:`OutboxBase` row for
    each (``fanned_out_at`` says when). Follower mail is rendered with
    ``unfollow_url`` (a link whose token is :data:`flasket.notify.TOKEN_PLACEHOLDER`),
    which each recipient's own link replaces.
    """

    __tablename__ = "flasket_outbox_event"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("flasket_ticket.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(sa.String(16))
    #: The acting user's primary key as text; they get no mail about what they did.
    actor_key: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    subject: Mapped[str] = mapped_column(sa.Text)
    text: Mapped[str] = mapped_column(LONG_TEXT)
    html: Mapped[str] = mapped_column(LONG_TEXT)
    #: Headers every recipient's copy carries, as a JSON object of strings.
    headers: Mapped[str] = mapped_column(sa.Text, default="{}")
    unfollow_url: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    fanned_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: Fan-outs that raised; the next waits like a message's retry, none after the last.
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    #: When the next fan-out may run after one raised (null: at once).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    #: When Flasket gave up the fan-out; ``flask flasket outbox --retry-event`` requeues it.
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    if TYPE_CHECKING:
        __table__: sa.Table

        def __init__(self, **kwargs: Any) -> None: ...

    def __repr__(self) -> str:
        return f"<OutboxEvent {self.id} {self.event} on ticket {self.ticket_id}>"


class OutboxBase:
    """One e-mail to one recipient: its delivery state; the bodies are its event's.

    Rows of a deleted ticket go with it (``ON DELETE CASCADE``): mail about a
    ticket that no longer exists should not go out.
    """

    __tablename__ = "flasket_outbox"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(
        sa.ForeignKey("flasket_outbox_event.id", ondelete="CASCADE")
    )
    ticket_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("flasket_ticket.id", ondelete="CASCADE"), nullable=True
    )
    event: Mapped[str] = mapped_column(sa.String(16))
    recipient: Mapped[str] = mapped_column(sa.String(320))
    subject: Mapped[str] = mapped_column(sa.Text)
    message_id: Mapped[str] = mapped_column(sa.String(255))
    #: This copy's headers (the event's plus List-Unsubscribe) as a JSON object of strings.
    headers: Mapped[str] = mapped_column(sa.Text, default="{}")
    #: This recipient's own unfollow link, put in place of the event's placeholder one.
    unfollow_url: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    status: Mapped[str] = mapped_column(sa.String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Who holds the row while sending it, and until when; an expired lease is free again.
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    if TYPE_CHECKING:
        __table__: sa.Table
        recipient_id: Mapped[Any]

        def __init__(self, **kwargs: Any) -> None: ...

    def __repr__(self) -> str:
        return f"<Outbox {self.id} {self.status} to {self.recipient}>"


@dataclass(frozen=True)
class Models:
    """The mapped classes for one ``(db, user_model)`` pair."""

    Ticket: type[TicketBase]
    TicketCategory: type[TicketCategoryBase]
    Reply: type[ReplyBase]
    Follow: type[FollowBase]
    OutboxEvent: type[OutboxEventBase]
    Outbox: type[OutboxBase]
    user: type[Any]
    user_pk: str

    def user_id(self, user: Any) -> Any:
        """The primary-key value of a host user object."""
        return getattr(user, self.user_pk)


_built: dict[tuple[int, type[Any]], tuple[SQLAlchemy, Models]] = {}
_lock = threading.Lock()


def get_models(db: SQLAlchemy, user_model: type[Any]) -> Models:
    """The Flasket models on ``db``, declared the first time they are asked for."""
    with _lock:
        found = _built.get((id(db), user_model))
        if found is not None and found[0] is db:
            return found[1]
        for other_db, models in _built.values():
            if other_db is db:
                raise RuntimeError(
                    f"Flasket's tables are already declared on this db for user model "
                    f"{models.user.__name__}; one db can hold them for one user model only."
                )
        models = _declare(db, user_model)
        _built[(id(db), user_model)] = (db, models)
        return models


def _user_key(user_model: type[Any]) -> tuple[sa.Column[Any], str]:
    try:
        mapper = sa.inspect(user_model)
    except sa.exc.NoInspectionAvailable:
        raise TypeError(f"{user_model!r} is not a mapped SQLAlchemy model") from None
    if len(mapper.primary_key) != 1:
        raise TypeError(f"{user_model.__name__} must have a single-column primary key")
    column = mapper.primary_key[0]
    return column, mapper.get_property_by_column(column).key


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

    ``info["dialects"]`` says which one, for a migration environment's
    ``include_object`` hook: Alembic's autogenerate does not read ``ddl_if``.
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
    """The statement that refills the FTS5 table ``name`` from its table's rows (FTS5's
    ``'rebuild'`` command), for a database whose rows were there before the FTS5 table."""
    return f"INSERT INTO {name}({name}) VALUES ('rebuild')"  # noqa: S608


def _add_search_tables(ticket: sa.Table, reply: sa.Table) -> None:
    """On SQLite, create the FTS5 tables and their triggers with the tables they index,
    and drop them with those tables (a DROP TABLE drops its triggers)."""
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


#: SQLite gives a new row the largest rowid plus one, so deleting the newest ticket would hand
#: its number to the next; AUTOINCREMENT never hands a number out twice.
_NEVER_REUSED_IDS = {"sqlite_autoincrement": True}

#: The SQLite triggers of :func:`sqlite_cleanup_triggers`, by name.
SQLITE_TRIGGERS = ("flasket_user_deleted", "flasket_ticket_deleted")


def sqlite_cleanup_triggers(user_table: str, user_key: str) -> tuple[str, ...]:
    """SQLite triggers doing what the foreign keys' ``ON DELETE`` says, whatever deletes the row.

    SQLite enforces foreign keys only on a connection that turns them on (``PRAGMA
    foreign_keys``, off by default and in SQLAlchemy), so a host's ``DELETE`` of a user or a
    ticket would leave rows naming it, which a later user or ticket given the same key would
    inherit. With the pragma on, the foreign keys act first and the triggers find nothing.

    :param user_table: the host's user table (not schema-qualified: SQLite refuses that here).
    :param user_key: its primary-key column.
    :return: the ``CREATE TRIGGER IF NOT EXISTS`` statements; ``SQLITE_TRIGGERS`` names them.
    """
    quote = sqlite.dialect().identifier_preparer.quote
    user, old = quote(user_table), f"OLD.{quote(user_key)}"
    on_user_deleted = " ".join(
        f"{change} WHERE {column} = {old};"
        for change, column in (
            ("UPDATE flasket_ticket SET author_id = NULL", "author_id"),
            ("UPDATE flasket_ticket SET closed_by_id = NULL", "closed_by_id"),
            ("UPDATE flasket_reply SET author_id = NULL", "author_id"),
            ("DELETE FROM flasket_follow", "user_id"),
            ("DELETE FROM flasket_outbox", "recipient_id"),
        )
    )
    on_ticket_deleted = (
        "DELETE FROM flasket_ticket_category WHERE ticket_id = OLD.id;"
        " DELETE FROM flasket_reply WHERE ticket_id = OLD.id;"
        " DELETE FROM flasket_follow WHERE ticket_id = OLD.id;"
        " DELETE FROM flasket_outbox WHERE ticket_id = OLD.id OR event_id IN"
        " (SELECT id FROM flasket_outbox_event WHERE ticket_id = OLD.id);"
        " DELETE FROM flasket_outbox_event WHERE ticket_id = OLD.id;"
    )
    return tuple(
        f"CREATE TRIGGER IF NOT EXISTS {name} AFTER DELETE ON {table} FOR EACH ROW"
        f" BEGIN {body} END"
        for name, table, body in zip(
            SQLITE_TRIGGERS,
            (user, "flasket_ticket"),
            (on_user_deleted, on_ticket_deleted),
            strict=True,
        )
    )


def _clean_up_after_host_deletions_on_sqlite(ticket: sa.Table, last: sa.Table) -> None:
    """Create :func:`sqlite_cleanup_triggers` with the tables (once ``last``, the final one the
    triggers touch, exists), and drop the one on the host's table with Flasket's tables."""
    [author_key] = ticket.c.author_id.foreign_keys
    user_table, user_key = author_key.column.table.name, author_key.column.name
    for statement in sqlite_cleanup_triggers(user_table, user_key):
        sa.event.listen(
            last,
            "after_create",
            sa.DDL(statement).execute_if(dialect="sqlite"),  # type: ignore[no-untyped-call]
        )
    sa.event.listen(
        ticket,
        "before_drop",
        sa.DDL(f"DROP TRIGGER IF EXISTS {SQLITE_TRIGGERS[0]}").execute_if(  # type: ignore[no-untyped-call]
            dialect="sqlite"
        ),
    )


def _declare(db: SQLAlchemy, user_model: type[Any]) -> Models:
    pk_column, pk_attr = _user_key(user_model)
    if pk_column.table.metadata is not db.metadata:
        # The foreign keys to the user table would name a table this metadata does not hold.
        raise TypeError(
            f"{user_model.__name__} is not declared on the db given to Flasket (it belongs to"
            " another SQLAlchemy() instance, or to a bind of its own): pass the db whose"
            f" db.Model {user_model.__name__} subclasses, as Flasket's tables join its metadata."
        )
    user_table = pk_column.table.fullname

    def user_fk(ondelete: str, nullable: bool = False, **kwargs: Any) -> Any:
        """A column naming a host user; ``ondelete`` says what a host's deletion of them does."""
        return mapped_column(
            pk_column.type.copy(),
            sa.ForeignKey(f"{user_table}.{pk_column.name}", ondelete=ondelete),
            nullable=nullable or ondelete == "SET NULL",
            **kwargs,
        )

    # Prefixed class names keep the host's registry free of a second "Ticket".
    base: Any = db.Model

    class FlasketTicketCategory(TicketCategoryBase, base):  # type: ignore[misc]
        __table_args__ = (
            sa.Index("ix_flasket_ticket_category_name_value", "name", "value", "ticket_id"),
        )

    sa.event.listen(
        FlasketTicketCategory.__table__,
        "after_create",
        sa.DDL(CATEGORY_STATISTICS).execute_if(dialect="postgresql"),  # type: ignore[no-untyped-call]
    )

    class FlasketTicket(TicketBase, base):  # type: ignore[misc]
        # One index per list order: "newest" and "oldest" sort by id, which grows with time.
        __table_args__ = (
            sa.Index("ix_flasket_ticket_status_updated", "status", "updated_at", "id"),
            sa.Index("ix_flasket_ticket_status_id", "status", "id"),
            sa.Index("ix_flasket_ticket_updated", "updated_at", "id"),
            sa.Index("ix_flasket_ticket_author_updated", "author_id", "updated_at", "id"),
            sa.Index("ix_flasket_ticket_author_status", "author_id", "status"),
            # A host deleting a user sets their closed_by_id to NULL: without it, a full scan.
            sa.Index("ix_flasket_ticket_closed_by", "closed_by_id"),
            *search_indexes(),
            _NEVER_REUSED_IDS,
        )

        # A deleted user's tickets and replies stay, shown as "a deleted user".
        author_id = user_fk("SET NULL")
        closed_by_id = user_fk("SET NULL")
        author = relationship(user_model, foreign_keys=[author_id])
        closed_by = relationship(user_model, foreign_keys=[closed_by_id])
        categories = relationship(
            FlasketTicketCategory,
            order_by=FlasketTicketCategory.name,
            cascade="all, delete-orphan",
            passive_deletes=True,
        )
        #: ``{name: value}`` of every category, when a list's query loads it with the row.
        listed_categories: Mapped[dict[str, str] | None] = query_expression()

    class FlasketReply(ReplyBase, base):  # type: ignore[misc]
        __table_args__ = (
            sa.Index("ix_flasket_reply_ticket_id", "ticket_id", "id"),
            sa.Index("ix_flasket_reply_author_id", "author_id", "id"),
            *reply_search_indexes(),
            _NEVER_REUSED_IDS,
        )

        author_id = user_fk("SET NULL")
        author = relationship(user_model)
        ticket = relationship(FlasketTicket)

    class FlasketFollow(FollowBase, base):  # type: ignore[misc]
        __table_args__ = (
            sa.PrimaryKeyConstraint("ticket_id", "user_id"),
            sa.Index("ix_flasket_follow_user_ticket", "user_id", "ticket_id"),
            sa.Index("ix_flasket_follow_ticket_created", "ticket_id", "created_at", "user_id"),
        )

        user_id = user_fk("CASCADE", primary_key=True)
        user = relationship(user_model)
        ticket = relationship(FlasketTicket)

    class FlasketOutboxEvent(OutboxEventBase, base):  # type: ignore[misc]
        # Deliverers look for the events not fanned out yet.
        __table_args__ = (
            sa.Index("ix_flasket_outbox_event_fanned_out", "fanned_out_at", "id"),
            sa.Index("ix_flasket_outbox_event_ticket", "ticket_id"),
            _NEVER_REUSED_IDS,
        )

    class FlasketOutbox(OutboxBase, base):  # type: ignore[misc]
        # The claim query reads pending rows in next_attempt_at order; a fan-out runs once.
        __table_args__ = (
            sa.Index("ix_flasket_outbox_status_next", "status", "next_attempt_at"),
            sa.Index("ix_flasket_outbox_ticket", "ticket_id"),
            sa.UniqueConstraint("event_id", "recipient", name="uq_flasket_outbox_event_recipient"),
            sa.Index("ix_flasket_outbox_recipient", "recipient_id"),
            _NEVER_REUSED_IDS,
        )

        #: The follower a copy is for (null: a configured staff address). A host deleting the
        #: user deletes their copies: pending mail to them is cancelled, their address erased.
        recipient_id = user_fk("CASCADE", nullable=True)

    _clean_up_after_host_deletions_on_sqlite(FlasketTicket.__table__, FlasketOutbox.__table__)

    _add_search_tables(FlasketTicket.__table__, FlasketReply.__table__)
    return Models(
        Ticket=FlasketTicket,
        TicketCategory=FlasketTicketCategory,
        Reply=FlasketReply,
        Follow=FlasketFollow,
        OutboxEvent=FlasketOutboxEvent,
        Outbox=FlasketOutbox,
        user=user_model,
        user_pk=pk_attr,
    )
