"""Bounded lifetimes in the outbox: ``flask flasket prune`` and fan-outs that are given up."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flasket import delivery, notify
from tests.helpers import Client, Inbox, counting_queries, ext_models
from tests.hostapp import db
from tests.test_outbox import cli, deliver_once, settings

STAFF = ["helpdesk@example.test"]


def days_ago(days: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(days=days)


def add_event(app: Flask, ticket_id: int, **values: Any) -> int:
    """An event row as a deliverer would have left it; ``values`` set its columns."""
    models = ext_models(app)
    with app.app_context():
        event = models.OutboxEvent(
            ticket_id=ticket_id,
            event="replied",
            subject="Re: something",
            text="text",
            html="<p>html</p>",
            **values,
        )
        db.session.add(event)
        db.session.commit()
        return int(event.id)


def add_copy(app: Flask, event_id: int, status: str, at: datetime, recipient: str) -> int:
    """A copy of the event whose last attempt was due ``at`` (and, when sent, sent then)."""
    models = ext_models(app)
    with app.app_context():
        event: Any = db.session.get(models.OutboxEvent, event_id)
        row = models.Outbox(
            event_id=event_id,
            ticket_id=event.ticket_id,
            event=event.event,
            recipient=recipient,
            subject=event.subject,
            message_id=f"<{event_id}.{recipient}>",
            status=status,
            attempts=1,
            next_attempt_at=at,
            created_at=at,
            sent_at=at if status == "sent" else None,
        )
        db.session.add(row)
        db.session.commit()
        return int(row.id)


def ids(app: Flask, model: Any) -> set[int]:
    with app.app_context():
        found = set(db.session.scalars(sa.select(model.id)))
        db.session.rollback()
    return found


def test_prune_deletes_what_outlived_its_keep_time_and_never_pending_mail(
    app: Flask, alice: Client
) -> None:
    ticket = alice.submit()
    delivery.wait_for_idle(30)
    models = ext_models(app)
    events_before, rows_before = ids(app, models.OutboxEvent), ids(app, models.Outbox)

    old_sent_event = add_event(app, ticket, fanned_out_at=days_ago(40))
    old_sent = add_copy(app, old_sent_event, "sent", days_ago(40), "a@example.test")
    recent_sent = add_copy(app, add_event(app, ticket, fanned_out_at=days_ago(10)), "sent",
                           days_ago(10), "b@example.test")  # fmt: skip
    old_failed_event = add_event(app, ticket, fanned_out_at=days_ago(100))
    old_failed = add_copy(app, old_failed_event, "failed", days_ago(100), "c@example.test")
    kept_failed_event = add_event(app, ticket, fanned_out_at=days_ago(40))
    kept_failed = add_copy(app, kept_failed_event, "failed", days_ago(40), "d@example.test")
    pending_event = add_event(app, ticket, fanned_out_at=days_ago(200))
    pending = add_copy(app, pending_event, "pending", days_ago(200), "e@example.test")
    empty_old = add_event(app, ticket, fanned_out_at=days_ago(31))
    empty_recent = add_event(app, ticket, fanned_out_at=days_ago(29))
    given_up_old = add_event(app, ticket, failed_at=days_ago(91), attempts=8, last_error="x")
    given_up_recent = add_event(app, ticket, failed_at=days_ago(40), attempts=8, last_error="x")
    waiting_old = add_event(app, ticket, created_at=days_ago(300))

    output = cli(app, "prune")

    assert "Pruned 1 sent message, 1 failed message and 4 events." in output
    assert ids(app, models.Outbox) == rows_before | {recent_sent, kept_failed, pending}
    assert {old_sent, old_failed}.isdisjoint(ids(app, models.Outbox))
    left = ids(app, models.OutboxEvent) - events_before
    assert {old_sent_event, old_failed_event, empty_old, given_up_old}.isdisjoint(left)
    assert {kept_failed_event, pending_event, empty_recent, given_up_recent, waiting_old} <= left
    assert events_before <= ids(app, models.OutboxEvent)

    assert "Pruned 0 sent messages, 0 failed messages and 0 events." in cli(app, "prune")
    output = cli(app, "prune", "--keep-sent-days", "5", "--keep-failed-days", "20")
    assert "Pruned 1 sent message, 1 failed message and 4 events." in output
    assert ids(app, models.Outbox) == rows_before | {pending}


@settings(FLASKET_OUTBOX_PRUNE_BATCH=3)
def test_prune_deletes_in_batches_of_the_configured_size(app: Flask, alice: Client) -> None:
    ticket = alice.submit()
    delivery.wait_for_idle(30)
    for number in range(7):
        event = add_event(app, ticket, fanned_out_at=days_ago(60))
        add_copy(app, event, "sent", days_ago(60), f"user{number}@example.test")

    with counting_queries(app) as statements:
        output = cli(app, "prune")

    assert "Pruned 7 sent messages, 0 failed messages and 7 events." in output
    deletes = [s.split()[2] for s in statements if s.lstrip().upper().startswith("DELETE")]
    assert deletes == ["flasket_outbox"] * 3 + ["flasket_outbox_event"] * 3
    assert ids(app, ext_models(app).Outbox) == set()


def test_prune_refuses_a_keep_time_that_is_not_positive(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["flasket", "prune", "--keep-sent-days", "0"])
    assert result.exit_code == 2


class AddressBookDown(RuntimeError):
    pass


def event_row(app: Flask) -> Any:
    with app.app_context():
        found = db.session.scalars(sa.select(ext_models(app).OutboxEvent)).one()
        db.session.expunge_all()
    return found


def make_event_due(app: Flask) -> None:
    """Time passes: the event's next fan-out attempt is now."""
    events = ext_models(app).OutboxEvent.__table__
    with app.app_context():
        db.session.execute(sa.update(events).values(next_attempt_at=days_ago(1)))
        db.session.commit()


@settings(
    FLASKET_DELIVERY="worker", FLASKET_STAFF_RECIPIENTS=STAFF, FLASKET_DELIVERY_MAX_ATTEMPTS=3
)
def test_a_fan_out_that_keeps_failing_is_given_up_shown_and_requeued(
    app: Flask, alice: Client, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def broken(event: Any, ticket: Any) -> Any:
        calls.append(event.id)
        raise AddressBookDown("the address book is down")

    monkeypatch.setattr(notify, "recipients_of", broken)
    alice.submit(title="Printer on fire")

    deliver_once(app)
    assert len(calls) == 1
    deliver_once(app)
    assert len(calls) == 1, "retried before its retry time"
    first = event_row(app)
    assert (first.attempts, first.failed_at) == (1, None)
    assert first.last_error == "AddressBookDown: the address book is down"
    assert first.next_attempt_at > datetime.now(timezone.utc) + timedelta(seconds=50)

    for attempt in (2, 3):
        make_event_due(app)
        deliver_once(app)
        assert len(calls) == attempt
    given_up = event_row(app)
    assert given_up.attempts == 3
    assert given_up.failed_at is not None
    assert given_up.fanned_out_at is None
    make_event_due(app)
    deliver_once(app)
    assert len(calls) == 3, "a given-up event was tried again"
    listing = cli(app, "outbox")
    assert "1 event whose fan-out was given up" in listing
    assert "AddressBookDown: the address book is down" in listing
    assert "not fanned out to" not in listing

    monkeypatch.undo()
    assert "Requeued 0 messages and 1 event." in cli(
        app, "outbox", "--retry-event", str(given_up.id)
    )
    deliver_once(app)
    assert [m.subject for m in inbox.to(STAFF[0])] == ["[Ticket #1] Printer on fire"]
    assert event_row(app).fanned_out_at is not None
    assert "given up" not in cli(app, "outbox")


@settings(FLASKET_DELIVERY="worker", FLASKET_STAFF_RECIPIENTS=STAFF)
def test_retry_failed_requeues_given_up_events_too(
    app: Flask, alice: Client, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice.submit(title="Printer on fire")
    events = ext_models(app).OutboxEvent.__table__
    with app.app_context():
        db.session.execute(sa.update(events).values(attempts=8, failed_at=days_ago(1)))
        db.session.commit()
    deliver_once(app)
    assert inbox.messages == []

    assert "Requeued 0 messages and 1 event." in cli(app, "outbox", "--retry-failed")
    deliver_once(app)
    assert len(inbox.to(STAFF[0])) == 1


@settings(FLASKET_DELIVERY="worker", FLASKET_STAFF_RECIPIENTS=STAFF)
def test_a_lost_database_during_a_fan_out_is_raised_and_not_counted_as_an_attempt(
    app: Flask, alice: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disconnected(event: Any, ticket: Any) -> Any:
        raise sa.exc.OperationalError(
            "SELECT 1",
            {},
            RuntimeError("server closed the connection"),
            connection_invalidated=True,
        )

    monkeypatch.setattr(notify, "recipients_of", disconnected)
    alice.submit(title="Printer on fire")
    with app.app_context(), pytest.raises(sa.exc.OperationalError):
        delivery.fan_out()
    row = event_row(app)
    assert (row.attempts, row.last_error, row.fanned_out_at) == (0, None, None)
