"""Flasket's tables, declared on the host's own ``db.Model``.

The classes are built once per ``(db, user_model)`` pair, so they live in the
host's metadata (``db.create_all()`` and Flask-Migrate see them) and their
foreign keys follow whatever table and primary key the host's user model has.
What their full-text indexes hold is :mod:`flasket.search_index`'s concern.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import Mapped, mapped_column, query_expression, relationship

from .config import TITLE_MAX_LENGTH

# The two documents stay importable from here: migration revisions written before
# flasket.search_index existed import them from flasket.models.
from .search_index import REPLY_SEARCH_DOCUMENT as REPLY_SEARCH_DOCUMENT
from .search_index import SEARCH_DOCUMENT as SEARCH_DOCUMENT
from .search_index import add_search_tables, reply_search_indexes, search_indexes

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy


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
    """The current time, timezone-aware in UTC, as every Flasket timestamp is stored.

    :return: ``datetime.now(timezone.utc)``.
    """
    return datetime.now(timezone.utc)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database, SQLite included."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        """The column type on ``dialect``: ``DATETIME(6)`` on MySQL and MariaDB.

        :param dialect: the database's SQLAlchemy dialect.
        :return: the dialect's own type.
        """
        if dialect.name in {"mysql", "mariadb"}:
            # MySQL's DATETIME drops fractions of a second unless asked to keep them.
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """A value as stored: in UTC, and naive on databases without a time zone type.

        :param value: a timezone-aware datetime, or None.
        :param dialect: the database's SQLAlchemy dialect.
        :return: the value to send to the database.
        :raises ValueError: for a naive datetime.
        """
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("Flasket stores only timezone-aware datetimes")
        value = value.astimezone(timezone.utc)
        # Databases without a time zone type get the UTC wall time.
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """A stored value read back, timezone-aware in UTC.

        :param value: what the database returned, or None.
        :param dialect: the database's SQLAlchemy dialect.
        :return: the datetime in UTC, or None.
        """
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
    #: The configured status (``FLASKET_STATUSES``): ``open``, ``waiting``, ``closed``...
    status: Mapped[str] = mapped_column(sa.String(16), default=OPEN)
    #: The status's kind, :data:`OPEN` or :data:`CLOSED`: what the lists filter on.
    state: Mapped[str] = mapped_column(sa.String(8), default=OPEN, server_default=OPEN)
    #: Why a closed ticket was closed (``config.RESOLUTIONS``); null while open, or unknown.
    resolution: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: When its author last edited the description (null: never); earlier versions are in
    #: ``flasket_revision``.
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reply_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: Whether the ticket waits for an answer from staff: true when it is filed and after a
    #: reply by anyone who is not staff (the requester, or another user), false after a staff
    #: reply. An open ticket that does not wait on the requester and awaits staff is in the
    #: "waiting on staff" queue.
    awaiting_staff: Mapped[bool] = mapped_column(sa.Boolean, default=True, server_default="1")
    follower_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: The one-time key of the form that submitted the ticket (null without one): the same
    #: form sent again finds this ticket instead of storing a second (``flasket.forms.FORM_KEY``).
    form_key: Mapped[str | None] = mapped_column(
        sa.String(43), nullable=True, unique=True, index=True
    )

    if TYPE_CHECKING:
        author_id: Mapped[Any]
        closed_by_id: Mapped[Any]
        assignee_id: Mapped[Any]
        duplicate_of_id: Mapped[int | None]
        duplicate_of: Mapped[TicketBase | None]
        author: Mapped[Any]
        closed_by: Mapped[Any]
        assignee: Mapped[Any]
        categories: Mapped[list[TicketCategoryBase]]
        listed_categories: Mapped[dict[str, str] | None]
        viewer_follows: Mapped[bool | None]
        has_duplicates: Mapped[bool | None]

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

        :return: category name to value.
        """
        listed = self.listed_categories
        if listed is not None:
            return dict(sorted(listed.items()))
        return {c.name: c.value for c in self.categories}

    def __repr__(self) -> str:
        return f"<Ticket #{self.id} {self.status} ({self.state})>"


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
    """Columns of ``flasket_reply``: one reply on a ticket; the mapped class adds its author."""

    __tablename__ = "flasket_reply"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("flasket_ticket.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(LONG_TEXT)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The one-time key of the reply form that posted it, as :attr:`TicketBase.form_key`.
    form_key: Mapped[str | None] = mapped_column(
        sa.String(43), nullable=True, unique=True, index=True
    )
    #: When its author last edited it (null: never); earlier versions are in
    #: ``flasket_revision``.
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: When staff hid it (null: shown). A hidden reply's text is kept in ``flasket_revision``
    #: and its ``body`` is empty, so no page, list or search shows what it said.
    hidden_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    if TYPE_CHECKING:
        author_id: Mapped[Any]
        author: Mapped[Any]
        ticket: Mapped[TicketBase]

        def __init__(self, **kwargs: Any) -> None: ...

    def __repr__(self) -> str:
        return f"<Reply {self.id} on #{self.ticket_id}>"


#: :attr:`RevisionBase.reason` of a text its author replaced.
EDITED = "edit"
#: :attr:`RevisionBase.reason` of a reply's text that staff hid.
HIDDEN = "hide"


class RevisionBase:
    """Columns of ``flasket_revision``: a ticket description's or reply's earlier text.

    Kept when its author edits it (:data:`EDITED`) or staff hide a reply (:data:`HIDDEN`);
    only staff read them.
    """

    __tablename__ = "flasket_revision"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("flasket_ticket.id", ondelete="CASCADE"))
    #: The reply whose text it was; null: the ticket's description.
    reply_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("flasket_reply.id", ondelete="CASCADE"), nullable=True
    )
    #: The text as it was before the change.
    body: Mapped[str] = mapped_column(LONG_TEXT)
    #: :data:`EDITED` or :data:`HIDDEN`.
    reason: Mapped[str] = mapped_column(sa.String(8))
    #: When it was replaced (or hidden).
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    if TYPE_CHECKING:
        editor_id: Mapped[Any]
        editor: Mapped[Any]

        def __init__(self, **kwargs: Any) -> None: ...

    def __repr__(self) -> str:
        return f"<Revision {self.id} of #{self.ticket_id}/{self.reply_id}>"


class NoteBase:
    """Columns of ``flasket_note``: an internal note, which only staff read.

    Notes live in their own table, not among the replies, so nothing that reads replies
    (the thread non-staff see, reply counts, search, a user's replies, the reply mail) can
    show one. A note does not touch its ticket's ``updated_at`` or ``reply_count``.
    """

    __tablename__ = "flasket_note"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("flasket_ticket.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(LONG_TEXT)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The last reply of the ticket when the note was written (null: none yet): the thread
    #: shows the note after it, on that reply's page.
    after_reply_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    #: The one-time key of the note form that posted it, as :attr:`TicketBase.form_key`.
    form_key: Mapped[str | None] = mapped_column(
        sa.String(43), nullable=True, unique=True, index=True
    )

    if TYPE_CHECKING:
        author_id: Mapped[Any]
        author: Mapped[Any]
        ticket: Mapped[TicketBase]

        def __init__(self, **kwargs: Any) -> None: ...

    def __repr__(self) -> str:
        return f"<Note {self.id} on #{self.ticket_id}>"


class ChangeBase:
    """Columns of ``flasket_ticket_change``: one recorded change of a ticket, for its history.

    Who changed what and when: ``field`` names what changed (:data:`STATUS_CHANGE`,
    :data:`ASSIGNEE_CHANGE`), ``old_value`` and ``new_value`` hold it before and after (a
    status's name), ``detail`` adds to it (the resolution a ticket was closed with), and
    ``old_user`` / ``new_user`` are the users a change of assignee is between. The thread
    shows it after the reply that was the ticket's last when it happened. A change only
    staff may know of is ``staff_only``.
    """

    __tablename__ = "flasket_ticket_change"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("flasket_ticket.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The ticket's last reply when it happened (null: none), as in :class:`NoteBase`.
    after_reply_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    field: Mapped[str] = mapped_column(sa.String(16))
    old_value: Mapped[str | None] = mapped_column(sa.String(TITLE_MAX_LENGTH), nullable=True)
    new_value: Mapped[str | None] = mapped_column(sa.String(TITLE_MAX_LENGTH), nullable=True)
    detail: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    staff_only: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default="0")

    if TYPE_CHECKING:
        __table__: sa.Table
        actor_id: Mapped[Any]
        old_user_id: Mapped[Any]
        new_user_id: Mapped[Any]
        actor: Mapped[Any]
        old_user: Mapped[Any]
        new_user: Mapped[Any]

        def __init__(self, **kwargs: Any) -> None: ...

    def __repr__(self) -> str:
        return f"<Change {self.id} of {self.field} on #{self.ticket_id}>"


#: :attr:`ChangeBase.field` of a change of status (``old_value`` and ``new_value`` are status
#: names; ``detail`` the resolution when it closed the ticket).
STATUS_CHANGE = "status"
#: :attr:`ChangeBase.field` of a change of assignee (``old_user`` and ``new_user``; their
#: keys as text in ``old_value`` and ``new_value``).
ASSIGNEE_CHANGE = "assignee"
#: :attr:`ChangeBase.field` of a text its author edited (``detail``: ``"ticket"`` for the
#: description, else ``"reply"`` and ``new_value`` the reply's id).
EDIT_CHANGE = "edit"
#: :attr:`ChangeBase.field` of a reply staff hid (``new_value``: its id).
HIDE_CHANGE = "hide"
#: :attr:`ChangeBase.field` of a hidden reply staff showed again (``new_value``: its id).
UNHIDE_CHANGE = "unhide"
#: :attr:`ChangeBase.field` of a new title (``old_value``, ``new_value``).
TITLE_CHANGE = "title"
#: :attr:`ChangeBase.field` of a category's value (``detail``: the category's name;
#: ``old_value`` and ``new_value``: its values, None for none).
CATEGORY_CHANGE = "category"
#: :attr:`ChangeBase.field` of a ticket closed as a duplicate (``new_value``: the original's
#: number; ``old_value`` the status it left), on the duplicate; or, with ``detail``
#: :data:`REPOINTED`, of a duplicate whose original was itself closed as a duplicate, so it
#: now duplicates that one (``old_value``: the number of the ticket it duplicated).
DUPLICATE_CHANGE = "duplicate"
#: :attr:`ChangeBase.detail` of a :data:`DUPLICATE_CHANGE` that moved a duplicate on.
REPOINTED = "repointed"
#: :attr:`ChangeBase.field` on the original, when another ticket was closed as its duplicate
#: (``new_value``: the duplicate's number).
DUPLICATED_CHANGE = "duplicated"


class FollowBase:
    """Columns of ``flasket_follow``: a user follows a ticket (gets mail when it changes)."""

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
    #: The reply a ``replied`` event is about (no foreign key: a reply deleted before the
    #: fan-out leaves its recipients the event's own rendering).
    reply_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    #: The locale and time zone ``subject``, ``text`` and ``html`` are written for (the
    #: site's); a recipient who reads another gets their own copy at fan-out. Null (an event
    #: from before these columns): English and UTC.
    locale: Mapped[str | None] = mapped_column(sa.String(35), nullable=True)
    time_zone: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    #: Fan-outs that raised; the next waits like a message's retry, none after the last.
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    #: When the next fan-out may run after one raised (null: at once).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    #: When Flasket gave up the fan-out; ``flask flasket outbox --retry-event`` requeues it.
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The internal note a ``note`` event is about (no foreign key, as ``reply_id``).
    note_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    #: The one user an event is addressed to, their primary key as text (``assigned``: the
    #: new assignee); null: the event goes to the followers (or, new tickets, the staff).
    recipient_key: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)

    if TYPE_CHECKING:
        __table__: sa.Table

        def __init__(self, **kwargs: Any) -> None: ...

    def __repr__(self) -> str:
        return f"<OutboxEvent {self.id} {self.event} on ticket {self.ticket_id}>"


class OutboxBase:
    """One e-mail to one recipient: its delivery state; the bodies are its event's, or its own.

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
    #: This copy's bodies when it is written in another language or time zone than its
    #: event's (the recipient's own, :func:`flasket.i18n.user_reader`); null: the event's.
    text: Mapped[str | None] = mapped_column(LONG_TEXT, nullable=True)
    html: Mapped[str | None] = mapped_column(LONG_TEXT, nullable=True)
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
    Note: type[NoteBase]
    Change: type[ChangeBase]
    Revision: type[RevisionBase]
    Follow: type[FollowBase]
    OutboxEvent: type[OutboxEventBase]
    Outbox: type[OutboxBase]
    user: type[Any]
    user_pk: str

    def user_id(self, user: Any) -> Any:
        """The primary-key value of a host user object.

        :param user: an instance of the host's user model.
        :return: its primary key (of whatever type the host's key column has).
        """
        return getattr(user, self.user_pk)


#: The models declared on each db. Declaring adds classes to the db's own registry and tables
#: to its metadata, which every app using that db shares, so they are kept per db, not per
#: app (Flask-SQLAlchemy keeps its models the same way), and declared once.
_built: dict[SQLAlchemy, Models] = {}
_lock = threading.Lock()


def get_models(db: SQLAlchemy, user_model: type[Any]) -> Models:
    """The Flasket models on ``db``, declared the first time they are asked for.

    :param db: the host's Flask-SQLAlchemy object; the tables join its metadata.
    :param user_model: the host's user model, with a single-column primary key.
    :return: the same :class:`Models` for every call with the same pair.
    :raises RuntimeError: when ``db`` holds Flasket's tables for another user model.
    :raises TypeError: when ``user_model`` has no single-column primary key.
    """
    with _lock:
        found = _built.get(db)
        if found is not None:
            if found.user is user_model:
                return found
            raise RuntimeError(
                f"Flasket's tables are already declared on this db for user model "
                f"{found.user.__name__}; one db can hold them for one user model only."
            )
        models = _built[db] = _declare(db, user_model)
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
            ("UPDATE flasket_ticket SET assignee_id = NULL", "assignee_id"),
            ("UPDATE flasket_reply SET author_id = NULL", "author_id"),
            ("UPDATE flasket_note SET author_id = NULL", "author_id"),
            ("UPDATE flasket_ticket_change SET actor_id = NULL", "actor_id"),
            ("UPDATE flasket_ticket_change SET old_user_id = NULL", "old_user_id"),
            ("UPDATE flasket_ticket_change SET new_user_id = NULL", "new_user_id"),
            ("UPDATE flasket_revision SET editor_id = NULL", "editor_id"),
            ("DELETE FROM flasket_follow", "user_id"),
            ("DELETE FROM flasket_outbox", "recipient_id"),
        )
    )
    on_ticket_deleted = (
        "DELETE FROM flasket_ticket_category WHERE ticket_id = OLD.id;"
        " DELETE FROM flasket_reply WHERE ticket_id = OLD.id;"
        " DELETE FROM flasket_note WHERE ticket_id = OLD.id;"
        " DELETE FROM flasket_ticket_change WHERE ticket_id = OLD.id;"
        " DELETE FROM flasket_revision WHERE ticket_id = OLD.id;"
        " UPDATE flasket_ticket SET duplicate_of_id = NULL WHERE duplicate_of_id = OLD.id;"
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
            # Open and closed lists read the kind (state); one status's list reads status.
            sa.Index("ix_flasket_ticket_state_updated", "state", "updated_at", "id"),
            sa.Index("ix_flasket_ticket_state_id", "state", "id"),
            sa.Index("ix_flasket_ticket_status_updated", "status", "updated_at", "id"),
            sa.Index("ix_flasket_ticket_status_id", "status", "id"),
            sa.Index("ix_flasket_ticket_updated", "updated_at", "id"),
            sa.Index("ix_flasket_ticket_author_updated", "author_id", "updated_at", "id"),
            sa.Index("ix_flasket_ticket_author_state", "author_id", "state"),
            # The staff queues: one assignee's (or nobody's) open tickets, those waiting on
            # staff, and the recently closed; each read in its list's order.
            sa.Index(
                "ix_flasket_ticket_assignee_state_updated",
                "assignee_id",
                "state",
                "updated_at",
                "id",
            ),
            # ... and the same queues newest or oldest first: one assignee's tickets are too
            # few among all to find by walking the tickets in number order.
            sa.Index("ix_flasket_ticket_assignee_state_id", "assignee_id", "state", "id"),
            # With the status last, "waiting on staff" (which leaves out the statuses that
            # wait on the requester) reads only the index.
            sa.Index(
                "ix_flasket_ticket_state_awaiting_updated",
                "state",
                "awaiting_staff",
                "updated_at",
                "id",
                "status",
            ),
            sa.Index("ix_flasket_ticket_state_closed", "state", "closed_at", "id"),
            # An original lists its duplicates.
            sa.Index("ix_flasket_ticket_duplicate_of", "duplicate_of_id", "id"),
            # A host deleting a user sets their closed_by_id to NULL: without it, a full scan.
            sa.Index("ix_flasket_ticket_closed_by", "closed_by_id"),
            *search_indexes(),
            _NEVER_REUSED_IDS,
        )

        # A deleted user's tickets and replies stay, shown as "a deleted user".
        author_id = user_fk("SET NULL")
        closed_by_id = user_fk("SET NULL")
        #: The staff member working on the ticket, or None (unassigned).
        assignee_id = user_fk("SET NULL")
        #: The ticket this one was closed as a duplicate of (resolution "duplicate"), or None.
        duplicate_of_id: Mapped[int | None] = mapped_column(
            sa.ForeignKey("flasket_ticket.id", ondelete="SET NULL"), nullable=True
        )
        author = relationship(user_model, foreign_keys=[author_id])
        closed_by = relationship(user_model, foreign_keys=[closed_by_id])
        assignee = relationship(user_model, foreign_keys=[assignee_id])
        #: The ticket this one duplicates (see ``duplicate_of_id``), or None.
        duplicate_of = relationship(
            lambda: FlasketTicket, remote_side=lambda: [FlasketTicket.id], uselist=False
        )
        categories = relationship(
            FlasketTicketCategory,
            order_by=FlasketTicketCategory.name,
            cascade="all, delete-orphan",
            passive_deletes=True,
        )
        #: ``{name: value}`` of every category, when a list's query loads it with the row.
        listed_categories: Mapped[dict[str, str] | None] = query_expression()
        #: Whether the reader follows the ticket, when the ticket page's query loads it.
        viewer_follows: Mapped[bool | None] = query_expression()
        #: Whether any ticket is a duplicate of this one, when the ticket page's query
        #: loads it.
        has_duplicates: Mapped[bool | None] = query_expression()

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

    class FlasketNote(NoteBase, base):  # type: ignore[misc]
        __table_args__ = (
            # A page of the thread reads the notes after its replies.
            sa.Index("ix_flasket_note_ticket_after", "ticket_id", "after_reply_id", "id"),
            sa.Index("ix_flasket_note_author", "author_id"),
            _NEVER_REUSED_IDS,
        )

        author_id = user_fk("SET NULL")
        author = relationship(user_model)
        ticket = relationship(FlasketTicket)

    class FlasketTicketChange(ChangeBase, base):  # type: ignore[misc]
        __table_args__ = (
            # A page of the thread reads the changes after its replies.
            sa.Index("ix_flasket_ticket_change_ticket_after", "ticket_id", "after_reply_id", "id"),
            # A host deleting a user clears their name from the history: found by these.
            sa.Index("ix_flasket_ticket_change_actor", "actor_id"),
            sa.Index("ix_flasket_ticket_change_old_user", "old_user_id"),
            sa.Index("ix_flasket_ticket_change_new_user", "new_user_id"),
            _NEVER_REUSED_IDS,
        )

        actor_id = user_fk("SET NULL")
        old_user_id = user_fk("SET NULL")
        new_user_id = user_fk("SET NULL")
        actor = relationship(user_model, foreign_keys=[actor_id])
        old_user = relationship(user_model, foreign_keys=[old_user_id])
        new_user = relationship(user_model, foreign_keys=[new_user_id])

    class FlasketRevision(RevisionBase, base):  # type: ignore[misc]
        __table_args__ = (
            # The versions page reads one text's revisions, newest first.
            sa.Index("ix_flasket_revision_ticket_reply", "ticket_id", "reply_id", "id"),
            sa.Index("ix_flasket_revision_reply", "reply_id"),
            sa.Index("ix_flasket_revision_editor", "editor_id"),
            _NEVER_REUSED_IDS,
        )

        editor_id = user_fk("SET NULL")
        editor = relationship(user_model)

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

    add_search_tables(FlasketTicket.__table__, FlasketReply.__table__)
    return Models(
        Ticket=FlasketTicket,
        TicketCategory=FlasketTicketCategory,
        Reply=FlasketReply,
        Note=FlasketNote,
        Change=FlasketTicketChange,
        Revision=FlasketRevision,
        Follow=FlasketFollow,
        OutboxEvent=FlasketOutboxEvent,
        Outbox=FlasketOutbox,
        user=user_model,
        user_pk=pk_attr,
    )
