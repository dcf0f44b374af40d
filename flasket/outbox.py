"""The outbox's state machine: fan events out into rows, claim rows, record outcomes, requeue.

:func:`flasket.notify.enqueue` writes one ``flasket_outbox_event`` row in the
event's transaction, so the request does the same work for one follower or a
thousand. Whoever delivers first fans the event out (:func:`fan_out`): in one
transaction it marks the event done and writes one ``flasket_outbox`` row per
recipient, so a fan-out happens exactly once; those rows are then claimed
(:func:`claim`) and their outcomes recorded (:func:`record`,
:func:`record_failure`, :func:`release`).

Several deliverers may run at once. A row is sent only by whoever holds its
lease (``claimed_by`` until ``claimed_until``); an expired lease is free again,
so the rows of a crashed worker come back. Claims use ``SELECT ... FOR UPDATE
SKIP LOCKED`` where the database has it, and always a conditional ``UPDATE``.

This module only talks to the database. :mod:`flasket.delivery` runs one
delivery (claim, send over :mod:`flasket.smtp`, record) with these functions,
and ``flask flasket outbox`` (:mod:`flasket.cli`) lists and requeues rows with
:func:`pending_and_failed_rows`, :func:`given_up_events`, :func:`requeue` and
:func:`requeue_events`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask

from . import i18n, notify, smtp
from .config import config_value
from .db_errors import is_transient
from .models import FAILED, PENDING, SENT, utcnow
from .proxies import current_flasket
from .smtp import describe
from .sql import affected_rows, per_app

log = logging.getLogger("flasket.notify")

#: Who holds a lease: the host's name and this process's id (a claim adds a random part).
WORKER_NAME = f"{socket.gethostname()[:40]}:{os.getpid()}"


@dataclass(frozen=True)
class Claimed:
    """An outbox row this process holds the lease on, as :func:`claim` returns it.

    :param id: the ``flasket_outbox`` row id.
    :param recipient: the address the mail goes to.
    :param subject: the mail's subject.
    :param text: the plain-text body, with this recipient's unfollow link.
    :param html: the HTML body, with this recipient's unfollow link.
    :param message_id: the ``Message-ID`` header, angle brackets included.
    :param headers: further headers, by name.
    :param attempts: the attempts made before this one.
    :param token: the claim's token (``claimed_by``), which every record compares.
    :param until: when the lease runs out (timezone-aware UTC).
    """

    id: int
    recipient: str
    subject: str
    text: str
    html: str
    message_id: str
    headers: dict[str, str]
    attempts: int
    token: str
    until: datetime


def _table() -> sa.Table:
    return current_flasket.models.Outbox.__table__


def _engine() -> sa.Engine:
    engine: sa.Engine = current_flasket.db.engine
    return engine


def _claimable(table: sa.Table, now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        table.c.status == PENDING,
        table.c.next_attempt_at <= now,
        sa.or_(table.c.claimed_until.is_(None), table.c.claimed_until < now),
    )


def _has_skip_locked(dialect: sa.Dialect) -> bool:
    if dialect.name == "postgresql":
        return True
    if dialect.name in {"mysql", "mariadb"}:
        version = dialect.server_version_info or ()
        is_mariadb = bool(getattr(dialect, "is_mariadb", False))
        return tuple(version[:2]) >= ((10, 6) if is_mariadb else (8, 0))
    return False


def fan_out(event_ids: Sequence[int] | None = None, limit: int | None = None) -> list[int]:
    """Write the per-recipient rows of events not fanned out yet.

    Each event is its own transaction: the conditional UPDATE that marks it fanned out
    decides who writes its rows, so two deliverers never both do. A fan-out that raises
    is retried like a message (``FLASKET_DELIVERY_RETRY_BASE``, doubling) and given up
    after ``FLASKET_DELIVERY_MAX_ATTEMPTS``, its error kept in ``last_error``.

    :param event_ids: ``flasket_outbox_event`` ids to fan out; None for the due events.
    :param limit: with ``event_ids`` None, fan out at most this many events, oldest
        first; None for all that are due.
    :return: the ids of the ``flasket_outbox`` rows written.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database is lost (a transient
        error, see :func:`flasket.db_errors.is_transient`): that is not the event's
        fault, so it is raised, for the worker to wait out.
    """
    return fan_out_events(event_ids, limit)[1]


def fan_out_events(
    event_ids: Sequence[int] | None = None, limit: int | None = None
) -> tuple[int, list[int]]:
    """:func:`fan_out`, also saying how many events it looked at.

    :param event_ids: as for :func:`fan_out`.
    :param limit: as for :func:`fan_out`.
    :return: ``(number of events looked at, ids of the rows written)``.
    :raises sqlalchemy.exc.SQLAlchemyError: as :func:`fan_out` does.
    """
    events = current_flasket.models.OutboxEvent.__table__
    session = current_flasket.session
    if event_ids is None:
        waiting = sa.select(events.c.id).where(_fan_out_due(events, utcnow()))
        waiting = waiting.order_by(events.c.id)
        if limit is not None:
            waiting = waiting.limit(limit)
        event_ids = list(session.scalars(waiting))
        session.commit()
    new_ids: list[int] = []
    for event_id in event_ids:
        try:
            new_ids.extend(_fan_out_one(event_id))
        except Exception as error:
            session.rollback()
            if is_transient(error):
                raise
            _fan_out_failed(event_id, error)
    return len(event_ids), new_ids


def _fan_out_due(events: sa.Table, now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        events.c.fanned_out_at.is_(None),
        events.c.failed_at.is_(None),
        sa.or_(events.c.next_attempt_at.is_(None), events.c.next_attempt_at <= now),
    )


def _fan_out_failed(event_id: int, error: Exception) -> None:
    """Count a fan-out that raised: the event waits for its retry, or is given up."""
    events = current_flasket.models.OutboxEvent.__table__
    session = current_flasket.session
    now = utcnow()
    waiting = sa.and_(events.c.fanned_out_at.is_(None), events.c.failed_at.is_(None))
    before = session.scalar(sa.select(events.c.attempts).where(events.c.id == event_id, waiting))
    if before is None:
        session.commit()
        return
    attempts = before + 1
    reason = describe(error)
    values: dict[str, Any] = {"attempts": attempts, "last_error": reason[:2000]}
    if attempts >= config_value("delivery_max_attempts"):
        values["failed_at"] = now
    else:
        values["next_attempt_at"] = now + timedelta(seconds=retry_delay(attempts))
    session.execute(
        sa.update(events)
        .where(events.c.id == event_id, waiting, events.c.attempts == before)
        .values(**values)
    )
    session.commit()
    if "failed_at" in values:
        log.error(
            "Gave up fanning out outbox event %s after %d attempts: %s",
            event_id,
            attempts,
            reason,
            exc_info=error,
        )
    else:
        log.error(
            "Could not fan out outbox event %s (attempt %d); it is retried in %ds: %s",
            event_id,
            attempts,
            retry_delay(attempts),
            reason,
            exc_info=error,
        )


def _fan_out_one(event_id: int) -> list[int]:
    models = current_flasket.models
    events = models.OutboxEvent.__table__
    session = current_flasket.session
    now = utcnow()
    ticket_id = session.scalar(sa.select(events.c.ticket_id).where(events.c.id == event_id))
    if ticket_id is None:
        session.commit()
        return []
    found = session.get(models.OutboxEvent, event_id)
    ticket = None if found is None else session.get(models.Ticket, found.ticket_id)
    if found is None or ticket is None:
        session.commit()
        return []
    copies = notify.recipients_of(found, ticket)
    # Rendered before any row lock is taken: other languages' mail takes some templates.
    written = _renderings(found, ticket, copies)
    # Locks in the order a host's deletion of a user takes them: the user rows first (their
    # copies' foreign keys need them), then the ticket. The other way round, deleting a
    # recipient, which sets their tickets' author to NULL, deadlocks with this fan-out.
    present = _share_user_rows(session, models, [copy.user_id for copy in copies])
    if present is not None:
        # A recipient deleted since the followers were read gets nothing.
        copies = [copy for copy in copies if copy.user_id is None or copy.user_id in present]
    # The ticket row before the event, as every writer of a ticket does (actions._lock_ticket):
    # on MariaDB the event's index update below and the copies' foreign-key checks would
    # otherwise deadlock with a request writing the next event of the same ticket.
    session.execute(
        sa.select(models.Ticket.id).where(models.Ticket.id == ticket_id).with_for_update(read=True)
    )
    taken = session.execute(
        sa.update(events)
        .where(events.c.id == event_id, _fan_out_due(events, now))
        .values(fanned_out_at=now)
        .execution_options(synchronize_session=False)
    )
    if affected_rows(taken) != 1:
        session.commit()
        return []
    shared = json.loads(found.headers or "{}")
    rows = []
    for copy in copies:
        own = written.get(_rendering_key(copy)) if copy.reader is not None else None
        subject, text, html = own if own is not None else (found.subject, None, None)
        rows.append(
            models.Outbox(
                event_id=found.id,
                ticket_id=found.ticket_id,
                event=found.event,
                recipient=copy.recipient,
                recipient_id=copy.user_id,
                subject=subject,
                text=text,
                html=html,
                message_id=copy.message_id,
                headers=json.dumps({**shared, **copy.headers}),
                unfollow_url=copy.unfollow_url,
                status=PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
    session.add_all(rows)
    session.flush()
    ids = [row.id for row in rows]
    session.commit()
    return ids


def _renderings(
    found: Any, ticket: Any, copies: Sequence[notify.Copy]
) -> dict[tuple[Any, ...], tuple[str, str, str] | None]:
    """The event's mail written once per other language and time zone its recipients read.

    Recipients who read what the event was rendered in (the site's) share its bodies; each
    other ``(locale, time zone)`` is rendered once, however many recipients read it.
    """
    own = notify.event_reader_key(found)
    readers: dict[tuple[Any, ...], tuple[i18n.Reader, str | None]] = {}
    for copy in copies:
        if copy.reader is not None and (copy.staff_copy or copy.reader.key != own):
            readers.setdefault(_rendering_key(copy), (copy.reader, copy.staff_copy))
    return {
        key: notify.render_for(found, ticket, reader, staff_copy=staff)
        for key, (reader, staff) in readers.items()
    }


def _rendering_key(copy: notify.Copy) -> tuple[Any, ...]:
    """Which rendering a copy reads: its reader's, and a staff address's own footer."""
    assert copy.reader is not None
    return (*copy.reader.key, copy.staff_copy)


def _share_user_rows(session: Any, models: Any, keys: Sequence[Any]) -> set[Any] | None:
    """Share-lock the user rows of ``keys`` (None skipped) in key order; the keys still there.

    None on SQLite, which has no row locks (its one writer at a time cannot deadlock).
    """
    wanted = sorted({key for key in keys if key is not None})
    if session.get_bind().dialect.name == "sqlite":
        return None
    if not wanted:
        return set()
    user_key = getattr(models.user, models.user_pk)
    return set(
        session.scalars(
            sa.select(user_key)
            .where(user_key.in_(wanted))
            .order_by(user_key)
            .with_for_update(read=True, key_share=True)
        )
    )


def claim(limit: int, ids: Sequence[int] | None = None) -> list[Claimed]:
    """Take the lease on up to ``limit`` due rows and commit.

    The lease lasts ``FLASKET_DELIVERY_LEASE`` seconds. First attempts come first,
    oldest first, then retries, oldest due first: a backlog of retries (after an
    outage, or a recipient that keeps failing) does not hold up new mail.

    :param limit: the most rows to claim.
    :param ids: claim only among these ``flasket_outbox`` ids; None for any due row.
    :return: the rows claimed, by id; empty when none was due and free.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails (nothing is claimed).
    """
    table = _table()
    now = utcnow()
    until = now + timedelta(seconds=config_value("delivery_lease"))
    token = f"{WORKER_NAME}:{uuid.uuid4().hex[:16]}"
    where = _claimable(table, now)
    if ids is not None:
        where = sa.and_(where, table.c.id.in_(list(ids)))
    take = sa.update(table).values(claimed_by=token, claimed_until=until)
    with _engine().begin() as connection:
        dialect = connection.dialect
        left = limit
        for kind in (table.c.attempts == 0, table.c.attempts > 0):
            if left <= 0:
                break
            first = sa.select(table.c.id).where(where, kind)
            first = first.order_by(table.c.next_attempt_at, table.c.id).limit(left)
            if dialect.name == "sqlite":
                # SQLite runs one writer at a time, so the conditional UPDATE alone is the claim.
                taken = connection.execute(
                    take.where(table.c.id.in_(first.scalar_subquery()), where)
                )
            else:
                if _has_skip_locked(dialect):
                    first = first.with_for_update(skip_locked=True)
                chosen = list(connection.scalars(first))
                if not chosen:
                    continue
                # The condition again: without SKIP LOCKED another worker may have won some.
                taken = connection.execute(take.where(table.c.id.in_(chosen), where))
            left -= taken.rowcount
        if left == limit:
            return []
        events = current_flasket.models.OutboxEvent.__table__
        found = connection.execute(
            sa.select(
                table.c.id,
                table.c.recipient,
                table.c.subject,
                table.c.message_id,
                table.c.headers,
                table.c.attempts,
                table.c.unfollow_url,
                # A copy in another language than its event's has bodies of its own.
                sa.func.coalesce(table.c.text, events.c.text).label("mail_text"),
                sa.func.coalesce(table.c.html, events.c.html).label("mail_html"),
                events.c.unfollow_url.label("event_unfollow_url"),
            )
            .join(events, events.c.id == table.c.event_id)
            .where(table.c.claimed_by == token)
            .order_by(table.c.id)
        ).all()
    return [
        Claimed(
            id=row.id,
            recipient=row.recipient,
            subject=row.subject,
            text=_personal(row.mail_text, row.event_unfollow_url, row.unfollow_url),
            html=_personal(row.mail_html, row.event_unfollow_url, row.unfollow_url),
            message_id=row.message_id,
            headers=json.loads(row.headers or "{}"),
            attempts=row.attempts,
            token=token,
            until=until,
        )
        for row in found
    ]


def _personal(body: str, placeholder: str | None, link: str | None) -> str:
    """The event's body with this recipient's unfollow link in place of the placeholder one."""
    if not placeholder or not link:
        return body
    return body.replace(placeholder, link)


def retry_delay(attempts: int) -> float:
    """The wait after a failed attempt: base, 2 x base, 4 x base ..., up to the cap.

    :param attempts: how many attempts have failed so far (1 for the first).
    :return: seconds: ``FLASKET_DELIVERY_RETRY_BASE`` doubled per attempt after the
        first, at most ``FLASKET_DELIVERY_RETRY_CAP``.
    """
    base = float(config_value("delivery_retry_base"))
    cap = float(config_value("delivery_retry_cap"))
    # Past 1023 doublings 2.0 ** n overflows (OverflowError); the product is then inf or 0.
    doublings = min(max(0, attempts - 1), 1023)
    return min(cap, base * 2.0**doublings)


def _apply(row: Claimed, values: dict[str, Any]) -> bool:
    """Write ``values`` and end the claim, if this claim still holds the row (compare-and-set)."""
    table = _table()
    with _engine().begin() as connection:
        done = connection.execute(
            sa.update(table)
            .where(table.c.id == row.id, table.c.claimed_by == row.token)
            .values(claimed_by=None, claimed_until=None, **values)
        )
    return bool(done.rowcount == 1)


def record(row: Claimed, values: dict[str, Any]) -> bool:
    """Record an outcome with a compare-and-set on the claim, and end the claim.

    :param row: a row this process claimed.
    :param values: the columns to write (``status``, ``attempts``, ``sent_at`` ...).
    :return: True if written; False if another worker held the row by then (logged as
        an error).
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails; the outcome is
        then owed (:class:`Ledger`).
    """
    try:
        applied = _apply(row, values)
    except Exception:
        ledger().owe(row, values)
        raise
    if not applied:
        log.error(
            "Outbox row %s was taken over by another worker before its outcome was recorded",
            row.id,
        )
    return applied


def record_failure(row: Claimed, failure: smtp.Failure, level: int = logging.ERROR) -> str:
    """Count a failed attempt on a claimed row, and end the claim.

    A permanent failure, or the last of ``FLASKET_DELIVERY_MAX_ATTEMPTS``, fails the
    row; else it is retried after :func:`retry_delay`.

    :param row: a row this process claimed.
    :param failure: what went wrong, as :func:`flasket.smtp.verdict` classifies it.
    :param level: the logging level of the retry message (a batch that could not
        connect is logged once, the rows at ``logging.WARNING``).
    :return: the row's new status: ``"failed"``, ``"pending"``, or :data:`OVERTAKEN`.
    :raises sqlalchemy.exc.SQLAlchemyError: as :func:`record` does.
    """
    attempts = row.attempts + 1
    error = failure.reason
    if failure.permanent or attempts >= config_value("delivery_max_attempts"):
        if not record(row, {"status": FAILED, "attempts": attempts, "last_error": error[:2000]}):
            return OVERTAKEN
        log.error(
            "Mail %s to %s failed for good after %d attempt(s)%s: %s",
            row.id,
            row.recipient,
            attempts,
            " (a permanent error)" if failure.permanent else "",
            error,
        )
        return FAILED
    wait = retry_delay(attempts)
    values = {
        "attempts": attempts,
        "last_error": error[:2000],
        "next_attempt_at": utcnow() + timedelta(seconds=wait),
    }
    if not record(row, values):
        return OVERTAKEN
    log.log(
        level,
        "Mail %s to %s about %r failed (attempt %d), retrying in %ds: %s",
        row.id,
        row.recipient,
        row.subject,
        attempts,
        wait,
        error,
    )
    return PENDING


#: What :func:`record_failure` returns when another worker held the row by then.
OVERTAKEN = "overtaken"


def release(rows: Iterable[Claimed]) -> int:
    """Give up the lease on rows that were not tried; they are due again at once.

    :param rows: rows this process claimed; a row whose lease another holds by now is
        left alone.
    :return: how many leases were given up.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails.
    """
    table = _table()
    count = 0
    with _engine().begin() as connection:
        for row in rows:
            done = connection.execute(
                sa.update(table)
                .where(table.c.id == row.id, table.c.claimed_by == row.token)
                .values(claimed_by=None, claimed_until=None)
            )
            count += done.rowcount
    return count


def release_untried(rows: list[Claimed]) -> int:
    """:func:`release` the rows not tried, and empty the list.

    :param rows: rows this process claimed; emptied.
    :return: how many leases were given up.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails (``rows`` is then
        left as it was).
    """
    count = release(rows)
    rows.clear()
    return count


class Ledger:
    """Outcomes this process could not record yet, by outbox row id (one per app).

    When the database fails after a message was accepted, the row's "sent" (and the
    release of the batch rows not yet tried) is kept here, and written by the next
    delivery run with the same compare-and-set on the claim: while the lease holds,
    nobody else may send the row, so the message is not sent twice unless the
    database stays away longer than the lease.
    """

    def __init__(self) -> None:
        self._owed: dict[int, tuple[Claimed, dict[str, Any] | None]] = {}
        self._lock = threading.Lock()

    def owe(self, row: Claimed, values: dict[str, Any] | None) -> None:
        """Keep an outcome to record on ``row`` later.

        :param row: a row this process claimed.
        :param values: the columns to write, as for :func:`record`; None to release the
            lease, unless an outcome is owed for the row already.
        """
        with self._lock:
            if values is not None or row.id not in self._owed:
                self._owed[row.id] = (row, values)

    def __len__(self) -> int:
        return len(self._owed)

    def settle(self) -> int:
        """Record what is owed.

        :return: how many rows were settled.

        :raises sqlalchemy.exc.SQLAlchemyError: when the database fails again; what is
            left stays owed.
        """
        with self._lock:
            owed = list(self._owed.values())
        settled = 0
        for row, values in owed:
            if values is None:
                release([row])
            elif not _apply(row, values) and values.get("status") == SENT:
                log.error(
                    "Mail %s to %s was sent, but its lease had been taken over before"
                    " that could be recorded: it may be sent twice",
                    row.id,
                    row.recipient,
                )
            with self._lock:
                # Only this entry: another thread may have owed a newer one for the row.
                if self._owed.get(row.id, (None, None))[0] is row:
                    del self._owed[row.id]
            settled += 1
        if settled:
            log.warning("Recorded %d outbox outcome(s) the database had missed", settled)
        return settled


def ledger(app: Flask | None = None) -> Ledger:
    """The :class:`Ledger` of ``app``, made on first use and kept in ``app.extensions``.

    :param app: the Flask application; None for the current app.
    :return: the same :class:`Ledger` on every call for one app.
    :raises RuntimeError: when ``app`` is None and there is no application context.
    """
    return per_app("flasket.outbox_ledger", Ledger, app)


def waiting_event_count() -> int:
    """How many events wait for their fan-out (neither fanned out nor given up).

    :return: a count of ``flasket_outbox_event`` rows.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails.
    """
    events = current_flasket.models.OutboxEvent.__table__
    session = current_flasket.session
    waiting = session.scalar(
        sa.select(sa.func.count())
        .select_from(events)
        .where(events.c.fanned_out_at.is_(None), events.c.failed_at.is_(None))
    )
    return int(waiting or 0)


def given_up_events() -> list[sa.Row[Any]]:
    """The events whose fan-out was given up, oldest first.

    :return: rows of ``flasket_outbox_event`` (every column), by id.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails.
    """
    events = current_flasket.models.OutboxEvent.__table__
    session = current_flasket.session
    return list(
        session.execute(
            sa.select(events)
            .where(events.c.fanned_out_at.is_(None), events.c.failed_at.is_not(None))
            .order_by(events.c.id)
        ).all()
    )


def pending_and_failed_rows(limit: int) -> list[sa.Row[Any]]:
    """The outbox rows not sent: failed ones first, then pending ones, each by next attempt.

    :param limit: the most rows to return (at least 1).
    :return: rows of ``flasket_outbox`` (every column), ordered by status, next attempt, id.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails.
    """
    table = current_flasket.models.Outbox.__table__
    session = current_flasket.session
    return list(
        session.execute(
            sa.select(table)
            .where(table.c.status.in_([PENDING, FAILED]))
            .order_by(table.c.status, table.c.next_attempt_at, table.c.id)
            .limit(limit)
        ).all()
    )


def requeue(ids: list[int], failed: bool) -> int:
    """Make rows due now with a fresh set of attempts, and commit; sent rows are left alone.

    :param ids: outbox row ids to requeue (pending or failed ones).
    :param failed: also requeue every failed row.
    :return: how many rows were requeued.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails.
    """
    table = current_flasket.models.Outbox.__table__
    session = current_flasket.session
    chosen: list[Any] = []
    if ids:
        chosen.append(table.c.id.in_(ids))
    if failed:
        chosen.append(table.c.status == FAILED)
    done = session.execute(
        sa.update(table)
        .where(sa.or_(*chosen), table.c.status.in_([PENDING, FAILED]))
        .values(status=PENDING, attempts=0, next_attempt_at=utcnow())
    )
    session.commit()
    return affected_rows(done)


def requeue_events(ids: list[int], failed: bool) -> int:
    """Make events whose fan-out was given up due now, with a fresh set of attempts; commit.

    :param ids: outbox event ids to requeue (events already fanned out are left alone).
    :param failed: also requeue every event whose fan-out was given up.
    :return: how many events were requeued.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails.
    """
    events = current_flasket.models.OutboxEvent.__table__
    session = current_flasket.session
    chosen: list[Any] = []
    if ids:
        chosen.append(events.c.id.in_(ids))
    if failed:
        chosen.append(events.c.failed_at.is_not(None))
    done = session.execute(
        sa.update(events)
        .where(sa.or_(*chosen), events.c.fanned_out_at.is_(None))
        .values(failed_at=None, attempts=0, next_attempt_at=None)
    )
    session.commit()
    return affected_rows(done)
