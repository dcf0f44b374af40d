"""One delivery run: claim due outbox rows, send them over one SMTP connection, record each.

:func:`deliver` (the events just committed) and :func:`deliver_due` (everything due,
for a worker) fan events out, claim rows and record their outcomes with
:mod:`flasket.outbox`, which alone writes the outbox tables; the mail goes out through
:mod:`flasket.smtp`. Nothing here talks to the database and the mail server in the
same transaction. Who starts a run is elsewhere: :mod:`flasket.background` (a thread
after the commit), :mod:`flasket.worker` (``flask flasket deliver``), :mod:`flasket.rq`.

:func:`fan_out` and :func:`wait_for_idle` are kept here, where hosts have always
imported them from; they live in :mod:`flasket.outbox` and :mod:`flasket.threads`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask, current_app

from . import notify, outbox, smtp
from .config import LEASE_MARGIN, config_value, mail_sender
from .mailmessage import NotificationMessage
from .models import FAILED, SENT, utcnow
from .outbox import fan_out
from .sql import per_app
from .threads import wait_for_idle

log = logging.getLogger("flasket.notify")

#: What hosts call; the rest serves Flasket's own commands, worker and tests.
__all__ = ["Outcome", "deliver", "deliver_due", "fan_out", "wait_for_idle"]


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
        """Add the counts of ``other`` to these.

        :param other: the outcome of another run or batch.
        """
        self.sent += other.sent
        self.retrying += other.retrying
        self.failed += other.failed
        self.released += other.released
        self.overtaken += other.overtaken

    @property
    def claimed(self) -> int:
        """How many rows the run claimed: the sum of the five counts."""
        return self.sent + self.retrying + self.failed + self.released + self.overtaken


class Stalls:
    """Recipients whose server stopped answering lately, by mailbox (one per app).

    When a message runs into the deadline (the recipient's server, or the relay's
    check of it, hangs), further mail to that mailbox is not tried by this process
    for :func:`flasket.outbox.retry_delay` of the number of stalls in a row (the retry base, then
    twice as long ...): each such row counts a failed attempt at once and waits for
    its retry, instead of costing every other recipient ``FLASKET_SMTP_TIMEOUT``.
    A message that goes through ends the stall.
    """

    def __init__(self) -> None:
        self._stalls: dict[str, tuple[datetime, int]] = {}
        self._lock = threading.Lock()

    def until(self, recipient: str, now: datetime) -> datetime | None:
        """When mail to ``recipient`` may be tried again, if it is stalled now.

        :param recipient: an address, compared by :func:`flasket.notify.mailbox_key`.
        :param now: the current time (timezone-aware UTC).
        :return: the end of the stall, or None when mail to it may be tried now.
        """
        found = self._stalls.get(notify.mailbox_key(recipient))
        return found[0] if found is not None and found[0] > now else None

    def note(self, recipient: str, now: datetime) -> None:
        """Note that a message to ``recipient`` ran into the deadline.

        :param recipient: the address the message went to.
        :param now: the current time (timezone-aware UTC).
        """
        key = notify.mailbox_key(recipient)
        with self._lock:
            count = self._stalls.get(key, (now, 0))[1] + 1
            self._stalls[key] = (now + timedelta(seconds=outbox.retry_delay(count)), count)

    def clear(self, recipient: str) -> None:
        """Note that a message to ``recipient`` went through: its stall ends.

        :param recipient: the address the message went to.
        """
        if self._stalls:
            with self._lock:
                self._stalls.pop(notify.mailbox_key(recipient), None)


def stalls(app: Flask | None = None) -> Stalls:
    """The :class:`Stalls` of ``app``, made on first use and kept in ``app.extensions``.

    :param app: the Flask application; None for the current app.
    :return: the same :class:`Stalls` on every call for one app.
    :raises RuntimeError: when ``app`` is None and there is no application context.
    """
    return per_app("flasket.outbox_stalls", Stalls, app)


def message_for(row: outbox.Claimed) -> NotificationMessage:
    """The mail of one outbox row, as :meth:`flasket.smtp.SMTPConnection.send` takes it.

    :param row: a claimed row.
    :return: the message, from ``MAIL_DEFAULT_SENDER`` (see
        :func:`flasket.config.mail_sender`), with the row's ``Message-ID`` and headers.
    :raises flasket.smtp.AddressError: for a recipient no server will take (a permanent failure).
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


def seconds_left(row: outbox.Claimed) -> float:
    """How long the lease on ``row`` still holds.

    :param row: a claimed row.
    :return: seconds until its lease runs out; negative once it has.
    """
    return (row.until - utcnow()).total_seconds()


def _send(rows: Sequence[outbox.Claimed]) -> Outcome:
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
        that outcome and the release of the rows not yet tried are owed
        (:class:`flasket.outbox.Ledger`) and recorded by this process's next run.
    """
    outcome = Outcome()
    if not rows:
        return outcome
    mail = current_app.extensions.get("mail")
    if mail is None:
        failure = smtp.Failure("Flask-Mail is not initialised on this app", False, smtp.SERVER)
        for row in rows:
            _tally(outcome, outbox.record_failure(row, failure))
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
                _tally(
                    outcome, outbox.record_failure(row, smtp.Failure(reason, False, smtp.MESSAGE))
                )
                continue
            cost = smtp.SEND_COST + (smtp.OPEN_COST if connection is None else 0)
            if seconds_left(row) < cost * timeout + LEASE_MARGIN:
                outcome.released += outbox.release_untried(waiting)
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
                _tally(outcome, outbox.record_failure(row, failure))
                if failure.scope == smtp.CONNECTION:
                    connection.close()
                    connection = None
                    lost_in_a_row += 1
                    if lost_in_a_row > 1:
                        outcome.released += outbox.release_untried(waiting)
                        break
                continue
            lost_in_a_row = 0
            stalled.clear(row.recipient)
            if outbox.record(
                row, {"status": SENT, "sent_at": utcnow(), "attempts": row.attempts + 1}
            ):
                outcome.sent += 1
            else:
                outcome.overtaken += 1
            if not connection.usable:  # MAIL_MAX_EMAILS
                connection.close()
                connection = None
    except Exception:
        # Only recording talks to the database here: what was not recorded is owed.
        for left in waiting:
            outbox.ledger().owe(left, None)
        raise
    finally:
        if connection is not None:
            connection.close()
    return outcome


def _server_unavailable(
    outcome: Outcome, rows: list[outbox.Claimed], failure: smtp.Failure
) -> None:
    """The server takes no mail now: each row counts a failed attempt, logged once."""
    log.error("%s; %d mail(s) will be retried", failure.reason, len(rows))
    while rows:
        _tally(outcome, outbox.record_failure(rows[0], failure, logging.WARNING))
        rows.pop(0)


def _tally(outcome: Outcome, status: str) -> None:
    if status == FAILED:
        outcome.failed += 1
    elif status == outbox.OVERTAKEN:
        outcome.overtaken += 1
    else:
        outcome.retrying += 1


def deliver(event_ids: Sequence[int]) -> Outcome:
    """Fan out these outbox events and send their rows (those still due and unclaimed).

    Outcomes this process owes from an earlier run (:class:`flasket.outbox.Ledger`) are
    recorded first. Rows are claimed and sent ``FLASKET_DELIVERY_BATCH`` at a time.

    :param event_ids: ``flasket_outbox_event`` ids, as :func:`flasket.notify.enqueue`
        wrote them.
    :return: what the run did.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails; what was sent
        but not recorded is owed (:class:`flasket.outbox.Ledger`).
    """
    outbox.ledger().settle()
    outcome = Outcome()
    ids = outbox.fan_out(event_ids)
    batch = config_value("delivery_batch")
    for start in range(0, len(ids), batch):
        outcome.add(_send(outbox.claim(batch, ids[start : start + batch])))
    return outcome


def deliver_due(
    max_batches: int | None = None, should_stop: Callable[[], bool] = lambda: False
) -> Outcome:
    """Send every due row (retries included), batch by batch, fanning out new events first.

    Before each batch, up to ``FLASKET_DELIVERY_BATCH`` waiting events are fanned out,
    so new events go out promptly while a backlog drains. Outcomes this process owes
    from an earlier run (:class:`flasket.outbox.Ledger`) are recorded before anything
    is claimed.

    :param max_batches: stop after this many batches; None to go on while rows are due.
    :param should_stop: called before each batch; True ends the run (a worker's stop
        signal).
    :return: what the run did, over all its batches.
    :raises sqlalchemy.exc.SQLAlchemyError: when the database fails; what was sent
        but not recorded is owed (:class:`flasket.outbox.Ledger`).
    """
    outbox.ledger().settle()
    outcome = Outcome()
    batch = config_value("delivery_batch")
    batches = 0
    while not should_stop() and (max_batches is None or batches < max_batches):
        events, _ = outbox.fan_out_events(limit=batch)
        rows = outbox.claim(batch)
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
