"""Everything that changes tickets: one transaction each, then mail and signals.

Each function writes its event's mail to the outbox in the same transaction
(:func:`flasket.notify.enqueue`: one row, whatever the number of followers),
commits, and only after the commit hands the new outbox event to
:mod:`flasket.background` and then sends the blinker signal. Each one locks the
ticket row, then makes its change with conditional UPDATEs, so concurrent
requests cannot double-close a ticket, lose a reply count or follow twice.

Once the commit is done, nothing may turn the change into an error: whatever a
caller needs to answer is read before it (:class:`Posted`), the commit leaves
loaded objects as they are (``_commit``), a failed hand-off is logged, and
each signal receiver runs on its own (:func:`flasket.signals.send`).

A ticket or reply form carries a one-time key (:data:`flasket.forms.FORM_KEY`),
stored with the row under a unique index: the same form sent twice (a double
click, a reload) stores one row, and the second sending is answered like the
first (:func:`create_ticket_once`, :func:`post_reply_once`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.orm import Session
from werkzeug.local import LocalProxy

from . import background, notify, policy, signals
from .config import DUPLICATE, Status
from .models import (
    ASSIGNEE_CHANGE,
    CATEGORY_CHANGE,
    CLOSED,
    DUPLICATE_CHANGE,
    DUPLICATED_CHANGE,
    EDIT_CHANGE,
    EDITED,
    HIDDEN,
    HIDE_CHANGE,
    OPEN,
    PENDING,
    REPOINTED,
    STATUS_CHANGE,
    TITLE_CHANGE,
    UNHIDE_CHANGE,
    Models,
    ReplyBase,
    TicketBase,
    utcnow,
)
from .proxies import current_flasket
from .sql import affected_rows, app_object

log = logging.getLogger("flasket")


class TicketClosedError(Exception):
    """The ticket was closed before the reply could be added.

    Raised by :func:`post_reply` and :func:`post_reply_once`, with the ticket's id as its
    one argument; nothing was stored.
    """


class FormKeyUsedError(Exception):
    """The form's key is on a stored ticket or reply this sending does not repeat.

    ``own_ticket_id`` is set when the key is the sender's own, on that ticket (or a reply
    to it) with other text: they sent the form again after changing it. It is None when
    the key is someone else's, or names another ticket: nothing about that row is told.
    Nothing was stored.

    :param own_ticket_id: the sender's own ticket the key is on, or None.
    """

    def __init__(self, own_ticket_id: int | None) -> None:
        super().__init__(own_ticket_id)
        self.own_ticket_id = own_ticket_id


@dataclass(frozen=True)
class Posted:
    """A stored ticket or reply as a view answers it, read before the commit."""

    #: The ticket's id: the new ticket's, or the ticket replied to.
    ticket_id: int
    #: The reply's id; None for a new ticket.
    reply_id: int | None = None
    #: The reply's place among its ticket's replies, 1 for the first; 0 for a new ticket.
    reply_number: int = 0
    #: The same form had been sent before: nothing was stored now, the ids are the first's.
    repeated: bool = False


def _commit(session: Session) -> None:
    """Commit without expiring the session's objects.

    They hold what was just committed (each action reads back what its UPDATEs changed
    before committing), so the caller, the signals' receivers and anything they keep can
    read them without the database, which may be gone by then.
    """
    real = cast(Session, current_flasket.db.session())
    expire = real.expire_on_commit
    real.expire_on_commit = False
    try:
        session.commit()
    finally:
        real.expire_on_commit = expire


def _after_commit(outbox_ids: list[int], signal: Any, **models: Any) -> None:
    """Hand the mail to delivery, then send the signal; neither can fail the committed change."""
    try:
        background.after_commit(outbox_ids)
    except Exception:
        log.exception(
            "Handing %d outbox event(s) to delivery failed; the next delivery run sends them",
            len(outbox_ids),
        )
    _send(signal, **models)


def _send(signal: Any, **models: Any) -> None:
    """Send ``signal`` from the app with the objects themselves, never ``current_user``'s proxy.

    A receiver may keep what it gets; a request-bound proxy would turn into ``None`` later.
    A receiver that raises is logged and the others still run; if one did, the session is
    rolled back, so what the request does next has a session it can use.
    """
    app = app_object()
    if signals.send(signal, app, **{name: _unproxied(value) for name, value in models.items()}):
        try:
            current_flasket.session.rollback()
        except Exception:
            log.warning("Rolling back after a failed signal receiver failed too", exc_info=True)


def _unproxied(value: Any) -> Any:
    return value._get_current_object() if isinstance(value, LocalProxy) else value


def _touch(models: Models, now: Any) -> Any:
    """``updated_at`` moves forward only, whatever order concurrent writers commit in."""
    column = models.Ticket.updated_at
    return sa.case((column < now, now), else_=column)


@dataclass(frozen=True)
class Locked:
    """What a writer reads of its ticket with the lock: the state its change starts from."""

    #: The ticket's status, as committed before the change.
    status: str | None
    #: The id of the ticket's last reply, or None: a change recorded now follows it.
    last_reply_id: int | None


def _lock_ticket(session: Session, models: Models, ticket_id: int) -> Locked:
    """Lock the ticket row by its primary key first, so writers to one ticket queue up.

    MariaDB deadlocks otherwise: a follow's foreign-key check takes a shared lock the
    counter update cannot upgrade, and a status UPDATE may lock gaps of the status index.
    The same statement reads the ticket's status and last reply, for its history.

    :return: the ticket's status and last reply (both None for a ticket that is gone).
    """
    Ticket, Reply = models.Ticket, models.Reply
    last_reply = sa.select(sa.func.max(Reply.id)).where(Reply.ticket_id == Ticket.id)
    found = session.execute(
        sa.select(Ticket.status, last_reply.scalar_subquery())
        .where(Ticket.id == ticket_id)
        .with_for_update()
    ).first()
    return Locked(None, None) if found is None else Locked(found[0], found[1])


def _reread(session: Session, obj: Any) -> None:
    """Read ``obj``'s row again with a lock (a locking read sees what was committed since,
    where MariaDB's plain read would see the transaction's older snapshot), without the
    joins it was loaded with: PostgreSQL refuses FOR UPDATE on an outer join, and MariaDB
    would lock the joined users' rows too."""
    cls = type(obj)
    session.execute(
        sa.select(cls)
        .where(cls.id == obj.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def _update_if(
    session: Session, models: Models, ticket: TicketBase, condition: Any, **values: Any
) -> bool:
    """UPDATE the ticket's row with ``values`` where ``condition`` still holds (what the
    change is from), then refresh ``ticket``. When nothing matched (a form sent twice, or
    from a page older than someone else's change) the transaction ends here, committed.

    :return: True when the row changed.
    """
    changed = session.execute(
        sa.update(models.Ticket)
        .where(models.Ticket.id == ticket.id, condition)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.refresh(ticket)
    if affected_rows(changed) == 1:
        return True
    _commit(session)
    return False


def _record(
    session: Session,
    models: Models,
    ticket_id: int,
    actor: Any,
    field: str,
    after_reply_id: int | None,
    now: Any,
    **values: Any,
) -> None:
    """Add one entry to the ticket's history (``flasket_ticket_change``), in the change's
    own transaction.

    :param values: ``old_value``, ``new_value``, ``detail``, ``old_user_id``,
        ``new_user_id``, ``staff_only``.
    """
    session.add(
        models.Change(
            ticket_id=ticket_id,
            actor_id=None if actor is None else models.user_id(actor),
            created_at=now,
            after_reply_id=after_reply_id,
            field=field,
            **values,
        )
    )


def _insert_follow(session: Session, models: Models, ticket_id: int, user_id: Any) -> bool:
    """Add a follow row unless it exists; True when this call added it."""
    values = {"ticket_id": ticket_id, "user_id": user_id, "created_at": utcnow()}
    table = models.Follow.__table__
    dialect = session.get_bind().dialect.name
    statement: Any
    if dialect in {"postgresql", "sqlite"}:
        # rowcount after ON CONFLICT DO NOTHING is not reliable on every driver; RETURNING is.
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(table).values(values).on_conflict_do_nothing()
        added = session.execute(statement.returning(table.c.ticket_id)).first() is not None
    elif dialect in {"mysql", "mariadb"}:
        statement = mysql.insert(table).values(values).prefix_with("IGNORE")
        added = affected_rows(session.execute(statement)) == 1
    else:
        exists = session.scalar(
            sa.select(sa.literal(True)).where(
                models.Follow.ticket_id == ticket_id, models.Follow.user_id == user_id
            )
        )
        if exists:
            return False
        session.execute(sa.insert(table).values(values))
        added = True
    if added:
        session.execute(
            sa.update(models.Ticket)
            .where(models.Ticket.id == ticket_id)
            .values(follower_count=models.Ticket.follower_count + 1)
        )
    return added


def create_ticket(author: Any, title: str, body: str, categories: Mapping[str, str]) -> TicketBase:
    """Store a new open ticket; its author follows it from the start.

    The ticket comes back loaded as committed: reading it needs no database. After the
    commit, the mail to the staff addresses is handed to delivery and
    :data:`flasket.signals.ticket_created` is sent. Needs an app context with Flasket
    registered; the text is stored as given (the forms check lengths and lines).

    :param author: the host user filing it.
    :param title: the title, one line, at most :data:`flasket.config.TITLE_MAX_LENGTH`
        characters.
    :param body: the description, at most :data:`flasket.config.BODY_MAX_LENGTH`
        characters.
    :param categories: maps a configured category's name to the value chosen.
    :return: the new ticket, committed.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails; nothing is stored.
    """
    ticket, _ = _create_ticket(author, title, body, categories, None)
    assert ticket is not None  # only a form key finds an earlier ticket
    return ticket


def create_ticket_once(
    author: Any, title: str, body: str, categories: Mapping[str, str], form_key: str | None
) -> Posted:
    """:func:`create_ticket` for a form, which stores one ticket however often it is sent.

    Sent again with the same ``form_key``, nothing is stored, and the answer is the first
    sending's. Without a key, every call stores a ticket.

    :param author: the host user filing it.
    :param title: the title, as for :func:`create_ticket`.
    :param body: the description, as for :func:`create_ticket`.
    :param categories: maps a configured category's name to the value chosen.
    :param form_key: the form's one-time key (:func:`flasket.forms.new_form_key`), or None.
    :return: the new ticket's id, or the first sending's with ``repeated`` set.
    :raises FormKeyUsedError: when the key is on someone else's ticket, or on the author's
        own ticket with another title or description.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails; nothing is stored.
    """
    return _create_ticket(author, title, body, categories, form_key)[1]


def _create_ticket(
    author: Any, title: str, body: str, categories: Mapping[str, str], form_key: str | None
) -> tuple[TicketBase | None, Posted]:
    """The new ticket and its answer, or None and the answer of the ticket the key is on."""
    session, models = current_flasket.session, current_flasket.models
    author_id = models.user_id(author)
    now = utcnow()
    ticket = models.Ticket(
        author_id=author_id,
        title=title,
        body=body,
        status=current_flasket.first_status(OPEN).name,
        state=OPEN,
        created_at=now,
        updated_at=now,
        reply_count=0,
        follower_count=0,
        form_key=form_key,
    )
    ticket.categories = [
        models.TicketCategory(name=name, value=value) for name, value in categories.items()
    ]
    session.add(ticket)
    try:
        session.flush()
    except sa.exc.IntegrityError:
        # A concurrent sending of the form waits on the unique index until the first commits.
        session.rollback()
        earlier = _earlier_ticket(session, models, form_key, author_id, title, body)
        if earlier is None:
            raise
        return None, earlier
    _insert_follow(session, models, ticket.id, author_id)
    outbox_ids = notify.enqueue(session, notify.CREATED, ticket, author)
    posted = Posted(ticket_id=ticket.id)
    _commit(session)
    _after_commit(outbox_ids, signals.ticket_created, ticket=ticket, user=author)
    return ticket, posted


def _earlier_ticket(
    session: Session, models: Models, form_key: str | None, author_id: Any, title: str, body: str
) -> Posted | None:
    """The ticket an earlier sending of the form stored, answered as then; None if none.

    :raises FormKeyUsedError: when that ticket is not this sending's (see the class).
    """
    if form_key is None:
        return None
    Ticket = models.Ticket
    found = session.execute(
        sa.select(Ticket.id, Ticket.author_id, Ticket.title, Ticket.body).where(
            Ticket.form_key == form_key
        )
    ).first()
    if found is None:
        return None
    if found.author_id != author_id:
        raise FormKeyUsedError(None)
    if (found.title, found.body) != (title, body):
        raise FormKeyUsedError(found.id)
    return Posted(ticket_id=found.id, repeated=True)


def post_reply(ticket: TicketBase, author: Any, body: str) -> ReplyBase:
    """Add a reply to an open ticket; the author of the reply now follows the ticket.

    The reply and the ticket come back loaded as committed: reading them needs no database.
    After the commit, the mail to the other followers is handed to delivery and
    :data:`flasket.signals.ticket_replied` is sent. Needs an app context with Flasket
    registered.

    :param ticket: the ticket, loaded in the current session; it is refreshed (its reply
        count and ``updated_at`` change).
    :param author: the host user replying.
    :param body: the reply's text, at most :data:`flasket.config.BODY_MAX_LENGTH`
        characters.
    :return: the new reply, committed.
    :raises TicketClosedError: if the ticket is (or was just) closed.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails; nothing is stored.
    """
    reply, _ = _post_reply(ticket, author, body, None)
    assert reply is not None  # only a form key finds an earlier reply
    return reply


def post_reply_once(
    ticket: TicketBase,
    author: Any,
    body: str,
    form_key: str | None,
    status: Status | None = None,
    resolution: str | None = None,
) -> Posted:
    """:func:`post_reply` for a form, which stores one reply however often it is sent.

    With ``status``, the ticket moves to it in the same transaction ("reply and close"):
    one reply, one mail about it. Whether the author may set it is the caller's check
    (:func:`flasket.policy.may_set_status`).

    Sent again with the same ``form_key``, nothing is stored, and the answer is the first
    sending's (even if the ticket was closed since). Without a key, every call stores a
    reply.

    :param ticket: the ticket, loaded in the current session.
    :param author: the host user replying.
    :param body: the reply's text, as for :func:`post_reply`.
    :param form_key: the form's one-time key (:func:`flasket.forms.new_form_key`), or None.
    :param status: the status the ticket moves to with the reply, or None to keep it (a
        status that waits on the requester still ends with the requester's reply).
    :param resolution: why it is closed, for a status of kind closed.
    :return: the new reply's place, or the first sending's with ``repeated`` set.
    :raises TicketClosedError: if the ticket is closed and the form was not sent before.
    :raises FormKeyUsedError: when the key is on someone else's reply, on a reply to
        another ticket, or on the author's own reply with other text.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails; nothing is stored.
    """
    return _post_reply(ticket, author, body, form_key, status, resolution)[1]


def earlier_reply(
    ticket: TicketBase, author: Any, body: str, form_key: str | None
) -> Posted | None:
    """The reply an earlier sending of this form stored, answered as then; None if none.

    For a view that will not post (the ticket is closed) but may owe the answer to a
    form sent before. Reads only.

    :param ticket: the ticket the form replies to.
    :param author: the host user sending the form.
    :param body: the reply's text as sent now.
    :param form_key: the form's one-time key, or None (then the answer is None).
    :return: the earlier reply's place with ``repeated`` set, or None.
    :raises FormKeyUsedError: as :func:`post_reply_once`.
    """
    session, models = current_flasket.session, current_flasket.models
    return _earlier_reply(session, models, form_key, ticket.id, models.user_id(author), body)


def _post_reply(
    ticket: TicketBase,
    author: Any,
    body: str,
    form_key: str | None,
    status: Status | None = None,
    resolution: str | None = None,
) -> tuple[ReplyBase | None, Posted]:
    """The new reply and its answer, or None and the answer of the reply the key is on."""
    session, models = current_flasket.session, current_flasket.models
    ticket_id, author_id = ticket.id, models.user_id(author)
    locked = _lock_ticket(session, models, ticket_id)
    now = utcnow()
    Ticket = models.Ticket
    by_requester = ticket.author_id is not None and ticket.author_id == author_id
    # Only a staff reply answers: the requester's, or anyone else's, waits on staff.
    values: dict[str, Any] = {"awaiting_staff": not policy.is_staff(author)}
    if status is not None:
        values.update(_status_values(models, author, status, resolution, now))
    elif by_requester:
        # The requester answered: a status that waited on them is over.
        waiting = [s.name for s in current_flasket.statuses() if s.waiting_on_requester]
        if waiting:
            values["status"] = sa.case(
                (Ticket.status.in_(waiting), current_flasket.first_status(OPEN).name),
                else_=Ticket.status,
            )
    counted = session.execute(
        sa.update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.state == OPEN)
        .values(reply_count=Ticket.reply_count + 1, updated_at=_touch(models, now), **values)
        .execution_options(synchronize_session=False)
    )
    if affected_rows(counted) != 1:
        session.rollback()
        # Closed since a first sending of this form posted it: that one is the answer.
        earlier = _earlier_reply(session, models, form_key, ticket_id, author_id, body)
        if earlier is None:
            raise TicketClosedError(ticket_id)
        return None, earlier
    reply = models.Reply(
        ticket_id=ticket_id, author_id=author_id, body=body, created_at=now, form_key=form_key
    )
    session.add(reply)
    try:
        session.flush()
    except sa.exc.IntegrityError:
        session.rollback()
        earlier = _earlier_reply(session, models, form_key, ticket_id, author_id, body)
        if earlier is None:
            raise
        return None, earlier
    _insert_follow(session, models, ticket_id, author_id)
    seen_state = ticket.state
    session.refresh(ticket)
    # Set with the reply, or a wait the requester's reply ended: the status's own signal too,
    # and an entry in the history, after the reply.
    moved = None
    if ticket.status != locked.status:
        moved = (
            signals.ticket_status_changed if ticket.state == seen_state else signals.ticket_closed
        )
        _record(
            session,
            models,
            ticket_id,
            author,
            STATUS_CHANGE,
            reply.id,
            now,
            old_value=locked.status,
            new_value=ticket.status,
            detail=ticket.resolution if ticket.state == CLOSED else None,
        )
    outbox_ids = notify.enqueue(session, notify.REPLIED, ticket, author, reply=reply)
    posted = Posted(ticket_id=ticket_id, reply_id=reply.id, reply_number=ticket.reply_count)
    _commit(session)
    _after_commit(outbox_ids, signals.ticket_replied, ticket=ticket, reply=reply, user=author)
    if moved is not None:  # one mail (the reply's, which shows the new status), two signals
        _send(moved, ticket=ticket, user=author)
    return reply, posted


def _earlier_reply(
    session: Session,
    models: Models,
    form_key: str | None,
    ticket_id: int,
    author_id: Any,
    body: str,
) -> Posted | None:
    """The reply an earlier sending of the form stored, answered as then; None if none.

    :raises FormKeyUsedError: when that reply is not this sending's (see the class).
    """
    if form_key is None:
        return None
    Reply = models.Reply
    found = session.execute(
        sa.select(Reply.id, Reply.ticket_id, Reply.author_id, Reply.body).where(
            Reply.form_key == form_key
        )
    ).first()
    if found is None:
        return None
    if found.author_id != author_id or found.ticket_id != ticket_id:
        raise FormKeyUsedError(None)
    if found.body != body:
        raise FormKeyUsedError(ticket_id)
    number = session.scalar(
        sa.select(sa.func.count()).where(Reply.ticket_id == ticket_id, Reply.id <= found.id)
    )
    return Posted(ticket_id=ticket_id, reply_id=found.id, reply_number=number or 1, repeated=True)


def _status_values(
    models: Models, actor: Any, status: Status, resolution: str | None, now: Any
) -> dict[str, Any]:
    """The columns a move to ``status`` writes: the kind, and who closed it, when and why.

    Any move ends a ticket's being a duplicate; :func:`close_as_duplicate` sets it after.
    """
    closing = status.kind == CLOSED
    return {
        "status": status.name,
        "state": status.kind,
        "resolution": (resolution or "solved") if closing else None,
        "closed_at": now if closing else None,
        "closed_by_id": models.user_id(actor) if closing else None,
        "duplicate_of_id": None,
    }


def set_status(
    ticket: TicketBase,
    actor: Any,
    status: Status,
    resolution: str | None = None,
    from_status: str | None = None,
) -> bool:
    """Move a ticket to ``status``; False (and nothing sent) if it moved meanwhile.

    The ticket changes only from ``from_status`` (the status the actor saw; by default the
    one it had when loaded), so a form sent twice, or sent from a page shown before someone
    else changed the status, changes nothing. A status of kind closed records who closed it,
    when, and the resolution (``config.RESOLUTIONS``; "solved" when None); one of kind open
    clears them. After the commit the followers are told: the closed or reopened mail when
    the kind changes, else the status mail, and the matching signal is sent
    (:data:`flasket.signals.ticket_closed`, :data:`~flasket.signals.ticket_reopened`,
    :data:`~flasket.signals.ticket_status_changed`). Whether ``actor`` may set it is the
    caller's check (:func:`flasket.policy.may_set_status`).

    :param ticket: the ticket, loaded in the current session; it is refreshed.
    :param actor: the host user changing it.
    :param status: a configured status (:meth:`flasket.state.FlasketState.statuses`).
    :param resolution: why it is closed, for a status of kind closed; ignored otherwise.
    :param from_status: the status the change is from; None for the loaded ticket's.
    :return: True when this call changed it.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails; nothing changed.
    """
    expected = ticket.status if from_status is None else from_status
    if status.name == expected:
        return False
    return _move(
        ticket, actor, status, resolution, current_flasket.models.Ticket.status == expected
    )


def _move(
    ticket: TicketBase, actor: Any, status: Status, resolution: str | None, condition: Any
) -> bool:
    """:func:`set_status`'s work, changing the row only where ``condition`` holds."""
    session, models = current_flasket.session, current_flasket.models
    locked = _lock_ticket(session, models, ticket.id)
    now = utcnow()
    seen_state = ticket.state
    values = _status_values(models, actor, status, resolution, now)
    if not _update_if(
        session, models, ticket, condition, **values, updated_at=_touch(models, now)
    ):
        return False
    _record(
        session,
        models,
        ticket.id,
        actor,
        STATUS_CHANGE,
        locked.last_reply_id,
        now,
        old_value=locked.status,
        new_value=status.name,
        detail=ticket.resolution if status.kind == CLOSED else None,
    )
    if seen_state == status.kind:
        event, signal = notify.STATUS_CHANGED, signals.ticket_status_changed
    elif status.kind == CLOSED:
        event, signal = notify.CLOSED, signals.ticket_closed
    else:
        event, signal = notify.REOPENED, signals.ticket_reopened
    outbox_ids = notify.enqueue(session, event, ticket, actor)
    _commit(session)
    _after_commit(outbox_ids, signal, ticket=ticket, user=actor)
    return True


def close_ticket(ticket: TicketBase, actor: Any, resolution: str | None = None) -> bool:
    """Close an open ticket, whatever its open status: the first status of kind closed.

    :param ticket: the ticket, loaded in the current session; it is refreshed.
    :param actor: the host user closing it.
    :param resolution: why (``config.RESOLUTIONS``); "solved" when None.
    :return: True when this call closed it; False if it was closed already.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails; nothing changed.
    """
    if ticket.state == CLOSED:
        return False
    closing = current_flasket.first_status(CLOSED)
    return _move(ticket, actor, closing, resolution, current_flasket.models.Ticket.state == OPEN)


def reopen_ticket(ticket: TicketBase, actor: Any) -> bool:
    """Reopen a closed ticket, whatever its closed status: the first status of kind open.

    :param ticket: the ticket, loaded in the current session; it is refreshed.
    :param actor: the host user reopening it.
    :return: True when this call reopened it; False if it was open already.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails; nothing changed.
    """
    if ticket.state == OPEN:
        return False
    opening = current_flasket.first_status(OPEN)
    return _move(ticket, actor, opening, None, current_flasket.models.Ticket.state == CLOSED)


def add_note_once(ticket: TicketBase, author: Any, body: str, form_key: str | None) -> Posted:
    """Add an internal note to a ticket, open or closed; a form sent again adds none.

    The note is placed after the ticket's last reply. It changes nothing else of the
    ticket: not its ``updated_at``, its reply count, its status, whom it waits on or who
    follows it (the author does not start following), so no list, count or page others
    read tells that a note was written. After the commit, the ``note`` mail
    (:data:`flasket.notify.NOTE`) goes to the followers who are staff and may read it, and
    :data:`flasket.signals.note_added` is sent.
    Whether ``author`` may add notes is the caller's check (:func:`flasket.policy.may_add_note`).

    :param ticket: the ticket, loaded in the current session.
    :param author: the staff member writing it.
    :param body: the note's text, at most :data:`flasket.config.BODY_MAX_LENGTH` characters.
    :param form_key: the form's one-time key (:func:`flasket.forms.new_form_key`), or None.
    :return: the note's id (``reply_id``) and, in ``reply_number``, the number of replies it
        follows; the first sending's with ``repeated`` set.
    :raises FormKeyUsedError: when the key is on someone else's note, a note on another
        ticket, or the author's own note with other text.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails; nothing is stored.
    """
    session, models = current_flasket.session, current_flasket.models
    ticket_id, author_id = ticket.id, models.user_id(author)
    _lock_ticket(session, models, ticket_id)
    Reply, Ticket = models.Reply, models.Ticket
    last_reply = sa.select(sa.func.max(Reply.id)).where(Reply.ticket_id == ticket_id)
    after_reply_id, replies = session.execute(
        sa.select(last_reply.scalar_subquery(), Ticket.reply_count).where(Ticket.id == ticket_id)
    ).one()
    note = models.Note(
        ticket_id=ticket_id,
        author_id=author_id,
        body=body,
        created_at=utcnow(),
        after_reply_id=after_reply_id,
        form_key=form_key,
    )
    session.add(note)
    try:
        session.flush()
    except sa.exc.IntegrityError:
        session.rollback()
        earlier = _earlier_note(session, models, form_key, ticket_id, author_id, body)
        if earlier is None:
            raise
        return earlier
    # The author does not start following: a new follower, which others see, would tell
    # that staff wrote something.
    outbox_ids = notify.enqueue(session, notify.NOTE, ticket, author, note=note)
    posted = Posted(ticket_id=ticket_id, reply_id=note.id, reply_number=replies)
    _commit(session)
    _after_commit(outbox_ids, signals.note_added, ticket=ticket, note=note, user=author)
    return posted


def _earlier_note(
    session: Session,
    models: Models,
    form_key: str | None,
    ticket_id: int,
    author_id: Any,
    body: str,
) -> Posted | None:
    """The note an earlier sending of the form stored, answered as then; None if none.

    :raises FormKeyUsedError: when that note is not this sending's.
    """
    if form_key is None:
        return None
    Note, Reply = models.Note, models.Reply
    found = session.execute(
        sa.select(Note.id, Note.ticket_id, Note.author_id, Note.body, Note.after_reply_id).where(
            Note.form_key == form_key
        )
    ).first()
    if found is None:
        return None
    if found.author_id != author_id or found.ticket_id != ticket_id:
        raise FormKeyUsedError(None)
    if found.body != body:
        raise FormKeyUsedError(ticket_id)
    number = 0
    if found.after_reply_id is not None:
        number = (
            session.scalar(
                sa.select(sa.func.count()).where(
                    Reply.ticket_id == ticket_id, Reply.id <= found.after_reply_id
                )
            )
            or 0
        )
    return Posted(ticket_id=ticket_id, reply_id=found.id, reply_number=number, repeated=True)


def edit_ticket(
    ticket: TicketBase, actor: Any, title: str, categories: Mapping[str, str]
) -> list[str]:
    """Change a ticket's title and category values (staff's edit), recording each change.

    One transaction: the title and each category that differ change, each with an entry in
    the ticket's history; ``updated_at`` moves. No mail. After the commit
    :data:`flasket.signals.ticket_edited` is sent when anything changed. Whether ``actor``
    may edit is the caller's check (:func:`flasket.policy.may_edit_ticket`).

    :param ticket: the ticket, loaded in the current session with its categories; it is
        refreshed.
    :param actor: the staff member.
    :param title: the new title (one line, at most :data:`flasket.config.TITLE_MAX_LENGTH`
        characters).
    :param categories: every configured category's new value by name; a category not
        there has none.
    :return: what changed: ``"title"`` and the names of the categories, in that order;
        empty when nothing did.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails; nothing changed.
    """
    session, models = current_flasket.session, current_flasket.models
    Ticket, Category = models.Ticket, models.TicketCategory
    locked = _lock_ticket(session, models, ticket.id)
    _reread(session, ticket)  # a locking read: the latest title
    now = utcnow()
    changed: list[str] = []
    if ticket.title != title:
        _record(
            session,
            models,
            ticket.id,
            actor,
            TITLE_CHANGE,
            locked.last_reply_id,
            now,
            old_value=ticket.title,
            new_value=title,
        )
        session.execute(
            sa.update(Ticket)
            .where(Ticket.id == ticket.id)
            .values(title=title)
            .execution_options(synchronize_session=False)
        )
        changed.append("title")
    before = dict(
        session.execute(
            sa.select(Category.name, Category.value)
            .where(Category.ticket_id == ticket.id)
            .with_for_update()
        ).all()
    )
    for category in current_flasket.categories():
        old, new = before.get(category.name), categories.get(category.name)
        if old == new:
            continue
        where = (Category.ticket_id == ticket.id, Category.name == category.name)
        if old is not None:
            session.execute(sa.delete(Category).where(*where))
        if new is not None:
            session.execute(
                sa.insert(Category).values(ticket_id=ticket.id, name=category.name, value=new)
            )
        _record(
            session,
            models,
            ticket.id,
            actor,
            CATEGORY_CHANGE,
            locked.last_reply_id,
            now,
            old_value=old,
            new_value=new,
            detail=category.name,
        )
        changed.append(category.name)
    if not changed:
        session.rollback()
        return []
    session.execute(
        sa.update(Ticket)
        .where(Ticket.id == ticket.id)
        .values(updated_at=_touch(models, now))
        .execution_options(synchronize_session=False)
    )
    session.flush()
    session.expire(ticket, ["categories"])
    session.refresh(ticket)
    _commit(session)
    _send(signals.ticket_edited, ticket=ticket, user=actor, changes=list(changed))
    return changed


def revise_text(ticket: TicketBase, reply: ReplyBase | None, editor: Any, body: str) -> bool:
    """Replace the text of a ticket's description (``reply`` None) or of a reply, keeping the
    earlier text.

    One transaction: the text before goes to ``flasket_revision`` (only staff read it), the
    new one is stored with ``edited_at`` (the "edited" marker everyone sees), the ticket's
    history records the edit and ``updated_at`` moves. No mail: followers were told of the
    text when it was written. Whether ``editor`` may do this is the caller's check
    (:func:`flasket.policy.may_edit_text`).

    :param ticket: the ticket, loaded in the current session; it is refreshed.
    :param reply: the reply, loaded in the current session, or None for the description.
    :param editor: the host user editing their own text.
    :param body: the new text, at most :data:`flasket.config.BODY_MAX_LENGTH` characters.
    :return: True when the text changed; False when it was the same.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails; nothing changed.
    """
    session, models = current_flasket.session, current_flasket.models
    locked = _lock_ticket(session, models, ticket.id)
    written: Any = ticket if reply is None else reply
    _reread(session, written)  # a locking read: the latest text
    if written.body == body or (reply is not None and reply.hidden_at is not None):
        # The same text; or hidden by staff since the editor was let in: not theirs now.
        session.rollback()
        return False
    now = utcnow()
    session.add(
        models.Revision(
            ticket_id=ticket.id,
            reply_id=None if reply is None else reply.id,
            editor_id=models.user_id(editor),
            body=written.body,
            reason=EDITED,
            created_at=now,
        )
    )
    table = models.Ticket if reply is None else models.Reply
    session.execute(
        sa.update(table)
        .where(table.id == written.id)
        .values(body=body, edited_at=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        sa.update(models.Ticket)
        .where(models.Ticket.id == ticket.id)
        .values(updated_at=_touch(models, now))
        .execution_options(synchronize_session=False)
    )
    _record(
        session,
        models,
        ticket.id,
        editor,
        EDIT_CHANGE,
        locked.last_reply_id,
        now,
        detail="ticket" if reply is None else "reply",
        new_value=None if reply is None else str(reply.id),
    )
    session.flush()
    session.refresh(written)
    if reply is not None:
        session.refresh(ticket)
    _commit(session)
    return True


def hide_reply(ticket: TicketBase, reply: ReplyBase, actor: Any, hide: bool = True) -> bool:
    """Hide a reply (staff), or show a hidden one again (``hide=False``).

    Hiding keeps the text in ``flasket_revision`` (only staff read it) and empties the
    reply's ``body``, so no page, list, search or later mail can show what it said (its
    own mail not sent yet is cancelled); the reply keeps its place, shown as hidden by
    staff. Showing it again puts the kept text back. The ticket's history records either.
    No mail.

    :param ticket: the ticket, loaded in the current session.
    :param reply: one of its replies, loaded in the current session; it is refreshed.
    :param actor: the staff member.
    :param hide: True to hide, False to show again.
    :return: True when this call changed it; False when it was so already.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails; nothing changed.
    """
    session, models = current_flasket.session, current_flasket.models
    locked = _lock_ticket(session, models, ticket.id)
    _reread(session, reply)  # a locking read: hidden meanwhile?
    if (reply.hidden_at is not None) == hide:
        session.rollback()
        return False
    now = utcnow()
    Reply, Revision = models.Reply, models.Revision
    if hide:
        session.add(
            Revision(
                ticket_id=ticket.id,
                reply_id=reply.id,
                editor_id=models.user_id(actor),
                body=reply.body,
                reason=HIDDEN,
                created_at=now,
            )
        )
        values: dict[str, Any] = {"body": "", "hidden_at": now}
        # Its mail not sent yet goes too: nobody reads a hidden reply in a later e-mail.
        events, outbox = models.OutboxEvent.__table__, models.Outbox.__table__
        its_events = sa.select(events.c.id).where(events.c.reply_id == reply.id)
        session.execute(
            sa.delete(outbox).where(outbox.c.event_id.in_(its_events), outbox.c.status == PENDING)
        )
        session.execute(
            sa.delete(events).where(
                events.c.reply_id == reply.id, events.c.fanned_out_at.is_(None)
            )
        )
    else:
        kept = session.scalar(
            sa.select(Revision.body)
            .where(
                Revision.ticket_id == ticket.id,
                Revision.reply_id == reply.id,
                Revision.reason == HIDDEN,
            )
            .order_by(Revision.id.desc())
            .limit(1)
        )
        values = {"body": kept or "", "hidden_at": None}
    session.execute(
        sa.update(Reply)
        .where(Reply.id == reply.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    _record(
        session,
        models,
        ticket.id,
        actor,
        HIDE_CHANGE if hide else UNHIDE_CHANGE,
        locked.last_reply_id,
        now,
        new_value=str(reply.id),
    )
    session.flush()
    session.refresh(reply)
    _commit(session)
    return True


class DuplicateError(Exception):
    """A ticket cannot be closed as a duplicate of the one given: the two are one ticket,
    or the original is itself a duplicate (``original_of`` names its original).

    :param original_of: the number of the ticket the given original duplicates, or None.
    """

    def __init__(self, original_of: int | None = None) -> None:
        super().__init__(original_of)
        self.original_of = original_of


def close_as_duplicate(ticket: TicketBase, actor: Any, original: TicketBase) -> bool:
    """Close ``ticket`` as a duplicate of ``original``: its conversation goes on there.

    In one transaction: the ticket moves to the first status of kind closed with the
    resolution "duplicate" and ``duplicate_of_id``; its followers who may read the original
    follow it from now on (they are told once, in the closed mail, which names the
    original); both tickets' histories record it. After the commit the closed mail goes to
    the duplicate's followers and :data:`flasket.signals.ticket_closed` is sent. Replies to
    a closed ticket are refused, and only staff may reopen a duplicate
    (:func:`flasket.policy.may_reopen`). Whether ``actor`` may do this is the caller's
    check (:func:`flasket.policy.may_mark_duplicate`).

    :param ticket: the ticket to close, loaded in the current session; it is refreshed.
    :param actor: the staff member.
    :param original: the ticket it duplicates, loaded in the current session.
    :return: True when this call closed it; False if it was a duplicate of ``original``
        already.
    :raises DuplicateError: when the two are one ticket, or ``original`` is itself a
        duplicate.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails; nothing changed.
    """
    session, models = current_flasket.session, current_flasket.models
    Ticket, Follow = models.Ticket, models.Follow
    if ticket.id == original.id:
        raise DuplicateError()
    # Both rows, in number order: two staff closing each as the other's duplicate queue up.
    first, second = sorted((ticket.id, original.id))
    locks = {first: _lock_ticket(session, models, first)}
    locks[second] = _lock_ticket(session, models, second)
    # Read under the locks (a locking read: MariaDB's plain one would see the transaction's
    # older snapshot), so a change committed meanwhile is seen.
    _reread(session, original)
    if original.duplicate_of_id is not None:
        session.rollback()
        raise DuplicateError(original.duplicate_of_id)
    now = utcnow()
    closing = current_flasket.first_status(CLOSED)
    changed = session.execute(
        sa.update(Ticket)
        .where(
            Ticket.id == ticket.id,
            sa.or_(Ticket.duplicate_of_id.is_(None), Ticket.duplicate_of_id != original.id),
        )
        .values(
            **_status_values(models, actor, closing, DUPLICATE, now),
            updated_at=_touch(models, now),
        )
        .values(duplicate_of_id=original.id)
        .execution_options(synchronize_session=False)
    )
    if affected_rows(changed) != 1:
        # A duplicate of this original already (the same request sent twice).
        session.rollback()
        session.refresh(ticket)
        return False
    # Its own duplicates now point at the original: no chain of duplicates (their followers
    # followed this ticket, and move on with its own below). Each one's history says so.
    _record_repointed(session, models, ticket.id, original.id, actor, now)
    session.execute(
        sa.update(Ticket)
        .where(Ticket.duplicate_of_id == ticket.id)
        .values(duplicate_of_id=original.id, updated_at=_touch(models, now))
        .execution_options(synchronize_session=False)
    )
    session.refresh(ticket)
    user_pk = getattr(models.user, models.user_pk)
    followers = session.scalars(
        sa.select(models.user)
        .join(Follow, Follow.user_id == user_pk)
        .where(Follow.ticket_id == ticket.id)
    ).all()
    for follower in followers:
        if policy.may_read(models, follower, original):
            _insert_follow(session, models, original.id, models.user_id(follower))
    # One entry says it all: closed, as a duplicate of the original (old_value: the status
    # it left).
    _record(
        session,
        models,
        ticket.id,
        actor,
        DUPLICATE_CHANGE,
        locks[ticket.id].last_reply_id,
        now,
        old_value=locks[ticket.id].status,
        new_value=str(original.id),
    )
    _record(
        session,
        models,
        original.id,
        actor,
        DUPLICATED_CHANGE,
        locks[original.id].last_reply_id,
        now,
        new_value=str(ticket.id),
        # The original's readers may not all read the duplicate ("own" visibility): its
        # "Duplicates" line lists those they may; this entry, which names it, is staff's.
        staff_only=True,
    )
    outbox_ids = notify.enqueue(session, notify.CLOSED, ticket, actor)
    session.refresh(original)
    _commit(session)
    _after_commit(outbox_ids, signals.ticket_closed, ticket=ticket, user=actor)
    return True


def _record_repointed(
    session: Session, models: Models, old_id: int, new_id: int, actor: Any, now: Any
) -> None:
    """One history entry on each duplicate of ticket ``old_id``, in one statement: it is a
    duplicate of ``new_id`` from now on (``detail`` :data:`REPOINTED`, ``old_value`` the
    ticket it duplicated)."""
    Ticket, Reply, Change = models.Ticket, models.Reply, models.Change
    last_reply = sa.select(sa.func.max(Reply.id)).where(Reply.ticket_id == Ticket.id)
    actor_id = None if actor is None else models.user_id(actor)
    columns = Change.__table__.c
    rows = sa.select(
        Ticket.id,
        sa.null() if actor_id is None else sa.literal(actor_id, columns.actor_id.type),
        sa.literal(now, columns.created_at.type),
        last_reply.scalar_subquery(),
        sa.literal(DUPLICATE_CHANGE, columns.field.type),
        sa.literal(REPOINTED, columns.detail.type),
        sa.literal(str(old_id), columns.old_value.type),
        sa.literal(str(new_id), columns.new_value.type),
        sa.literal(False, columns.staff_only.type),
    ).where(Ticket.duplicate_of_id == old_id)
    names = ["ticket_id", "actor_id", "created_at", "after_reply_id", "field", "detail"]
    names += ["old_value", "new_value", "staff_only"]
    session.execute(sa.insert(Change).from_select(names, rows))


#: :func:`assign_ticket`'s ``from_assignee`` when the change is from the loaded assignee.
LOADED = object()


def assign_ticket(
    ticket: TicketBase, actor: Any, assignee: Any, from_assignee: Any = LOADED
) -> bool:
    """Assign ``ticket`` to ``assignee`` (None: unassign); False (and nothing sent) if it
    was assigned so already, or was reassigned meanwhile.

    The ticket changes only from ``from_assignee`` (the assignee's primary key the actor
    saw, None for nobody; by default the loaded ticket's), so a form sent twice, or from a
    page shown before someone else reassigned it, changes nothing. The new assignee follows
    the ticket from now on (they hear of the requester's follow-ups) and, unless they
    assigned themselves, gets the ``assigned`` mail (:data:`flasket.notify.ASSIGNED`); the
    followers get none. After the commit :data:`flasket.signals.ticket_assigned` is sent.
    Whether ``actor`` may assign and ``assignee`` may be assigned is the caller's check
    (:func:`flasket.policy.may_assign`, :func:`flasket.policy.may_be_assigned`).

    :param ticket: the ticket, loaded in the current session; it is refreshed.
    :param actor: the host user assigning it.
    :param assignee: the host user to assign, or None to unassign.
    :param from_assignee: the primary key of the assignee the change is from, None for
        nobody, or :data:`LOADED` for the loaded ticket's.
    :return: True when this call changed the assignee.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails; nothing changed.
    """
    session, models = current_flasket.session, current_flasket.models
    Ticket = models.Ticket
    new_id = None if assignee is None else models.user_id(assignee)
    seen = ticket.assignee_id if from_assignee is LOADED else from_assignee
    if new_id == seen:
        return False
    locked = _lock_ticket(session, models, ticket.id)
    now = utcnow()
    was = Ticket.assignee_id.is_(None) if seen is None else Ticket.assignee_id == seen
    if not _update_if(
        session, models, ticket, was, assignee_id=new_id, updated_at=_touch(models, now)
    ):
        return False
    _record(
        session,
        models,
        ticket.id,
        actor,
        ASSIGNEE_CHANGE,
        locked.last_reply_id,
        now,
        old_user_id=seen,
        new_user_id=new_id,
        # The keys as text too: a user deleted since shows as "a deleted user", not nobody.
        old_value=None if seen is None else str(seen),
        new_value=None if new_id is None else str(new_id),
    )
    outbox_ids: list[int] = []
    if assignee is not None:
        _insert_follow(session, models, ticket.id, new_id)
        if new_id != models.user_id(actor):
            outbox_ids = notify.enqueue(session, notify.ASSIGNED, ticket, actor, to=assignee)
    _commit(session)
    _after_commit(
        outbox_ids, signals.ticket_assigned, ticket=ticket, user=actor, assignee=assignee
    )
    return True


def follow_ticket(ticket: TicketBase, user: Any) -> bool:
    """Follow a ticket; False if the user already followed it.

    Sends :data:`flasket.signals.ticket_followed` after the commit when the follow is new;
    no mail.

    :param ticket: the ticket.
    :param user: the host user who follows it.
    :return: True when this call added the follow.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails; nothing changed.
    """
    session, models = current_flasket.session, current_flasket.models
    _lock_ticket(session, models, ticket.id)
    added = _insert_follow(session, models, ticket.id, models.user_id(user))
    _commit(session)
    if added:
        _send(signals.ticket_followed, ticket=ticket, user=user)
    return added


def unfollow_ticket(ticket: TicketBase, user: Any) -> bool:
    """Stop following a ticket; False if the user did not follow it.

    No mail and no signal.

    :param ticket: the ticket.
    :param user: the host user who stops following it.
    :return: True when this call removed a follow.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails; nothing changed.
    """
    session, models = current_flasket.session, current_flasket.models
    _lock_ticket(session, models, ticket.id)
    removed = session.execute(
        sa.delete(models.Follow).where(
            models.Follow.ticket_id == ticket.id,
            models.Follow.user_id == models.user_id(user),
        )
    )
    done = affected_rows(removed) == 1
    if done:
        session.execute(
            sa.update(models.Ticket)
            .where(models.Ticket.id == ticket.id)
            .values(follower_count=models.Ticket.follower_count - 1)
            .execution_options(synchronize_session=False)
        )
    _commit(session)
    return done
