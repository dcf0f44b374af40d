"""E-mail notifications and signals, observed through the HTTP interface and a real SMTP server."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_mail import email_dispatched
from flask_sqlalchemy.session import Session as FlaskSession

from flasket import delivery, notify, signals
from tests.helpers import Client, Inbox, Received, ext_models, rows
from tests.hostapp import User, db

STAFF = ["helpdesk@example.test", "oncall@example.test"]
#: A ticket's thread root: its number and creation time (hexadecimal microseconds), the site.
ROOT_ID = re.compile(r"<flasket\.(\d+)\.([0-9a-f]+)@([^>]+)>")
#: One recipient's copy: the ticket's key, then 32 random hex digits.
COPY_ID = re.compile(r"<flasket\.(\d+)\.([0-9a-f]+)\.[0-9a-f]{32}@([^>]+)>")


def root_of(app: Flask, ticket_id: int) -> str:
    """The thread root Message-ID a ticket's mail should carry: its key, the site's host."""
    with app.app_context():
        ticket = db.session.get(ext_models(app).Ticket, ticket_id)
        assert ticket is not None
        return f"<flasket.{ticket.mail_key}@host.test>"


SUBJECT_NUMBER = re.compile(r"\[Ticket #(\d+)\]")
LINK = re.compile(r"http://host\.test(/ticket/\d+)(#reply-\d+)?")
CLOSED_PORT = 1  # tcpmux: nothing listens there, and a test cannot bind it


def settings(**values: Any) -> pytest.MarkDecorator:
    """Run a test with these host config keys (overrides the ``app_config`` fixture)."""
    return pytest.mark.parametrize("app_config", [values], ids=["config"])


def set_user(app: Flask, username: str, **values: Any) -> None:
    with app.app_context():
        db.session.execute(sa.update(User).where(User.username == username).values(**values))
        db.session.commit()


def insert_follow(app: Flask, ticket_id: int, username: str) -> None:
    """A follow row that the web pages would not have allowed (the user may not read)."""
    models = ext_models(app)
    with app.app_context():
        user_id = db.session.scalar(sa.select(User.id).filter_by(username=username))
        db.session.add(
            models.Follow(
                ticket_id=ticket_id, user_id=user_id, created_at=datetime.now(timezone.utc)
            )
        )
        db.session.commit()


def only_to(inbox: Inbox) -> list[str]:
    """The single envelope recipient of each message, in arrival order."""
    assert all(len(m.envelope_to) == 1 for m in inbox.messages), [
        m.envelope_to for m in inbox.messages
    ]
    return [m.envelope_to[0].lower() for m in inbox.messages]


def one_mail_to(inbox: Inbox, address: str) -> Received:
    found = inbox.to(address)
    assert len(found) == 1, f"{address} got {len(found)} messages"
    return found[0]


def reply_id(response: Any) -> int:
    assert response.status_code == 303, response.get_data(as_text=True)
    match = re.search(r"#reply-(\d+)$", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def act(client: Client, ticket_id: int, action: str) -> None:
    response = client.post(f"/ticket/{ticket_id}/{action}")
    assert response.status_code == 303, response.get_data(as_text=True)


def header(received: Received, name: str) -> str | None:
    """A header's value with folding white space removed (long Message-IDs get folded)."""
    value = received.message[name]
    return None if value is None else " ".join(str(value).split())


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "flasket.notify" and r.levelno >= logging.ERROR]


@pytest.fixture
def carol(login: Callable[[str], Client]) -> Client:
    return login("carol")


@pytest.fixture
def followed_ticket(alice: Client, bob: Client, carol: Client, inbox: Inbox) -> int:
    """Alice's ticket, followed by bob and carol (in that order); the inbox starts empty."""
    ticket_id = alice.submit("Printer is on fire")
    act(bob, ticket_id, "follow")
    act(carol, ticket_id, "follow")
    inbox.messages.clear()
    return ticket_id


@settings(FLASKET_STAFF_RECIPIENTS=[*STAFF, "Alice@Example.TEST", "HELPDESK@example.test"])
def test_new_ticket_mails_each_staff_recipient_once_but_not_the_submitter(
    app: Flask, alice: Client, inbox: Inbox
) -> None:
    ticket_id = alice.submit("Printer is on fire", "Flames everywhere.")

    assert sorted(only_to(inbox)) == sorted(STAFF)
    for received in inbox.messages:
        assert received.subject == f"[Ticket #{ticket_id}] Printer is on fire"
        assert "Flames everywhere." in received.part("plain")
        assert "Flames everywhere." in received.part("html")


def test_new_ticket_mails_nobody_without_staff_recipients(alice: Client, inbox: Inbox) -> None:
    alice.submit()
    assert inbox.messages == []


@settings(FLASKET_STAFF_RECIPIENTS=STAFF)
def test_new_ticket_mail_lists_the_categories_in_both_parts(alice: Client, inbox: Inbox) -> None:
    alice.submit(urgency="Medium", application="Mobile app", topic="Feature request")

    received = one_mail_to(inbox, "helpdesk@example.test")
    for part in ("plain", "html"):
        content = received.part(part)
        assert "Urgency: Medium" in content, part
        assert "Application: Mobile app" in content, part
        assert "Topic: Feature request" in content, part


def test_reply_mails_the_author_but_not_the_replier_who_now_follows(
    app: Flask, alice: Client, bob: Client, inbox: Inbox
) -> None:
    ticket_id = alice.submit("Printer is on fire")
    assert inbox.messages == []

    reply = reply_id(bob.reply(ticket_id, "Have you tried water?"))

    assert only_to(inbox) == ["alice@example.test"]
    received = inbox.messages[0]
    assert received.subject == f"Re: [Ticket #{ticket_id}] Printer is on fire"
    assert "Have you tried water?" in received.part("plain")
    assert "Have you tried water?" in received.part("html")
    assert f"#reply-{reply}" in received.part("plain")
    follower_ids = {f.user_id for f in rows(app, ext_models(app).Follow, ticket_id=ticket_id)}
    assert follower_ids == {u.id for u in rows(app, User) if u.username in {"alice", "bob"}}

    inbox.messages.clear()
    reply_id(alice.reply(ticket_id, "Not yet."))
    assert only_to(inbox) == ["bob@example.test"]


def test_reply_mails_every_other_follower(
    followed_ticket: int, admin: Client, inbox: Inbox
) -> None:
    reply_id(admin.reply(followed_ticket, "We are on it."))

    assert sorted(only_to(inbox)) == [
        "alice@example.test",
        "bob@example.test",
        "carol@example.test",
    ]


@pytest.mark.parametrize(
    "written",
    [
        "ALICE@Example.Test",
        "  alice@example.test  ",
        "Alice <alice@EXAMPLE.test>",
        "alice@example.test.",
    ],
)
def test_followers_sharing_a_mailbox_however_written_get_one_mail(
    app: Flask, alice: Client, bob: Client, carol: Client, inbox: Inbox, written: str
) -> None:
    set_user(app, "carol", email=written)
    ticket_id = alice.submit()
    act(carol, ticket_id, "follow")

    reply_id(bob.reply(ticket_id))

    assert only_to(inbox) == ["alice@example.test"]


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("bob@Bücher.example.", "BOB@xn--bcher-kva.example", True),
        ("Bob <bob@bücher.example>", "bob@XN--BCHER-KVA.EXAMPLE", True),
        ("x@straße.example", "x@strasse.example", False),
        ("alice@example.test", "alice@example.test.org", False),
        ("alice+tickets@example.test", "alice@example.test", False),
    ],
)
def test_one_mailbox_key_for_every_way_of_writing_an_address(
    one: str, other: str, same: bool
) -> None:
    assert (notify.mailbox_key(one) == notify.mailbox_key(other)) is same


@pytest.mark.parametrize("address", ["", "   ", "carol-at-example.test"])
def test_follower_without_a_usable_address_is_skipped(
    app: Flask,
    alice: Client,
    bob: Client,
    carol: Client,
    inbox: Inbox,
    caplog: pytest.LogCaptureFixture,
    address: str,
) -> None:
    set_user(app, "carol", email=address)
    ticket_id = alice.submit()
    act(carol, ticket_id, "follow")

    reply_id(bob.reply(ticket_id))

    assert only_to(inbox) == ["alice@example.test"]
    assert errors(caplog) == []


def test_close_and_reopen_by_staff_mail_author_and_followers_but_not_staff(
    app: Flask, followed_ticket: int, admin: Client, inbox: Inbox
) -> None:
    act(admin, followed_ticket, "follow")
    everyone_but_admin = ["alice@example.test", "bob@example.test", "carol@example.test"]

    act(admin, followed_ticket, "close")
    assert sorted(only_to(inbox)) == everyone_but_admin
    for received in inbox.messages:
        assert received.subject == f"Re: [Ticket #{followed_ticket}] Printer is on fire"
        assert "admin closed" in received.part("plain")
        assert "admin closed" in received.part("html")

    inbox.messages.clear()
    act(admin, followed_ticket, "reopen")
    assert sorted(only_to(inbox)) == everyone_but_admin
    for received in inbox.messages:
        assert "admin reopened" in received.part("plain")
        assert "admin reopened" in received.part("html")


def test_closing_an_already_closed_ticket_mails_nobody(
    followed_ticket: int, alice: Client, inbox: Inbox
) -> None:
    act(alice, followed_ticket, "close")
    assert len(inbox.messages) == 2
    inbox.messages.clear()

    act(alice, followed_ticket, "close")

    assert inbox.messages == []


@settings(FLASKET_VISIBILITY="own")
def test_followers_who_may_no_longer_read_the_ticket_get_nothing(
    app: Flask, alice: Client, admin: Client, inbox: Inbox
) -> None:
    ticket_id = alice.submit()
    reply_id(admin.reply(ticket_id, "Looking into it."))
    insert_follow(app, ticket_id, "bob")
    inbox.messages.clear()

    act(admin, ticket_id, "close")
    assert only_to(inbox) == ["alice@example.test"]

    inbox.messages.clear()
    act(alice, ticket_id, "reopen")
    assert only_to(inbox) == ["admin@example.test"]

    set_user(app, "admin", is_admin=False)
    inbox.messages.clear()
    act(alice, ticket_id, "close")
    assert inbox.messages == []


@settings(FLASKET_STAFF_RECIPIENTS=STAFF)
def test_each_message_names_only_its_own_recipient(
    followed_ticket: int, admin: Client, inbox: Inbox
) -> None:
    reply_id(admin.reply(followed_ticket))
    act(admin, followed_ticket, "close")
    admin.submit("Another one")

    assert len(inbox.messages) == 3 + 3 + 2
    for received in inbox.messages:
        assert len(received.envelope_to) == 1
        assert received.message.get_all("To") == received.envelope_to
        assert received.message["Cc"] is None
        assert received.message["Bcc"] is None


@settings(FLASKET_STAFF_RECIPIENTS=STAFF, FLASKET_SUBJECT_PREFIX="[Helpdesk]")
def test_subjects_carry_the_prefix_number_and_title(
    alice: Client, bob: Client, inbox: Inbox
) -> None:
    ticket_id = alice.submit("Printer is on fire")
    assert {m.subject for m in inbox.messages} == {
        f"[Helpdesk] [Ticket #{ticket_id}] Printer is on fire"
    }

    inbox.messages.clear()
    reply_id(bob.reply(ticket_id))
    act(bob, ticket_id, "unfollow")
    act(alice, ticket_id, "close")
    act(bob, ticket_id, "follow")
    act(alice, ticket_id, "reopen")

    assert [m.subject for m in inbox.messages] == [
        f"Re: [Helpdesk] [Ticket #{ticket_id}] Printer is on fire",
        f"Re: [Helpdesk] [Ticket #{ticket_id}] Printer is on fire",
    ]


@pytest.mark.one_database
@settings(FLASKET_STAFF_RECIPIENTS=STAFF)
def test_html_part_escapes_what_users_wrote_and_text_part_keeps_it(
    alice: Client, bob: Client, inbox: Inbox
) -> None:
    title = 'Is <b>bold</b> & "safe"?'
    body = "<script>alert(1)</script>"
    ticket_id = alice.submit(title, body)

    created = one_mail_to(inbox, "helpdesk@example.test")
    assert created.subject == f"[Ticket #{ticket_id}] {title}"
    html = created.part("html")
    assert "<script>" not in html
    assert "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Is &lt;b&gt;bold&lt;/b&gt; &amp;" in html
    assert body in created.part("plain")
    assert title in created.part("plain")

    inbox.messages.clear()
    reply_id(bob.reply(ticket_id, '<img src=x onerror="alert(2)">'))
    html = one_mail_to(inbox, "alice@example.test").part("html")
    assert "<img" not in html
    assert "&lt;img src=x onerror=" in html


@settings(FLASKET_STAFF_RECIPIENTS=["admin@example.test"])
def test_link_in_new_ticket_mail_opens_the_ticket_for_the_recipient(
    alice: Client, admin: Client, inbox: Inbox
) -> None:
    ticket_id = alice.submit("Printer is on fire")

    received = one_mail_to(inbox, "admin@example.test")
    match = LINK.search(received.part("plain"))
    assert match, received.part("plain")
    assert match.group(1) == f"/ticket/{ticket_id}"
    assert f'href="http://host.test/ticket/{ticket_id}"' in received.part("html")

    page = admin.get(match.group(1))
    assert page.status_code == 200
    assert "Printer is on fire" in page.get_data(as_text=True)


def test_link_in_reply_mail_points_at_the_reply(alice: Client, bob: Client, inbox: Inbox) -> None:
    ticket_id = alice.submit("Printer is on fire")
    reply = reply_id(bob.reply(ticket_id, "Have you tried water?"))

    received = one_mail_to(inbox, "alice@example.test")
    url = f"http://host.test/ticket/{ticket_id}#reply-{reply}"
    assert url in received.part("plain")
    assert f'href="{url}"' in received.part("html")

    parts = urlsplit(url)
    page = alice.get(parts.path)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert f'id="{parts.fragment}"' in text
    assert "Have you tried water?" in text


@settings(FLASKET_STAFF_RECIPIENTS=STAFF)
def test_messages_thread_on_the_new_ticket_message_id(
    app: Flask, followed_ticket: int, alice: Client, admin: Client, inbox: Inbox
) -> None:
    second = alice.submit("Second ticket")
    created = one_mail_to(inbox, "oncall@example.test")
    root = root_of(app, second)
    assert ROOT_ID.fullmatch(root)
    assert header(created, "Message-ID") == root
    assert header(created, "In-Reply-To") is None

    inbox.messages.clear()
    reply_id(admin.reply(second))
    act(admin, second, "close")
    act(admin, second, "reopen")
    reply_id(admin.reply(followed_ticket))

    later = inbox.messages
    assert len(later) == 3 + 3
    tickets = [int(SUBJECT_NUMBER.findall(m.subject)[0]) for m in later]
    assert sorted(tickets) == sorted([second] * 3 + [followed_ticket] * 3)
    for received, ticket in zip(later, tickets, strict=True):
        expected_root = root_of(app, ticket)
        assert header(received, "In-Reply-To") == expected_root
        assert header(received, "References") == expected_root
        message_id = header(received, "Message-ID") or ""
        copy = COPY_ID.fullmatch(message_id)
        assert copy, message_id
        assert f"<flasket.{copy[1]}.{copy[2]}@{copy[3]}>" == expected_root
    ids = [header(m, "Message-ID") for m in later]
    assert len(set(ids)) == len(ids)


@settings(
    FLASKET_STAFF_RECIPIENTS=STAFF,
    FLASKET_MAIL_SENDER="Flasket Desk <desk@tickets.example.org>",
)
def test_mail_sender_setting_overrides_the_default_sender(
    app: Flask, alice: Client, bob: Client, inbox: Inbox
) -> None:
    ticket_id = alice.submit()
    reply_id(bob.reply(ticket_id))

    assert len(inbox.messages) == 3
    for received in inbox.messages:
        assert header(received, "From") == "Flasket Desk <desk@tickets.example.org>"
    created = one_mail_to(inbox, "helpdesk@example.test")
    assert header(created, "Message-ID") == root_of(app, ticket_id)
    replied = one_mail_to(inbox, "alice@example.test")
    assert header(replied, "In-Reply-To") == header(created, "Message-ID")


@pytest.mark.one_database
def test_default_sender_is_the_hosts_mail_default_sender(
    alice: Client, bob: Client, inbox: Inbox
) -> None:
    ticket_id = alice.submit()
    reply_id(bob.reply(ticket_id))

    received = one_mail_to(inbox, "alice@example.test")
    assert header(received, "From") == "Support <support@example.test>"


@settings(MAIL_PORT=CLOSED_PORT, FLASKET_STAFF_RECIPIENTS=STAFF)
def test_mail_server_down_never_fails_the_request(
    app: Flask, alice: Client, bob: Client, caplog: pytest.LogCaptureFixture
) -> None:
    models = ext_models(app)
    caplog.set_level(logging.ERROR, logger="flasket.notify")

    ticket_id = alice.submit("Printer is on fire")
    assert [t.title for t in rows(app, models.Ticket, id=ticket_id)] == ["Printer is on fire"]
    assert delivery.wait_for_idle(timeout=30)
    assert len(errors(caplog)) == 1

    response = bob.reply(ticket_id, "Have you tried water?")
    assert response.status_code == 303
    assert [r.body for r in rows(app, models.Reply, ticket_id=ticket_id)] == [
        "Have you tried water?"
    ]
    assert delivery.wait_for_idle(timeout=30)
    assert len(errors(caplog)) == 2

    act(alice, ticket_id, "close")
    assert [t.status for t in rows(app, models.Ticket, id=ticket_id)] == ["closed"]
    assert delivery.wait_for_idle(timeout=30)
    assert len(errors(caplog)) == 3


def test_refused_recipient_is_logged_and_the_others_still_get_mail(
    followed_ticket: int, admin: Client, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    inbox.refuse.add("bob@example.test")

    response = admin.reply(followed_ticket, "We are on it.")

    assert response.status_code == 303
    assert only_to(inbox) == ["alice@example.test", "carol@example.test"]
    logged = errors(caplog)
    assert len(logged) == 1
    assert "bob@example.test" in logged[0].getMessage()


@pytest.mark.parametrize("action", ["reply", "close"])
def test_no_mail_when_the_commit_fails(
    app: Flask,
    followed_ticket: int,
    admin: Client,
    inbox: Inbox,
    monkeypatch: pytest.MonkeyPatch,
    action: str,
) -> None:
    models = ext_models(app)

    def broken_commit(self: Any) -> None:
        raise sa.exc.OperationalError("COMMIT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(FlaskSession, "commit", broken_commit)
    if action == "reply":
        response = admin.reply(followed_ticket, "This reply is lost.")
    else:
        response = admin.post(f"/ticket/{followed_ticket}/close")
    monkeypatch.undo()

    # A database that fails is a 503 that says to try again (tests/test_after_commit.py).
    assert response.status_code == 503
    assert inbox.messages == []
    assert rows(app, models.Reply, ticket_id=followed_ticket) == []
    assert [t.status for t in rows(app, models.Ticket, id=followed_ticket)] == ["open"]


def test_mail_and_signal_come_after_the_commit(
    app: Flask, followed_ticket: int, admin: Client, inbox: Inbox
) -> None:
    events: list[str] = []

    def on_commit(session: Any) -> None:
        events.append("commit")

    def on_replied(sender: Flask, **kwargs: Any) -> None:
        events.append("signal")

    def on_mail(sender: Any, **extra: Any) -> None:
        # Flask-Mail 0.10 sends (app, message=message), 0.9.1 (message, app=app): not sender=app.
        if extra.get("app", sender) is app and extra.get("message", sender).send_to:
            events.append("mail")

    sa.event.listen(FlaskSession, "after_commit", on_commit)
    try:
        with (
            signals.ticket_replied.connected_to(on_replied, sender=app),
            email_dispatched.connected_to(on_mail),
        ):
            reply_id(admin.reply(followed_ticket))
            assert delivery.wait_for_idle(timeout=30)
    finally:
        sa.event.remove(FlaskSession, "after_commit", on_commit)

    # The request commits, hands the mail to delivery, then signals (delivery may be done first).
    assert events[0] == "commit"
    assert sorted(e for e in events if e != "commit") == ["mail", "mail", "mail", "signal"]


@dataclass
class Sent:
    """One Flasket signal as its receiver saw it while the request was running."""

    signal: str
    kwargs: dict[str, Any]
    user_type: type
    user: str
    ticket_id: int
    status: str
    reply_count: int
    reply: tuple[int, str] | None


@pytest.fixture
def sent_signals(app: Flask) -> Iterator[list[Sent]]:
    """Every Flasket signal the app sends, recorded by a receiver connected for ``app``."""
    seen: list[Sent] = []
    with ExitStack() as stack:
        for name in (
            "ticket_created",
            "ticket_replied",
            "ticket_closed",
            "ticket_reopened",
            "ticket_followed",
        ):

            def receiver(sender: Flask, _name: str = name, **kwargs: Any) -> None:
                assert sender is app
                ticket, user, reply = kwargs["ticket"], kwargs["user"], kwargs.get("reply")
                seen.append(
                    Sent(
                        signal=_name,
                        kwargs=kwargs,
                        user_type=type(user),
                        user=user.username,
                        ticket_id=ticket.id,
                        status=ticket.status,
                        reply_count=ticket.reply_count,
                        reply=(reply.id, reply.body) if reply is not None else None,
                    )
                )

            stack.enter_context(getattr(signals, name).connected_to(receiver, sender=app))
        yield seen


def test_signals_carry_the_app_and_the_models(
    app: Flask, alice: Client, bob: Client, sent_signals: list[Sent]
) -> None:
    models = ext_models(app)
    ticket_id = alice.submit("Printer is on fire")
    reply = reply_id(bob.reply(ticket_id, "Have you tried water?"))
    act(alice, ticket_id, "close")
    act(alice, ticket_id, "reopen")

    assert [(s.signal, s.user, s.status) for s in sent_signals] == [
        ("ticket_created", "alice", "open"),
        ("ticket_replied", "bob", "open"),
        ("ticket_closed", "alice", "closed"),
        ("ticket_reopened", "alice", "open"),
    ]
    for sent in sent_signals:
        expected = {"ticket", "user", "reply"} if sent.signal == "ticket_replied" else None
        assert set(sent.kwargs) == (expected or {"ticket", "user"}), sent.signal
        assert isinstance(sent.kwargs["ticket"], models.Ticket)
        assert sent.ticket_id == ticket_id
        # The user object itself: a receiver may keep it after the request has ended.
        assert sent.user_type is User, sent.signal
    replied = sent_signals[1]
    assert isinstance(replied.kwargs["reply"], models.Reply)
    assert replied.reply == (reply, "Have you tried water?")
    assert replied.reply_count == 1


def test_followed_signal_fires_on_a_new_follow_only(
    alice: Client, bob: Client, sent_signals: list[Sent]
) -> None:
    ticket_id = alice.submit()
    sent_signals.clear()

    act(bob, ticket_id, "follow")
    act(bob, ticket_id, "follow")

    assert [(s.signal, s.user, s.ticket_id) for s in sent_signals] == [
        ("ticket_followed", "bob", ticket_id)
    ]
    assert set(sent_signals[0].kwargs) == {"ticket", "user"}
    assert sent_signals[0].user_type is User


def test_state_changes_that_change_nothing_send_no_signal(
    alice: Client, sent_signals: list[Sent]
) -> None:
    ticket_id = alice.submit()
    act(alice, ticket_id, "reopen")
    act(alice, ticket_id, "close")
    act(alice, ticket_id, "close")

    assert [s.signal for s in sent_signals] == ["ticket_created", "ticket_closed"]


def test_unfollow_stops_mail(
    followed_ticket: int, alice: Client, bob: Client, admin: Client, inbox: Inbox
) -> None:
    act(bob, followed_ticket, "unfollow")
    act(alice, followed_ticket, "unfollow")

    reply_id(admin.reply(followed_ticket))

    assert only_to(inbox) == ["carol@example.test"]


def test_following_again_restarts_mail(
    followed_ticket: int, bob: Client, admin: Client, inbox: Inbox
) -> None:
    act(bob, followed_ticket, "unfollow")
    act(bob, followed_ticket, "follow")

    reply_id(admin.reply(followed_ticket))

    assert sorted(only_to(inbox)) == [
        "alice@example.test",
        "bob@example.test",
        "carol@example.test",
    ]


def test_a_reply_on_one_very_long_line_is_delivered_whole(
    app: Flask, alice: Client, bob: Client, inbox: Inbox
) -> None:
    ticket_id = alice.submit()
    body = "word" * 5000
    assert bob.reply(ticket_id, body).status_code == 303
    received = inbox.to("alice@example.test")
    assert len(received) == 1
    assert body in received[0].part("plain")
    assert body in received[0].part("html")
