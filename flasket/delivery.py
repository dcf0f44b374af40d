"""Delivering the outbox: claim rows, send them over one SMTP connection, record the outcome.

:func:`flasket.notify.enqueue` writes one ``flasket_outbox_event`` row in the
event's transaction, so the request does the same work for one follower or a
thousand. After the commit, :func:`after_commit` hands the event's id to the
configured ``FLASKET_DELIVERY`` mode: a short-lived thread (``after_request``),
nobody (a ``worker`` runs ``flask flasket deliver``), or the host's ``hook``.
Whoever delivers first fans the event out (:func:`fan_out`): in one transaction
it marks the event done and writes one ``flasket_outbox`` row per recipient,
so a fan-out happens exactly once; those rows are then claimed and sent.

Several deliverers may run at once. A row is sent only by whoever holds its
lease (``claimed_by`` until ``claimed_until``); an expired lease is free again,
so the rows of a crashed worker come back. Claims use ``SELECT ... FOR UPDATE
SKIP LOCKED`` where the database has it, and always a conditional ``UPDATE``.
Nothing here talks to the database and the mail server in the same transaction.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.pool import StaticPool

from . import notify, smtp
from .config import LEASE_MARGIN, config_value, mail_sender
from .db_errors import is_transient
from .mailmessage import NotificationMessage
from .models import FAILED, PENDING, SENT, utcnow
from .proxies import current_flasket
from .smtp import describe
from .sql import affected_rows, app_object

log = logging.getLogger("flasket.notify")

#: What hosts call; the rest serves Flasket's own commands, worker and tests.
__all__ = ["Outcome", "deliver", "deliver_due", "fan_out", "wait_for_idle"]


WORKER_NAME = f"{socket.gethostname()[:40]}:{os.getpid()}"


@dataclass
class Outcome:
    """What one delivery run did, counted only once recorded in the database.

    ``sent``: accepted by the mail server and recorded; ``retrying``: failed, to be
    retried; ``failed``: failed for good; ``released``: not tried (the lease ran
    short, or the connection was lost twice in a row), due again at once;
    ``overtaken``: the lease had been taken over by another worker when the outcome
    was to be recorded (logged as an error: such a message may be sent twice).
    """

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    released: int = 0
    overtaken: int = 0

    def add(self, other: Outcome) -> None:
        self.sent += other.sent
        self.retrying += other.retrying
        self.failed += other.failed
        self.released += other.released
        self.overtaken += other.overtaken

    @property
    def claimed(self) -> int:
        return self.sent + self.retrying + self.failed + self.released + self.overtaken


@dataclass(frozen=True)
class Claimed:
    """An outbox row this process holds the lease on."""

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
    """Write the per-recipient rows of events not fanned out yet; returns the new row ids.

    Only among ``event_ids`` when given, else the oldest ``limit`` (or all) due events.
    Each event is its own transaction: the conditional UPDATE that marks it fanned out
    decides who writes its rows, so two deliverers never both do. A fan-out that raises
    is retried like a message (``FLASKET_DELIVERY_RETRY_BASE``, doubling) and given up
    after ``FLASKET_DELIVERY_MAX_ATTEMPTS``, its error kept in ``last_error``. A lost
    database is not the event's fault: that error is raised, for the worker to wait out.
    """
    return fan_out_events(event_ids, limit)[1]


def fan_out_events(
    event_ids: Sequence[int] | None = None, limit: int | None = None
) -> tuple[int, list[int]]:
    """:func:`fan_out`, also saying how many events it looked at: ``(events, new row ids)``."""
    events = current_flasket.models.OutboxEvent.__table__
    session = current_flasket.db.session
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
    session = current_flasket.db.session
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
    session = current_flasket.db.session
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
    rows = [
        models.Outbox(
            event_id=found.id,
            ticket_id=found.ticket_id,
            event=found.event,
            recipient=copy.recipient,
            recipient_id=copy.user_id,
            subject=found.subject,
            message_id=copy.message_id,
            headers=json.dumps({**shared, **copy.headers}),
            unfollow_url=copy.unfollow_url,
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for copy in copies
    ]
    session.add_all(rows)
    session.flush()
    ids = [row.id for row in rows]
    session.commit()
    return ids


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


def _claim(limit: int, ids: Sequence[int] | None = None) -> list[Claimed]:
    """Take the lease on up to ``limit`` due rows (only among ``ids`` when given) and commit.

    First attempts come first, oldest first, then retries, oldest due first: a backlog
    of retries (after an outage, or a recipient that keeps failing) does not hold up
    new mail.
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
                table,
                events.c.text,
                events.c.html,
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
            text=_personal(row.text, row.event_unfollow_url, row.unfollow_url),
            html=_personal(row.html, row.event_unfollow_url, row.unfollow_url),
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
    """Seconds to wait after the ``attempts``-th failed attempt: base, 2 x base, 4 x base ..."""
    base = float(config_value("delivery_retry_base"))
    cap = float(config_value("delivery_retry_cap"))
    return min(cap, base * 2.0 ** max(0, attempts - 1))


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
        """Keep ``values`` to record on ``row``; None: release its lease, unless an
        outcome is owed for it already."""
        with self._lock:
            if values is not None or row.id not in self._owed:
                self._owed[row.id] = (row, values)

    def __len__(self) -> int:
        return len(self._owed)

    def settle(self) -> int:
        """Record what is owed; returns how many rows were settled.

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


_State = TypeVar("_State")


def _per_app(key: str, make: Callable[[], _State], app: Flask | None) -> _State:
    """The object kept under ``key`` in ``app.extensions``, made on first use."""
    extensions = (app or current_app).extensions
    found = extensions.get(key)
    if found is None:
        found = extensions.setdefault(key, make())
    return cast(_State, found)


def ledger(app: Flask | None = None) -> Ledger:
    """The :class:`Ledger` of ``app`` (default: the current app)."""
    return _per_app("flasket.outbox_ledger", Ledger, app)


class Stalls:
    """Recipients whose server stopped answering lately, by mailbox (one per app).

    When a message runs into the deadline (the recipient's server, or the relay's
    check of it, hangs), further mail to that mailbox is not tried by this process
    for :func:`retry_delay` of the number of stalls in a row (the retry base, then
    twice as long ...): each such row counts a failed attempt at once and waits for
    its retry, instead of costing every other recipient ``FLASKET_SMTP_TIMEOUT``.
    A message that goes through ends the stall.
    """

    def __init__(self) -> None:
        self._stalls: dict[str, tuple[datetime, int]] = {}
        self._lock = threading.Lock()

    def until(self, recipient: str, now: datetime) -> datetime | None:
        """When mail to ``recipient`` may be tried again, if it is stalled now."""
        found = self._stalls.get(notify.mailbox_key(recipient))
        return found[0] if found is not None and found[0] > now else None

    def note(self, recipient: str, now: datetime) -> None:
        """A message to ``recipient`` ran into the deadline."""
        key = notify.mailbox_key(recipient)
        with self._lock:
            count = self._stalls.get(key, (now, 0))[1] + 1
            self._stalls[key] = (now + timedelta(seconds=retry_delay(count)), count)

    def clear(self, recipient: str) -> None:
        """A message to ``recipient`` went through."""
        if self._stalls:
            with self._lock:
                self._stalls.pop(notify.mailbox_key(recipient), None)


def stalls(app: Flask | None = None) -> Stalls:
    """The :class:`Stalls` of ``app`` (default: the current app)."""
    return _per_app("flasket.outbox_stalls", Stalls, app)


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


def _record(row: Claimed, values: dict[str, Any]) -> bool:
    """Record an outcome with a compare-and-set on the claim; False if the lease was lost.

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


def _record_failure(row: Claimed, failure: smtp.Failure, level: int = logging.ERROR) -> str:
    """Count a failed attempt: a permanent failure, or the last attempt, fails the row;
    else it is retried after :func:`retry_delay`. Returns the row's new status, or
    ``"overtaken"`` if another worker held it by then.

    ``level`` is for the retry message (a batch that could not connect is logged once).
    """
    attempts = row.attempts + 1
    error = failure.reason
    if failure.permanent or attempts >= config_value("delivery_max_attempts"):
        if not _record(row, {"status": FAILED, "attempts": attempts, "last_error": error[:2000]}):
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
    if not _record(row, values):
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


OVERTAKEN = "overtaken"


def release(rows: Iterable[Claimed]) -> int:
    """Give up the lease on rows that were not tried; they are due again at once."""
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


def message_for(row: Claimed) -> NotificationMessage:
    """The mail of one outbox row, as :meth:`flasket.smtp.SMTPConnection.send` takes it.

    :raises smtp.AddressError: for a recipient no server will take (a permanent failure).
    :raises smtplib.SMTPSenderRefused: for a sender that cannot be sent (the site's
        configuration: retried, see :func:`flasket.smtp.verdict`).
    """
    sender = mail_sender()
    message = NotificationMessage(
        subject=row.subject,
        recipients=[row.recipient],
        body=row.text,
        html=row.html,
        # On one line: Flask-Mail refuses a sender with a line break (BadHeaderError).
        sender=" ".join(sender.split()) if sender else None,
        extra_headers=dict(row.headers),
    )
    message.msgId = row.message_id
    envelope_from, envelope_to = smtp.envelope_of(message)
    message.utf8 = envelope_from.utf8 or envelope_to.utf8
    return message


def seconds_left(row: Claimed) -> float:
    """Seconds until the lease on ``row`` runs out."""
    return (row.until - utcnow()).total_seconds()


def _send(rows: Sequence[Claimed]) -> Outcome:
    """Send claimed rows over one SMTP connection and record each outcome.

    A step starts only while the lease outlasts its worst case plus
    :data:`~flasket.config.LEASE_MARGIN` (opening the connection:
    :data:`~flasket.smtp.OPEN_COST`, each message: :data:`~flasket.smtp.SEND_COST`
    times ``FLASKET_SMTP_TIMEOUT``); rows left when it does not are released. Each
    error is classified by :func:`flasket.smtp.verdict`: a message's own failure
    is recorded and the next message goes on; a lost connection (or a recipient
    whose server hangs past the deadline) is recorded for that message and a new
    connection carries the rest, once in a row; a server that takes no mail from
    this site now ends the batch, each row counting a failed attempt.

    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails while recording;
        that outcome and the release of the rows not yet tried are owed (:class:`Ledger`)
        and recorded by this process's next run.
    """
    outcome = Outcome()
    if not rows:
        return outcome
    mail = current_app.extensions.get("mail")
    if mail is None:
        failure = smtp.Failure("Flask-Mail is not initialised on this app", False, smtp.SERVER)
        for row in rows:
            _tally(outcome, _record_failure(row, failure))
        return outcome
    timeout = float(config_value("smtp_timeout"))
    waiting = list(rows)
    connection: smtp.SMTPConnection | None = None
    lost_in_a_row = 0
    stalled = stalls()
    try:
        while waiting:
            row = waiting[0]
            until = stalled.until(row.recipient, utcnow())
            if until is not None:
                waiting.pop(0)
                reason = (
                    "not tried: the last message to this address got no answer within"
                    f" {timeout:g} s; trying again after {until:%H:%M:%S} UTC"
                )
                _tally(outcome, _record_failure(row, smtp.Failure(reason, False, smtp.MESSAGE)))
                continue
            cost = smtp.SEND_COST + (smtp.OPEN_COST if connection is None else 0)
            if seconds_left(row) < cost * timeout + LEASE_MARGIN:
                outcome.released += _release(waiting)
                break
            if connection is None:
                connection = smtp.SMTPConnection(mail, timeout)
                try:
                    connection.open()
                except Exception as error:
                    connection = None
                    _server_unavailable(outcome, waiting, smtp.verdict(error, connecting=True))
                    break
                continue  # the lease again, now for the message alone
            waiting.pop(0)
            try:
                connection.send(message_for(row))
            except Exception as error:
                failure = smtp.verdict(error)
                if failure.scope == smtp.SERVER:
                    _server_unavailable(outcome, [row, *waiting], failure)
                    break
                if smtp.no_answer(error):
                    stalled.note(row.recipient, utcnow())
                _tally(outcome, _record_failure(row, failure))
                if failure.scope == smtp.CONNECTION:
                    connection.close()
                    connection = None
                    lost_in_a_row += 1
                    if lost_in_a_row > 1:
                        outcome.released += _release(waiting)
                        break
                continue
            lost_in_a_row = 0
            stalled.clear(row.recipient)
            if _record(row, {"status": SENT, "sent_at": utcnow(), "attempts": row.attempts + 1}):
                outcome.sent += 1
            else:
                outcome.overtaken += 1
            if not connection.usable:  # MAIL_MAX_EMAILS
                connection.close()
                connection = None
    except Exception:
        # Only recording talks to the database here: what was not recorded is owed.
        for left in waiting:
            ledger().owe(left, None)
        raise
    finally:
        if connection is not None:
            connection.close()
    return outcome


def _release(rows: list[Claimed]) -> int:
    """Release ``rows`` (the ones not tried) and empty the list."""
    count = release(rows)
    rows.clear()
    return count


def _server_unavailable(outcome: Outcome, rows: list[Claimed], failure: smtp.Failure) -> None:
    """The server takes no mail now: each row counts a failed attempt, logged once."""
    log.error("%s; %d mail(s) will be retried", failure.reason, len(rows))
    while rows:
        _tally(outcome, _record_failure(rows[0], failure, logging.WARNING))
        rows.pop(0)


def _tally(outcome: Outcome, status: str) -> None:
    if status == FAILED:
        outcome.failed += 1
    elif status == OVERTAKEN:
        outcome.overtaken += 1
    else:
        outcome.retrying += 1


def deliver(event_ids: Sequence[int]) -> Outcome:
    """Fan out these outbox events and send their rows (those still due and unclaimed).

    Outcomes this process owes from an earlier run (:class:`Ledger`) are recorded first.
    """
    ledger().settle()
    outcome = Outcome()
    ids = fan_out(event_ids)
    batch = config_value("delivery_batch")
    for start in range(0, len(ids), batch):
        outcome.add(_send(_claim(batch, ids[start : start + batch])))
    return outcome


def deliver_due(
    max_batches: int | None = None, should_stop: Callable[[], bool] = lambda: False
) -> Outcome:
    """Send every due row (retries included), batch by batch, fanning out new events first.

    Before each batch, up to ``FLASKET_DELIVERY_BATCH`` waiting events are fanned out,
    so new events go out promptly while a backlog drains. Outcomes this process owes
    from an earlier run (:class:`Ledger`) are recorded before anything is claimed.
    """
    ledger().settle()
    outcome = Outcome()
    batch = config_value("delivery_batch")
    batches = 0
    while not should_stop() and (max_batches is None or batches < max_batches):
        events, _ = fan_out_events(limit=batch)
        rows = _claim(batch)
        if not rows:
            if events:
                continue
            break
        sent = _send(rows)
        outcome.add(sent)
        batches += 1
        if sent.released == len(rows):
            # Not one row tried (the lease ran short): leave them to the next round.
            break
    return outcome


def after_commit(ids: Sequence[int]) -> None:
    """Hand the outbox events just committed to ``FLASKET_DELIVERY``; never raises."""
    if not ids:
        return
    mode = config_value("delivery")
    if mode == "worker":
        return
    if mode == "hook":
        try:
            config_value("delivery_hook")(list(ids))
        except Exception:
            log.exception("FLASKET_DELIVERY_HOOK failed; %d event(s) wait for a worker", len(ids))
        return
    app: Flask = app_object()
    if isinstance(_engine().pool, StaticPool):
        # One connection shared by every thread (in-memory SQLite): deliver here, after the commit.
        _deliver_now(list(ids))
        return
    thread = threading.Thread(
        target=_deliver_in_background, args=(app, list(ids)), name="flasket-delivery"
    )
    with _threads_lock:
        _threads.add(thread)
    try:
        thread.start()
    except RuntimeError:
        # No thread to be had (the process is at its limit): the events wait for a worker,
        # or for the next event's mail, and wait_for_idle() must not join a thread never run.
        with _threads_lock:
            _threads.discard(thread)
        log.exception("could not start a delivery thread; %d event(s) wait", len(ids))


_threads: set[threading.Thread] = set()
_threads_lock = threading.Lock()


def _deliver_now(ids: list[int]) -> None:
    try:
        deliver(ids)
        # Opportunistic: retries that are due go out with the next event's mail.
        deliver_due(max_batches=1)
    except Exception:
        log.exception("Delivering %d outbox event(s) failed; they stay in the outbox", len(ids))


def _deliver_in_background(app: Flask, ids: list[int]) -> None:
    try:
        with app.app_context():
            _deliver_now(ids)
    finally:
        with _threads_lock:
            _threads.discard(threading.current_thread())


def wait_for_idle(timeout: float | None = None) -> bool:
    """Wait until the background deliveries started so far have finished (tests, shutdown).

    Returns False if some were still running when ``timeout`` seconds had passed.
    """
    with _threads_lock:
        running = list(_threads)
    deadline = None if timeout is None else utcnow() + timedelta(seconds=timeout)
    for thread in running:
        left = None if deadline is None else max(0.0, (deadline - utcnow()).total_seconds())
        thread.join(left)
    with _threads_lock:
        return not any(thread.is_alive() for thread in running)
