"""The durable outbox: rows written with the event, delivered over real SMTP, retried, leased."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy.session import Session as FlaskSession
from flask_wtf.csrf import CSRFProtect
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from flasket import delivery, notify, smtp
from flasket import outbox as flasket_outbox
from flasket.config import ConfigError
from flasket.unfollow import SALT
from tests.databases import fresh_database
from tests.helpers import ROOT, Client, Inbox, counting_queries, ext_models, rows
from tests.hostapp import User, create_app, db

STAFF = ["helpdesk@example.test"]
CLOSED_PORT = 1
UNFOLLOW_LINK = re.compile(r"http://host\.test/ticket/unfollow/([A-Za-z0-9_.\-]+)")


def settings(**values: Any) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("app_config", [values], ids=["config"])


@pytest.fixture
def database_url(backend: str) -> Iterator[str]:
    """Like the suite's, but SQLite is a file: deliveries run in threads and other apps."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'outbox.db'}"
        return
    with fresh_database(backend) as url:
        yield url


def outbox(app: Flask, **filters: Any) -> list[Any]:
    """The outbox rows, once the background deliveries started so far are done."""
    assert delivery.wait_for_idle(timeout=30)
    return sorted(rows(app, ext_models(app).Outbox, **filters), key=lambda row: row.id)


def deliver_once(app: Flask) -> str:
    result = app.test_cli_runner().invoke(args=["flasket", "deliver", "--once"])
    assert result.exit_code == 0, result.output
    return str(result.output)


def cli(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["flasket", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return str(result.output)


def make_due(app: Flask) -> None:
    """Time passes: every pending row's next attempt is now."""
    table = ext_models(app).Outbox.__table__
    with app.app_context():
        db.session.execute(
            sa.update(table).values(next_attempt_at=datetime.now(timezone.utc) - timedelta(1))
        )
        db.session.commit()


def header(message: Any, name: str) -> str | None:
    value = message[name]
    return None if value is None else " ".join(str(value).split())


def use_smtp_port(app: Flask, port: int) -> None:
    """Point the host's mail settings at another port (Flask-Mail reads them at init_app)."""
    app.config["MAIL_PORT"] = port
    app.extensions["mail"].port = port


# Rows and their delivery


def test_a_reply_is_delivered_from_its_outbox_row_with_headers_and_both_parts(
    app: Flask, followed_ticket: int, admin: Client, inbox: Inbox
) -> None:
    response = admin.reply(followed_ticket, "We are on it.")
    assert response.status_code == 303

    assert len(inbox.messages) == 3
    sent = outbox(app)
    assert sorted(row.recipient for row in sent) == [
        "alice@example.test",
        "bob@example.test",
        "carol@example.test",
    ]
    assert {row.status for row in sent} == {"sent"}
    assert {row.attempts for row in sent} == {1}
    assert all(row.sent_at is not None and row.claimed_by is None for row in sent)
    assert {row.event for row in sent} == {"replied"}
    assert {row.ticket_id for row in sent} == {followed_ticket}
    by_id = {row.message_id: row for row in sent}
    assert sorted(inbox.message_ids()) == sorted(by_id)
    with app.app_context():
        ticket = db.session.get(ext_models(app).Ticket, followed_ticket)
        assert ticket is not None
        root = f"<flasket.{ticket.mail_key}@host.test>"
    for received in inbox.messages:
        row = by_id[header(received.message, "Message-ID") or ""]
        assert received.envelope_to == [row.recipient]
        assert received.subject == row.subject
        assert row.subject == f"Re: [Ticket #{followed_ticket}] Printer is on fire"
        assert header(received.message, "From") == "Support <support@example.test>"
        assert header(received.message, "In-Reply-To") == root
        assert header(received.message, "References") == root
        assert header(received.message, "Auto-Submitted") == "auto-generated"
        assert "We are on it." in received.part("plain")
        assert "We are on it." in received.part("html")
        assert json.loads(row.headers)["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_reply_and_its_outbox_rows_commit_together_or_not_at_all(
    app: Flask,
    followed_ticket: int,
    admin: Client,
    inbox: Inbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    models = ext_models(app)

    def broken_commit(self: Any) -> None:
        raise sa.exc.OperationalError("COMMIT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(FlaskSession, "commit", broken_commit)
    # A transient database error: Flasket's 503 page, and nothing stored or sent.
    assert admin.reply(followed_ticket, "This reply is lost.").status_code == 503
    monkeypatch.undo()
    assert rows(app, models.Reply, ticket_id=followed_ticket) == []
    assert outbox(app) == []
    assert inbox.messages == []

    def broken_outbox(*args: Any, **kwargs: Any) -> list[int]:
        raise sa.exc.OperationalError("INSERT INTO flasket_outbox_event", {}, Exception("full"))

    monkeypatch.setattr(notify, "enqueue", broken_outbox)
    assert admin.reply(followed_ticket, "Neither is this one.").status_code == 503
    monkeypatch.undo()
    assert rows(app, models.Reply, ticket_id=followed_ticket) == []
    assert [t.reply_count for t in rows(app, models.Ticket, id=followed_ticket)] == [0]
    assert inbox.messages == []

    assert admin.reply(followed_ticket, "This one stays.").status_code == 303
    [reply] = rows(app, models.Reply, ticket_id=followed_ticket)
    assert len(outbox(app, event="replied")) == 3
    assert len(inbox.messages) == 3
    assert reply.body == "This one stays."


def test_the_request_does_not_wait_for_the_mail_server(
    app: Flask,
    backend: str,
    followed_ticket: int,
    admin: Client,
    inbox: Inbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate = threading.Event()
    accept = inbox.handle_DATA

    async def held_data(server: Any, session: Any, envelope: Any) -> str:
        await asyncio.get_running_loop().run_in_executor(None, gate.wait, 30)
        return await accept(server, session, envelope)

    monkeypatch.setattr(inbox, "handle_DATA", held_data)

    response = admin.reply(followed_ticket, "Held at the server.")

    # The mail server has not accepted anything yet, and the reply is already answered.
    assert response.status_code == 303
    assert inbox.received == []
    # The event's mail is committed; its copies (once fanned out) are not sent yet.
    assert [row.event for row in rows(app, ext_models(app).OutboxEvent)][-1:] == ["replied"]
    assert {row.status for row in rows(app, ext_models(app).Outbox)} <= {"pending"}
    gate.set()
    assert len(inbox.messages) == 3
    assert {row.status for row in outbox(app)} == {"sent"}


# The mail server is down, refuses someone, or goes away


@settings(MAIL_PORT=CLOSED_PORT, FLASKET_STAFF_RECIPIENTS=STAFF)
def test_with_the_server_down_mail_waits_and_arrives_exactly_once_when_it_is_back(
    app: Flask,
    smtp_server: tuple[Inbox, int],
    followed_ticket: int,
    admin: Client,
    inbox: Inbox,
) -> None:
    before = datetime.now(timezone.utc)
    assert admin.reply(followed_ticket, "Is anybody there?").status_code == 303
    assert admin.post(f"/ticket/{followed_ticket}/close").status_code == 303

    waiting = outbox(app)
    assert inbox.messages == []
    # 1 staff mail for the new ticket, 3 for the reply, 3 for the close.
    assert len(waiting) == 7
    for row in waiting:
        assert row.status == "pending"
        assert row.attempts == 1
        assert row.claimed_by is None
        assert "could not reach the mail server" in (row.last_error or "")
        assert row.next_attempt_at >= before + timedelta(seconds=59)

    deliver_once(app)
    assert inbox.messages == []  # not due yet: nothing tried, nothing sent
    assert {row.attempts for row in outbox(app)} == {1}

    use_smtp_port(app, smtp_server[1])
    make_due(app)
    output = deliver_once(app)

    assert "sent 7" in output
    assert sorted(inbox.message_ids()) == sorted(row.message_id for row in waiting)
    assert {(row.status, row.attempts) for row in outbox(app)} == {("sent", 2)}
    make_due(app)
    deliver_once(app)
    assert len(inbox.messages) == 7
    assert "every message was sent" in cli(app, "outbox")


@settings(
    FLASKET_DELIVERY="worker", FLASKET_DELIVERY_RETRY_BASE=0, FLASKET_DELIVERY_MAX_ATTEMPTS=3
)
def test_a_deferred_recipient_is_retried_then_failed_and_the_others_are_delivered(
    app: Flask, followed_ticket: int, admin: Client, inbox: Inbox
) -> None:
    """A 4xx answer is temporary: retried until FLASKET_DELIVERY_MAX_ATTEMPTS, then failed."""
    inbox.defer.add("bob@example.test")
    assert admin.reply(followed_ticket, "We are on it.").status_code == 303
    assert inbox.messages == []  # worker mode: the request only wrote rows

    deliver_once(app)

    assert sorted(m.envelope_to[0] for m in inbox.messages) == [
        "alice@example.test",
        "carol@example.test",
    ]
    [deferred] = outbox(app, recipient="bob@example.test")
    assert deferred.status == "failed"
    assert deferred.attempts == 3
    assert "450" in (deferred.last_error or "")
    assert "bob@example.test" in (deferred.last_error or "")
    listing = cli(app, "outbox")
    line = next(line for line in listing.splitlines() if "bob@example.test" in line)
    assert line.split()[:3] == [str(deferred.id), "failed", "3"]
    assert "450 4.2.1 Mailbox busy" in line

    inbox.defer.clear()
    assert "Requeued 1 message." in cli(app, "outbox", "--retry-failed")
    deliver_once(app)
    assert [m.envelope_to for m in inbox.to("bob@example.test")] == [["bob@example.test"]]
    assert len(inbox.messages) == 3
    assert {row.status for row in outbox(app)} == {"sent"}


@settings(FLASKET_DELIVERY="worker", FLASKET_DELIVERY_RETRY_BASE=0)
def test_a_refused_recipient_fails_at_once_and_is_not_retried(
    app: Flask, followed_ticket: int, admin: Client, inbox: Inbox
) -> None:
    """A 5xx answer to RCPT is permanent: one attempt, a clear last_error, no retry."""
    inbox.refuse.add("bob@example.test")
    admin.reply(followed_ticket, "We are on it.")
    deliver_once(app)
    deliver_once(app)

    [refused] = outbox(app, recipient="bob@example.test")
    assert (refused.status, refused.attempts) == ("failed", 1)
    assert refused.last_error == (
        "recipient refused: 550 5.1.1 No such mailbox (bob@example.test)"
    )
    assert len(inbox.messages) == 2


@settings(FLASKET_DELIVERY="worker")
def test_retry_by_id_requeues_only_that_row(
    app: Flask, followed_ticket: int, admin: Client, inbox: Inbox
) -> None:
    inbox.defer.update({"bob@example.test", "carol@example.test"})
    admin.reply(followed_ticket)
    deliver_once(app)
    bob_row = outbox(app, recipient="bob@example.test")[0]
    assert bob_row.status == "pending"
    assert bob_row.next_attempt_at > datetime.now(timezone.utc)
    inbox.defer.clear()

    assert "Requeued 1 message." in cli(app, "outbox", "--retry", str(bob_row.id))
    deliver_once(app)

    assert sorted(m.envelope_to[0] for m in inbox.messages) == [
        "alice@example.test",
        "bob@example.test",
    ]
    [carol_row] = outbox(app, recipient="carol@example.test")
    assert (carol_row.status, carol_row.attempts) == ("pending", 1)


@settings(FLASKET_DELIVERY="worker")
def test_a_connection_that_dies_mid_batch_is_opened_again_for_the_rest(
    app: Flask,
    followed_ticket: int,
    admin: Client,
    inbox: Inbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin.reply(followed_ticket)
    sends = 0
    real_send = smtp.SMTPConnection.send

    def dying_send(self: smtp.SMTPConnection, message: Any) -> None:
        nonlocal sends
        sends += 1
        if sends == 2:
            assert self.host is not None
            assert self.host.sock is not None
            self.host.sock.shutdown(socket.SHUT_RDWR)  # the network goes away mid-batch
        real_send(self, message)

    monkeypatch.setattr(smtp.SMTPConnection, "send", dying_send)
    with app.app_context():
        assert len(delivery.fan_out()) == 3
        outcome = delivery._send(flasket_outbox.claim(limit=10))

    assert (outcome.sent, outcome.retrying, outcome.failed, outcome.released) == (2, 1, 0, 0)
    statuses = [(row.status, row.attempts, row.claimed_by) for row in outbox(app)]
    assert statuses == [("sent", 1, None), ("pending", 1, None), ("sent", 1, None)]
    assert "connection lost" in (outbox(app)[1].last_error or "")
    monkeypatch.undo()
    make_due(app)
    deliver_once(app)
    assert len(inbox.messages) == 3
    assert len(set(inbox.message_ids())) == 3


@settings(FLASKET_DELIVERY="worker")
def test_a_connection_lost_twice_in_a_row_releases_the_rest_untried(
    app: Flask,
    followed_ticket: int,
    admin: Client,
    inbox: Inbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin.reply(followed_ticket)

    def dying_send(self: smtp.SMTPConnection, message: Any) -> None:
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

    monkeypatch.setattr(smtp.SMTPConnection, "send", dying_send)
    with app.app_context():
        assert len(delivery.fan_out()) == 3
        outcome = delivery._send(flasket_outbox.claim(limit=10))

    assert (outcome.sent, outcome.retrying, outcome.failed, outcome.released) == (0, 2, 0, 1)
    statuses = [(row.status, row.attempts, row.claimed_by) for row in outbox(app)]
    assert statuses == [("pending", 1, None), ("pending", 1, None), ("pending", 0, None)]


# Leases and several workers


@settings(FLASKET_DELIVERY="worker")
def test_rows_of_a_crashed_worker_are_delivered_by_another_after_the_lease(
    app: Flask, followed_ticket: int, admin: Client, inbox: Inbox
) -> None:
    admin.reply(followed_ticket)
    with app.app_context():
        assert len(delivery.fan_out()) == 3
        abandoned = flasket_outbox.claim(limit=10)  # then the worker dies without sending
    assert len(abandoned) == 3

    deliver_once(app)
    assert inbox.messages == []  # leased: nobody else may send them yet

    table = ext_models(app).Outbox.__table__
    with app.app_context():
        db.session.execute(
            sa.update(table).values(
                claimed_until=datetime.now(timezone.utc) - timedelta(seconds=1)
            )
        )
        db.session.commit()
    deliver_once(app)
    assert len(inbox.messages) == 3

    with app.app_context():
        # The "dead" worker wakes up after its lease ran out: it sends nothing.
        expired = [replace(row, until=datetime.now(timezone.utc)) for row in abandoned]
        outcome = delivery._send(expired)
    assert (outcome.sent, outcome.released) == (0, 0)
    assert len(inbox.messages) == 3
    assert {(row.status, row.attempts) for row in outbox(app)} == {("sent", 1)}


@settings(FLASKET_DELIVERY="worker")
def test_a_run_whose_lease_runs_short_releases_the_batch_and_stops_instead_of_spinning(
    app: Flask, followed_ticket: int, admin: Client, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin.reply(followed_ticket)
    # Every claimed row looks too close to the end of its lease to be started.
    monkeypatch.setattr(delivery, "LEASE_MARGIN", 10_000.0)
    with app.app_context():
        outcome = delivery.deliver_due()
    assert (outcome.sent, outcome.retrying, outcome.failed, outcome.released) == (0, 0, 0, 3)
    assert inbox.messages == []
    assert {(row.status, row.claimed_by, row.attempts) for row in outbox(app)} == {
        ("pending", None, 0)
    }

    monkeypatch.undo()
    deliver_once(app)
    assert len(inbox.messages) == 3


def add_followers(app: Flask, ticket_id: int, count: int) -> None:
    models = ext_models(app)
    now = datetime.now(timezone.utc)
    with app.app_context():
        db.session.execute(
            sa.insert(User),
            [{"username": f"f{n}", "email": f"f{n}@example.test"} for n in range(count)],
        )
        ids = db.session.scalars(sa.select(User.id).where(User.username.like("f%"))).all()
        db.session.execute(
            sa.insert(models.Follow),
            [{"ticket_id": ticket_id, "user_id": uid, "created_at": now} for uid in ids],
        )
        db.session.commit()


@settings(FLASKET_DELIVERY="worker", FLASKET_DELIVERY_BATCH=7)
def test_two_workers_drain_one_outbox_and_send_every_message_exactly_once(
    app: Flask,
    database_url: str,
    smtp_server: tuple[Inbox, int],
    alice: Client,
    admin: Client,
    inbox: Inbox,
) -> None:
    ticket_id = alice.submit()
    add_followers(app, ticket_id, 199)
    admin.reply(ticket_id, "To all 200 followers.")
    # One event row, fanned out by whichever worker gets to it first.
    assert [row.fanned_out_at for row in rows(app, ext_models(app).OutboxEvent)][-1] is None
    assert outbox(app, event="replied") == []

    outcomes: list[delivery.Outcome] = []
    start = threading.Barrier(2)

    def worker() -> None:
        own = create_app(
            smtp_port=smtp_server[1],
            SQLALCHEMY_DATABASE_URI=database_url,
            FLASKET_DELIVERY="worker",
            FLASKET_DELIVERY_BATCH=7,
        )
        with own.app_context():
            start.wait()
            outcomes.append(delivery.deliver_due())
            db.session.remove()
            db.engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    ids = inbox.message_ids()
    assert len(ids) == 200
    assert len(set(ids)) == 200
    assert sorted(ids) == sorted(row.message_id for row in outbox(app))
    assert sum(outcome.sent for outcome in outcomes) == 200
    assert {(row.status, row.attempts) for row in outbox(app)} == {("sent", 1)}


# Delivery modes


def test_delivery_mode_must_be_known_and_hook_needs_a_callable(
    smtp_server: tuple[Inbox, int],
) -> None:
    with pytest.raises(ConfigError, match="FLASKET_DELIVERY must be one of"):
        create_app(FLASKET_DELIVERY="sometimes")
    with pytest.raises(ConfigError, match="needs FLASKET_DELIVERY_HOOK"):
        create_app(FLASKET_DELIVERY="hook")
    with pytest.raises(ConfigError, match="FLASKET_DELIVERY_HOOK must be a callable"):
        create_app(FLASKET_DELIVERY="hook", FLASKET_DELIVERY_HOOK="tasks.deliver")
    with pytest.raises(ConfigError, match="FLASKET_DELIVERY_LEASE"):
        create_app(FLASKET_DELIVERY_LEASE=0)
    with pytest.raises(ConfigError, match=r"FLASKET_DELIVERY_LEASE \(99 s\) must be at least 100"):
        create_app(FLASKET_DELIVERY_LEASE=99)
    with pytest.raises(ConfigError, match=r"\(20 s\) must be at least 31 seconds with .* = 7"):
        create_app(FLASKET_DELIVERY_LEASE=20, FLASKET_SMTP_TIMEOUT=7)
    create_app(FLASKET_DELIVERY_LEASE=31, FLASKET_SMTP_TIMEOUT=7)
    with pytest.raises(ConfigError, match="FLASKET_DELIVERY_MAX_ATTEMPTS"):
        create_app(FLASKET_DELIVERY_MAX_ATTEMPTS=1.5)
    with pytest.raises(ConfigError, match="FLASKET_RQ_APP_FACTORY"):
        create_app(FLASKET_RQ_APP_FACTORY="myapp.create_app")


@settings(FLASKET_DELIVERY="worker")
def test_a_reply_post_runs_as_many_sql_statements_for_100_followers_as_for_1(
    app: Flask, alice: Client, admin: Client, inbox: Inbox
) -> None:
    """The request's work does not grow with the recipients: fan-out is the deliverer's."""
    models = ext_models(app)
    few, many = alice.submit("One follower"), alice.submit("A hundred followers")
    now = datetime.now(timezone.utc)
    with app.app_context():
        db.session.execute(
            sa.insert(User),
            [{"username": f"crowd{n}", "email": f"crowd{n}@example.test"} for n in range(99)],
        )
        crowd = db.session.scalars(sa.select(User.id).where(User.username.like("crowd%")))
        db.session.execute(
            sa.insert(models.Follow),
            [{"ticket_id": many, "user_id": uid, "created_at": now} for uid in crowd],
        )
        db.session.commit()
    assert len(rows(app, models.Follow, ticket_id=many)) == 100
    # admin follows both once a first reply is in, so both counted replies add no follow row.
    admin.reply(few, "Warming up.")
    admin.reply(many, "Warming up.")

    def statements_of_a_reply(ticket_id: int) -> list[str]:
        data = {"body": "Counted.", "csrf_token": admin.csrf()}
        with counting_queries(app) as statements:
            response = admin.http.post(f"/ticket/{ticket_id}", data=data)
        assert response.status_code == 303
        return list(statements)

    for_one, for_hundred = statements_of_a_reply(few), statements_of_a_reply(many)
    assert len(for_one) == len(for_hundred), (for_one, for_hundred)

    with app.app_context():
        delivery.deliver_due()
    # Two replies on each ticket, mailed to every follower but admin, who wrote them.
    assert sorted(len(inbox.to(f"crowd{n}@example.test")) for n in range(99)) == [2] * 99
    assert len(inbox.to("alice@example.test")) == 4
    assert inbox.to("admin@example.test") == []


@settings(FLASKET_DELIVERY="worker")
def test_a_worker_mails_the_links_built_from_the_configured_address(
    app: Flask, followed_ticket: int, admin: Client, inbox: Inbox
) -> None:
    admin.reply(followed_ticket, "Fanned out far from any request.")
    with app.app_context():
        assert delivery.deliver_due().sent == 3
    for received in inbox.messages:
        assert f"http://host.test/ticket/{followed_ticket}#reply-" in received.part("plain")
        [token] = UNFOLLOW_LINK.findall(received.part("plain"))
        assert header(received.message, "List-Unsubscribe") == (
            f"<http://host.test/ticket/unfollow/{token}>"
        )
        assert token != notify.TOKEN_PLACEHOLDER
    assert len({UNFOLLOW_LINK.findall(m.part("html"))[0] for m in inbox.messages}) == 3


@settings(FLASKET_DELIVERY="worker")
def test_who_follows_after_an_event_does_not_get_its_mail_when_it_is_fanned_out_later(
    app: Flask, alice: Client, bob: Client, carol: Client, inbox: Inbox
) -> None:
    ticket_id = alice.submit("Printer is on fire")
    assert bob.reply(ticket_id, "Mine too.").status_code == 303
    assert carol.post(f"/ticket/{ticket_id}/follow").status_code == 303
    with app.app_context():
        assert delivery.deliver_due().sent == 1
    assert [m.envelope_to for m in inbox.messages] == [["alice@example.test"]]


HOOKED: list[list[int]] = []


def record_hook(ids: list[int]) -> None:
    HOOKED.append(ids)


def broken_hook(ids: list[int]) -> None:
    raise ConnectionError("queue is down")


@settings(FLASKET_DELIVERY="hook", FLASKET_DELIVERY_HOOK=record_hook)
def test_hook_mode_hands_the_new_event_id_to_the_hook_after_the_commit(
    app: Flask, followed_ticket: int, admin: Client, inbox: Inbox
) -> None:
    HOOKED.clear()
    admin.reply(followed_ticket)
    events = rows(app, ext_models(app).OutboxEvent, event="replied")
    assert [[row.id for row in events]] == HOOKED
    assert outbox(app, event="replied") == []
    assert "1 event not fanned out to its recipients yet." in cli(app, "outbox")
    assert inbox.messages == []

    with app.app_context():
        outcome = delivery.deliver(HOOKED[0])
    assert outcome.sent == 3
    assert len(inbox.messages) == 3


@settings(FLASKET_DELIVERY="hook", FLASKET_DELIVERY_HOOK=broken_hook)
def test_a_failing_hook_never_fails_the_request_and_a_worker_still_delivers(
    app: Flask, followed_ticket: int, admin: Client, inbox: Inbox, caplog: Any
) -> None:
    assert admin.reply(followed_ticket).status_code == 303
    assert "FLASKET_DELIVERY_HOOK failed" in caplog.text
    deliver_once(app)
    assert len(inbox.messages) == 3


# RQ against the real Redis

RQ_CONFIG: dict[str, Any] = {}


def rq_app() -> Flask:
    """The factory the RQ job imports (``tests.test_outbox:rq_app``)."""
    return create_app(**RQ_CONFIG)


@pytest.fixture
def redis_queue() -> Iterator[Any]:
    redis = pytest.importorskip("redis")
    rq = pytest.importorskip("rq")
    connection = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2)
    try:
        connection.ping()
    except redis.exceptions.RedisError as error:
        pytest.skip(f"Redis at 127.0.0.1:6379 is not reachable ({error})")
    queue = rq.Queue(f"flasket-test-{uuid.uuid4().hex[:8]}", connection=connection)
    yield queue
    queue.delete(delete_jobs=True)
    connection.close()


# rq 1.13 to 1.16 deprecated push_connection/pop_connection but their own worker still calls
# them for every job: those warnings (raised inside rq) are not ours to fix. Deprecated calls
# made by this test or by Flasket would still fail it.
@pytest.mark.filterwarnings(r"ignore::DeprecationWarning:rq\.")
def test_rq_hook_enqueues_a_job_that_a_worker_runs_in_an_app_from_the_factory(
    login: Any,
    database_url: str,
    smtp_server: tuple[Inbox, int],
    inbox: Inbox,
    redis_queue: Any,
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rq import SimpleWorker

    from flasket import rq as flasket_rq
    from flasket.rq import enqueue_delivery

    built: dict[str, Flask] = {}
    monkeypatch.setattr(flasket_rq, "_apps", built)  # each test's database is a new one

    app.config["FLASKET_DELIVERY"] = "hook"
    app.config["FLASKET_DELIVERY_HOOK"] = enqueue_delivery(redis_queue)
    app.config["FLASKET_RQ_APP_FACTORY"] = "tests.test_outbox:rq_app"
    RQ_CONFIG.clear()
    RQ_CONFIG.update(smtp_port=smtp_server[1], SQLALCHEMY_DATABASE_URI=database_url)
    alice, bob = login("alice"), login("bob")
    ticket_id = alice.submit()

    assert bob.reply(ticket_id, "Through the queue.").status_code == 303
    assert inbox.messages == []
    assert redis_queue.count == 1

    worker = SimpleWorker([redis_queue], connection=redis_queue.connection)
    assert worker.work(burst=True)

    [received] = inbox.messages
    assert received.envelope_to == ["alice@example.test"]
    assert "Through the queue." in received.part("plain")
    assert [row.status for row in outbox(app)] == ["sent"]
    assert list(built) == ["tests.test_outbox:rq_app"]
    for worker_app in built.values():
        with worker_app.app_context():
            db.engine.dispose()


# One-click unfollow


def unfollow_token(received: Any) -> str:
    match = UNFOLLOW_LINK.search(received.part("plain"))
    assert match, received.part("plain")
    return match.group(1)


def follower_names(app: Flask, ticket_id: int) -> set[str]:
    models = ext_models(app)
    with app.app_context():
        return set(
            db.session.scalars(
                sa.select(User.username)
                .join(models.Follow, models.Follow.user_id == User.id)
                .where(models.Follow.ticket_id == ticket_id)
            )
        )


@settings(FLASKET_STAFF_RECIPIENTS=STAFF)
def test_every_follower_mail_carries_an_unfollow_link_and_header_but_staff_mail_does_not(
    app: Flask, followed_ticket: int, alice: Client, admin: Client, inbox: Inbox
) -> None:
    alice.submit("Second ticket")
    [staff_mail] = inbox.to("helpdesk@example.test")
    assert staff_mail.message["List-Unsubscribe"] is None
    assert "/unfollow/" not in staff_mail.part("plain")
    assert "/unfollow/" not in staff_mail.part("html")
    inbox.messages.clear()

    admin.reply(followed_ticket)
    admin.post(f"/ticket/{followed_ticket}/close")
    assert len(inbox.messages) == 6
    for received in inbox.messages:
        token = unfollow_token(received)
        url = f"http://host.test/ticket/unfollow/{token}"
        assert f'href="{url}"' in received.part("html")
        assert header(received.message, "List-Unsubscribe") == f"<{url}>"
        assert header(received.message, "List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"


def test_unfollow_link_asks_on_get_and_unfollows_on_post_without_login_or_csrf(
    app: Flask, followed_ticket: int, admin: Client, inbox: Inbox
) -> None:
    admin.reply(followed_ticket)
    token = unfollow_token(inbox.to("bob@example.test")[0])
    stranger = app.test_client()

    page = stranger.get(f"/ticket/unfollow/{token}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert f"Unfollow ticket #{followed_ticket}?" in text
    assert '<form method="post"' in text
    assert "csrf_token" not in text
    assert "bob" in follower_names(app, followed_ticket)  # GET changes nothing

    done = stranger.post(f"/ticket/unfollow/{token}")
    assert done.status_code == 200
    assert f"You no longer follow ticket #{followed_ticket}" in done.get_data(as_text=True)
    assert follower_names(app, followed_ticket) == {"alice", "carol", "admin"}
    [ticket] = rows(app, ext_models(app).Ticket, id=followed_ticket)
    assert ticket.follower_count == 3

    inbox.messages.clear()
    admin.reply(followed_ticket, "Bob hears nothing of this.")
    assert sorted(m.envelope_to[0] for m in inbox.messages) == [
        "alice@example.test",
        "carol@example.test",
    ]


def test_one_click_unsubscribe_post_from_a_mail_client_unfollows(
    app: Flask, followed_ticket: int, admin: Client, inbox: Inbox
) -> None:
    admin.reply(followed_ticket)
    received = inbox.to("carol@example.test")[0]
    url = (header(received.message, "List-Unsubscribe") or "").strip("<>")

    response = app.test_client().post(
        url,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    assert "carol" not in follower_names(app, followed_ticket)
    assert "bob" in follower_names(app, followed_ticket)


def test_an_unfollow_token_unfollows_only_its_own_ticket_and_user(
    app: Flask, alice: Client, bob: Client, admin: Client, inbox: Inbox
) -> None:
    first, second = alice.submit("First"), alice.submit("Second")
    for ticket_id in (first, second):
        bob.post(f"/ticket/{ticket_id}/follow")
    admin.reply(first)
    token = unfollow_token(inbox.to("bob@example.test")[0])

    assert app.test_client().post(f"/ticket/unfollow/{token}").status_code == 200

    assert follower_names(app, first) == {"alice", "admin"}
    assert follower_names(app, second) == {"alice", "bob"}


def bad_tokens(app: Flask, first: int, bob_id: int) -> dict[str, str]:
    with app.test_request_context():
        ticket = db.session.get(ext_models(app).Ticket, first)
        assert ticket is not None
        key = ticket.mail_key
        number, _, stamp = key.partition(".")
        good = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=SALT)
        other_secret = URLSafeTimedSerializer("another-secret", salt=SALT)
        other_salt = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="something-else")

        class OldSigner(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(time.time()) - 31 * 24 * 3600

        old = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=SALT, signer=OldSigner)
        token = good.dumps([key, bob_id])
        signature = token.rpartition(".")[2]
        return {
            "expired": old.dumps([key, bob_id]),
            "tampered": token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"),
            "other user swapped in": good.dumps([key, bob_id + 1]).rsplit(".", 1)[0]
            + "."
            + signature,
            "signed by another app": other_secret.dumps([key, bob_id]),
            "another purpose": other_salt.dumps([key, bob_id]),
            "garbage": "not-a-token",
            "gone ticket": good.dumps([f"{first + 1000}.{stamp}", bob_id]),
            # A deleted ticket's token must not act on a later ticket given its number.
            "same number, another ticket": good.dumps(
                [f"{number}.{int(stamp, 16) + 1:x}", bob_id]
            ),
            "number without a creation time": good.dumps([number, bob_id]),
            "a number alone, as tokens once were": good.dumps([first, bob_id]),
            "a number past any ticket": good.dumps([f"{'9' * 13}.{stamp}", bob_id]),
            "wrong shape": good.dumps({"ticket": first}),
        }


#: Signed tokens of tickets that are gone.
GONE = {"gone ticket", "same number, another ticket"}


def test_tampered_expired_or_foreign_unfollow_tokens_get_a_400_and_change_nothing(
    app: Flask, followed_ticket: int
) -> None:
    bob_id = next(u.id for u in rows(app, User) if u.username == "bob")
    before = follower_names(app, followed_ticket)
    client = app.test_client()
    title = rows(app, ext_models(app).Ticket, id=followed_ticket)[0].title
    for case, token in bad_tokens(app, followed_ticket, bob_id).items():
        for method in (client.get, client.post):
            response = method(f"/ticket/unfollow/{token}")
            text = response.get_data(as_text=True)
            if case in GONE:
                # Rightly signed, for a ticket that is gone: the page of any ticket the person
                # may not read, which names the number alone, and unfollows nothing.
                assert response.status_code == 200, (case, method)
                assert title not in text, case
            else:
                assert response.status_code == 400, (case, method)
                assert "That unfollow link cannot be used" in text, case
            assert follower_names(app, followed_ticket) == before, case
    expired = client.get(f"/ticket/unfollow/{bad_tokens(app, followed_ticket, bob_id)['expired']}")
    assert "This unfollow link has expired." in expired.get_data(as_text=True)


def test_unfollow_link_works_in_a_host_that_uses_csrfprotect(
    smtp_server: tuple[Inbox, int], database_url: str, inbox: Inbox
) -> None:
    host = create_app(smtp_port=smtp_server[1], SQLALCHEMY_DATABASE_URI=database_url)
    CSRFProtect(host).exempt("tests.hostapp.login_page")  # the test host's login form
    with host.app_context():
        db.create_all()
        db.session.add_all(
            [User(username="alice", email="a@example.test"), User(username="bob", email="b@t.t")]
        )
        db.session.commit()
    alice, bob = Client(host, "alice"), Client(host, "bob")
    ticket_id = alice.submit()
    bob.reply(ticket_id)
    token = unfollow_token(inbox.to("a@example.test")[0])

    assert host.test_client().post(f"/ticket/{ticket_id}/follow").status_code == 400
    assert host.test_client().post(f"/ticket/unfollow/{token}").status_code == 200
    assert follower_names(host, ticket_id) == {"bob"}
    delivery.wait_for_idle(30)
    with host.app_context():
        db.session.remove()
        db.engine.dispose()


WORKER_APP = """
import json
import os

from tests.hostapp import create_app

app = create_app(
    smtp_port=int(os.environ["WORKER_SMTP_PORT"]),
    SQLALCHEMY_DATABASE_URI=os.environ["WORKER_DATABASE_URL"],
    **json.loads(os.environ["WORKER_CONFIG"]),
)
"""


def start_worker(
    tmp_path: Path, url: str, smtp_port: int, config: dict[str, Any], *options: str
) -> subprocess.Popen[str]:
    """``flask flasket deliver`` in a process of its own, on the host app of the tests."""
    (tmp_path / "worker_app.py").write_text(WORKER_APP, encoding="utf-8")
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "WORKER_SMTP_PORT": str(smtp_port),
        "WORKER_DATABASE_URL": url,
        "WORKER_CONFIG": json.dumps(config),
    }
    command = [sys.executable, "-m", "flask", "--app", "worker_app:app", "flasket", "deliver"]
    return subprocess.Popen(
        [*command, *options],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def shared_database_host(url: str, smtp_port: int, config: dict[str, Any]) -> Flask:
    """The host app on a database that worker processes open too, with alice in it."""
    host = create_app(smtp_port=smtp_port, SQLALCHEMY_DATABASE_URI=url, **config)
    with host.app_context():
        db.create_all()
        db.session.add(User(username="alice", email="alice@example.test"))
        db.session.commit()
    return host


def wait_for(condition: Any, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def stop(worker: subprocess.Popen[str]) -> None:
    if worker.poll() is None:
        worker.kill()
        worker.communicate()


def test_a_looping_worker_process_stops_cleanly_on_sigterm(
    tmp_path: Path, database_url: str, smtp_server: tuple[Inbox, int]
) -> None:
    """``flask flasket deliver`` as its own process: it sends, keeps polling, and SIGTERM
    ends it after the batch in hand, with exit status 0 and a summary."""
    inbox, port = smtp_server
    inbox.clear()
    config = {"FLASKET_DELIVERY": "worker", "FLASKET_STAFF_RECIPIENTS": ["help@example.test"]}
    host = shared_database_host(database_url, port, config)
    url = host.config["SQLALCHEMY_DATABASE_URI"]
    worker = start_worker(tmp_path, url, port, config, "--interval", "0.2")
    try:
        Client(host, "alice").submit(title="Printer on fire")
        wait_for(lambda: inbox.to("help@example.test"), "the worker sent the new ticket's mail")
        assert worker.poll() is None, "the worker stopped before it was told to"

        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    finally:
        stop(worker)
        with host.app_context():
            db.session.remove()
            db.engine.dispose()
    assert worker.returncode == 0, output
    assert "Stopped. sent 1, to retry 0, failed 0, released 0" in output, output
    assert len(inbox.to("help@example.test")) == 1


class SilentServer:
    """Accepts connections on loopback and never answers: an SMTP server that hangs."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self.listener.close()
        for connection in self.accepted:
            connection.close()


def test_a_worker_process_killed_mid_batch_leaves_its_rows_to_the_next_after_the_lease(
    tmp_path: Path, database_url: str, smtp_server: tuple[Inbox, int]
) -> None:
    """SIGKILL, not a simulation: the first worker claims three rows and hangs on a mail server
    that never answers; once it is killed and its lease has run out, a second worker sends
    each of the three exactly once."""
    inbox, port = smtp_server
    inbox.clear()
    staff = ["help@example.test", "desk@example.test", "ops@example.test"]
    config = {
        "FLASKET_DELIVERY": "worker",
        "FLASKET_STAFF_RECIPIENTS": staff,
        "FLASKET_DELIVERY_LEASE": 19,
        "FLASKET_SMTP_TIMEOUT": 3,
    }
    host = shared_database_host(database_url, port, config)
    url = host.config["SQLALCHEMY_DATABASE_URI"]
    table = ext_models(host).Outbox.__table__

    def claimed() -> list[Any]:
        with host.app_context():
            found = db.session.execute(sa.select(table.c.status, table.c.claimed_until)).all()
            db.session.rollback()
        return list(found)

    hanging = SilentServer()
    first = start_worker(tmp_path, url, hanging.port, config, "--interval", "0.2")
    second = None
    try:
        Client(host, "alice").submit(title="Printer on fire")
        wait_for(
            lambda: len(claimed()) == 3 and all(until for _, until in claimed()),
            "the first worker claimed the three rows",
        )
        wait_for(lambda: hanging.accepted, "the first worker connected to the silent server")
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
        assert first.returncode == -signal.SIGKILL
        assert {status for status, _ in claimed()} == {"pending"}
        assert inbox.messages == []

        lease_end = max(until for _, until in claimed())
        wait_for(
            lambda: datetime.now(timezone.utc) > lease_end.replace(tzinfo=timezone.utc),
            "the dead worker's lease ran out",
        )
        second = start_worker(tmp_path, url, port, config, "--once")
        output, _ = second.communicate(timeout=60)
        assert second.returncode == 0, output
        statuses = {status for status, _ in claimed()}
    finally:
        stop(first)
        if second is not None:
            stop(second)
        hanging.close()
        with host.app_context():
            db.session.remove()
            db.engine.dispose()
    assert len(inbox.messages) == 3
    assert all(len(inbox.to(address)) == 1 for address in staff)
    assert statuses == {"sent"}
