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

from . import background, notify, signals
from .config import Status
from .models import CLOSED, OPEN, Models, ReplyBase, TicketBase, utcnow
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


def _lock_ticket(session: Session, models: Models, ticket_id: int) -> None:
    """Lock the ticket row by its primary key first, so writers to one ticket queue up.

    MariaDB deadlocks otherwise: a follow's foreign-key check takes a shared lock the
    counter update cannot upgrade, and a status UPDATE may lock gaps of the status index.
    """
    session.execute(
        sa.select(models.Ticket.id).where(models.Ticket.id == ticket_id).with_for_update()
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
    _lock_ticket(session, models, ticket_id)
    now = utcnow()
    Ticket = models.Ticket
    values: dict[str, Any] = {}
    if status is not None:
        values = _status_values(models, author, status, resolution, now)
    elif ticket.author_id is not None and ticket.author_id == author_id:
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
    seen_status, seen_state = ticket.status, ticket.state
    session.refresh(ticket)
    # Set with the reply, or a wait the requester's reply ended: the status's own signal too.
    moved = None
    if ticket.status != seen_status:
        moved = (
            signals.ticket_status_changed if ticket.state == seen_state else signals.ticket_closed
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
    """The columns a move to ``status`` writes: the kind, and who closed it, when and why."""
    closing = status.kind == CLOSED
    return {
        "status": status.name,
        "state": status.kind,
        "resolution": (resolution or "solved") if closing else None,
        "closed_at": now if closing else None,
        "closed_by_id": models.user_id(actor) if closing else None,
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
    _lock_ticket(session, models, ticket.id)
    now = utcnow()
    seen_state = ticket.state
    changed = session.execute(
        sa.update(models.Ticket)
        .where(models.Ticket.id == ticket.id, condition)
        .values(
            **_status_values(models, actor, status, resolution, now),
            updated_at=_touch(models, now),
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(ticket)
    if affected_rows(changed) != 1:
        _commit(session)
        return False
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
