"""Everything that changes tickets: one transaction each, then signals and mail.

Each function writes its event's mail to the outbox in the same transaction
(:func:`flasket.notify.enqueue`: one row, whatever the number of followers),
commits, and only after the commit sends the blinker signal and hands the new
outbox event to :mod:`flasket.delivery`. Each one locks the ticket row, then
makes its change with conditional UPDATEs, so concurrent requests cannot
double-close a ticket, lose a reply count or follow twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.orm import Session
from werkzeug.local import LocalProxy

from . import delivery, notify, signals
from .extension import current_flasket
from .models import CLOSED, OPEN, Models, ReplyBase, TicketBase, utcnow


class TicketClosedError(Exception):
    """The ticket was closed before the reply could be added."""


def _session() -> Session:
    return cast(Session, current_flasket.db.session)


def _models() -> Models:
    return current_flasket.models


def _send(signal: Any, **models: Any) -> None:
    """Send ``signal`` from the app with the objects themselves, never ``current_user``'s proxy.

    A receiver may keep what it gets; a request-bound proxy would turn into ``None`` later.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    signal.send(app, **{name: _unproxied(value) for name, value in models.items()})


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
        added = session.execute(statement).rowcount == 1  # type: ignore[attr-defined]
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
    """Store a new open ticket; its author follows it from the start."""
    session, models = _session(), _models()
    now = utcnow()
    ticket = models.Ticket(
        author_id=models.user_id(author),
        title=title,
        body=body,
        status=OPEN,
        created_at=now,
        updated_at=now,
        reply_count=0,
        follower_count=0,
    )
    ticket.categories = [
        models.TicketCategory(name=name, value=value) for name, value in categories.items()
    ]
    session.add(ticket)
    session.flush()
    _insert_follow(session, models, ticket.id, models.user_id(author))
    outbox_ids = notify.enqueue(session, notify.CREATED, ticket, author)
    session.commit()
    session.refresh(ticket)
    _send(signals.ticket_created, ticket=ticket, user=author)
    delivery.after_commit(outbox_ids)
    return ticket


def post_reply(ticket: TicketBase, author: Any, body: str) -> ReplyBase:
    """Add a reply to an open ticket; the author of the reply now follows the ticket.

    Raises :class:`TicketClosedError` if the ticket is (or was just) closed.
    """
    session, models = _session(), _models()
    _lock_ticket(session, models, ticket.id)
    now = utcnow()
    counted = session.execute(
        sa.update(models.Ticket)
        .where(models.Ticket.id == ticket.id, models.Ticket.status == OPEN)
        .values(reply_count=models.Ticket.reply_count + 1, updated_at=_touch(models, now))
        .execution_options(synchronize_session=False)
    )
    if counted.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise TicketClosedError(ticket.id)
    reply = models.Reply(
        ticket_id=ticket.id, author_id=models.user_id(author), body=body, created_at=now
    )
    session.add(reply)
    _insert_follow(session, models, ticket.id, models.user_id(author))
    session.flush()
    session.refresh(ticket)
    outbox_ids = notify.enqueue(session, notify.REPLIED, ticket, author, reply=reply)
    session.commit()
    session.refresh(ticket)
    _send(signals.ticket_replied, ticket=ticket, reply=reply, user=author)
    delivery.after_commit(outbox_ids)
    return reply


def _set_status(ticket: TicketBase, actor: Any, new: str, event: str) -> list[int] | None:
    """Change the status and write the event's mail; None when the status was already ``new``."""
    session, models = _session(), _models()
    _lock_ticket(session, models, ticket.id)
    now = utcnow()
    old = OPEN if new == CLOSED else CLOSED
    changed = session.execute(
        sa.update(models.Ticket)
        .where(models.Ticket.id == ticket.id, models.Ticket.status == old)
        .values(
            status=new,
            closed_at=now if new == CLOSED else None,
            closed_by_id=models.user_id(actor) if new == CLOSED else None,
            updated_at=_touch(models, now),
        )
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        session.commit()
        session.refresh(ticket)
        return None
    session.refresh(ticket)
    outbox_ids = notify.enqueue(session, event, ticket, actor)
    session.commit()
    session.refresh(ticket)
    return outbox_ids


def close_ticket(ticket: TicketBase, actor: Any) -> bool:
    """Close an open ticket; False (and nothing sent) if it was already closed."""
    outbox_ids = _set_status(ticket, actor, CLOSED, notify.CLOSED)
    if outbox_ids is None:
        return False
    _send(signals.ticket_closed, ticket=ticket, user=actor)
    delivery.after_commit(outbox_ids)
    return True


def reopen_ticket(ticket: TicketBase, actor: Any) -> bool:
    """Reopen a closed ticket; False (and nothing sent) if it was already open."""
    outbox_ids = _set_status(ticket, actor, OPEN, notify.REOPENED)
    if outbox_ids is None:
        return False
    _send(signals.ticket_reopened, ticket=ticket, user=actor)
    delivery.after_commit(outbox_ids)
    return True


def follow_ticket(ticket: TicketBase, user: Any) -> bool:
    """Follow a ticket; False if the user already followed it."""
    session, models = _session(), _models()
    _lock_ticket(session, models, ticket.id)
    added = _insert_follow(session, models, ticket.id, models.user_id(user))
    session.commit()
    if added:
        _send(signals.ticket_followed, ticket=ticket, user=user)
    return added


def unfollow_ticket(ticket: TicketBase, user: Any) -> bool:
    """Stop following a ticket; False if the user did not follow it."""
    session, models = _session(), _models()
    _lock_ticket(session, models, ticket.id)
    removed = session.execute(
        sa.delete(models.Follow).where(
            models.Follow.ticket_id == ticket.id,
            models.Follow.user_id == models.user_id(user),
        )
    )
    if removed.rowcount == 1:  # type: ignore[attr-defined]
        session.execute(
            sa.update(models.Ticket)
            .where(models.Ticket.id == ticket.id)
            .values(follower_count=models.Ticket.follower_count - 1)
            .execution_options(synchronize_session=False)
        )
    session.commit()
    return bool(removed.rowcount == 1)  # type: ignore[attr-defined]
