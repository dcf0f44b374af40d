"""Mail under faults: addresses, SMTP errors, leases, a database lost while recording.

The fast, deterministic parts of the fault experiments in ``bench/fault_experiments.py``:
each fault is produced on a real SMTP server on loopback (aiosmtpd), scripted per
recipient, or, for time itself, on a clock the test moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, message_from_string, policy
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import Flask
from flask_mail import email_dispatched

from flasket import delivery, smtp
from flasket import outbox as flasket_outbox
from flasket.config import LEASE_MARGIN
from tests.helpers import Client, Inbox, ext_models, free_port
from tests.hostapp import User, db
from tests.test_outbox import deliver_once, make_due, outbox, settings, use_smtp_port

# Addresses


@pytest.mark.parametrize(
    ("address", "sent", "utf8"),
    [
        ("bob@example.test", "bob@example.test", False),
        ("Bob.O'Neil+desk@Example.TEST", "Bob.O'Neil+desk@Example.TEST", False),
        ('"bob smith"@example.test', '"bob smith"@example.test', False),
        ('"a\\"b"@example.test', '"a\\"b"@example.test', False),
        ("bob@exämple.test", "bob@xn--exmple-cua.test", False),
        ("jörg@exämple.test", "jörg@xn--exmple-cua.test", True),
        ("用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v", True),
        ("admin@localhost", "admin@localhost", False),
        ("bob@[192.0.2.1]", "bob@[192.0.2.1]", False),
        ("bob@[IPv6:2001:db8::1]", "bob@[IPv6:2001:db8::1]", False),
        ("a" * 64 + "@example.test", "a" * 64 + "@example.test", False),
    ],
)
def test_an_address_that_can_be_sent_is_given_in_its_envelope_form(
    address: str, sent: str, utf8: bool
) -> None:
    assert smtp.envelope_address(address) == smtp.EnvelopeAddress(sent, utf8)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("bob", "has no @"),
        ("bob@", "nothing before or after @"),
        ("@example.test", "nothing before or after @"),
        ("a..b@example.test", "local part is malformed"),
        (".bob@example.test", "local part is malformed"),
        ("bob.@example.test", "local part is malformed"),
        ("bob smith@example.test", "local part is malformed"),
        ("bob\r\nBcc: eve@evil.test@example.test", "malformed"),
        ('"bob@example.test', "local part is malformed"),
        ("bob\x00@example.test", "local part is malformed"),
        ("a" * 65 + "@example.test", "longer than 64 octets"),
        ("ö" * 33 + "@example.test", "longer than 64 octets"),
        ("bob@exa_mple.test", "not a valid host name"),
        ("bob@-example.test", "not a valid host name"),
        ("bob@example..test", "not a valid host name"),
        ("bob@" + "a" * 64 + ".test", "not a valid host name"),
        ("bob@" + ".".join(["a" * 60] * 5), "not a valid host name"),
        ("bob@[999.0.0.1]", "not an IP address literal"),
        ("b" * 60 + "@" + ".".join(["a" * 60] * 4), "longer than 254 octets"),
    ],
)
def test_an_address_that_can_never_be_sent_is_refused_with_the_reason(
    address: str, why: str
) -> None:
    with pytest.raises(smtp.AddressError, match=why):
        smtp.envelope_address(address)


# Every error gets a deliberate verdict


def refused(code: int) -> smtplib.SMTPRecipientsRefused:
    return smtplib.SMTPRecipientsRefused({"bob@example.test": (code, b"no")})


@pytest.mark.parametrize(
    ("error", "connecting", "permanent", "scope"),
    [
        (ConnectionRefusedError(111, "Connection refused"), True, False, smtp.SERVER),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), True, False, smtp.SERVER),
        (smtplib.SMTPConnectError(554, b"go away"), True, False, smtp.SERVER),
        (TimeoutError("timed out"), True, False, smtp.SERVER),
        (refused(550), False, True, smtp.MESSAGE),
        (refused(553), False, True, smtp.MESSAGE),
        (refused(450), False, False, smtp.MESSAGE),
        (refused(452), False, False, smtp.MESSAGE),
        (refused(421), False, False, smtp.CONNECTION),
        (smtplib.SMTPSenderRefused(550, b"not yours", "d@x.test"), False, False, smtp.SERVER),
        (smtplib.SMTPSenderRefused(451, b"try later", "d@x.test"), False, False, smtp.SERVER),
        (smtplib.SMTPDataError(554, b"spam"), False, True, smtp.MESSAGE),
        (smtplib.SMTPDataError(552, b"too big"), False, True, smtp.MESSAGE),
        (smtplib.SMTPDataError(451, b"local error"), False, False, smtp.MESSAGE),
        (smtplib.SMTPResponseException(421, b"closing"), False, False, smtp.CONNECTION),
        (smtplib.SMTPServerDisconnected("gone"), False, False, smtp.CONNECTION),
        (smtp.DeadlinePassed("no answer within 30 s"), False, False, smtp.CONNECTION),
        (ConnectionResetError(104, "reset"), False, False, smtp.CONNECTION),
        (TimeoutError("timed out"), False, False, smtp.CONNECTION),
        (smtp.AddressError("bob: has no @"), False, True, smtp.MESSAGE),
        (UnicodeEncodeError("ascii", "é", 0, 1, "no"), False, False, smtp.MESSAGE),
        (RuntimeError("something else"), False, False, smtp.MESSAGE),
    ],
)
def test_every_error_is_classified_permanent_or_temporary_with_its_scope(
    error: BaseException, connecting: bool, permanent: bool, scope: str
) -> None:
    failure = smtp.verdict(error, connecting=connecting)
    assert (failure.permanent, failure.scope) == (permanent, scope)
    assert failure.reason


# A scripted SMTP server


@dataclass
class Scripted:
    """An SMTP handler that answers per recipient as told, and records what it accepted."""

    received: list[tuple[str, list[str], Any]] = field(default_factory=list)
    rcpt: dict[str, str] = field(default_factory=dict)
    hang: set[str] = field(default_factory=set)
    mail_answer: str | None = None
    data_answer: str | None = None

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.mail_answer:
            return self.mail_answer
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.hang:
            await asyncio.sleep(30)
        if address in self.rcpt:
            return self.rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_answer:
            return self.data_answer
        if "SMTPUTF8" in envelope.mail_options:
            # RFC 6532: header fields in UTF-8, read as a mail client reads them.
            parsed = message_from_string(envelope.content.decode("utf-8"), policy=policy.default)
        else:
            parsed = message_from_bytes(envelope.content, policy=policy.default)
        self.received.append((envelope.rcpt_tos[0], list(envelope.mail_options), parsed))
        return "250 Message accepted"

    def to(self) -> list[str]:
        return sorted(to for to, _, _ in self.received)


@pytest.fixture
def scripted(request: pytest.FixtureRequest) -> Iterator[tuple[Scripted, int]]:
    """A scripted server; ``@pytest.mark.smtputf8`` makes it offer SMTPUTF8 (RFC 6531)."""
    handler = Scripted()
    port = free_port()
    utf8 = request.node.get_closest_marker("smtputf8") is not None
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=utf8)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def server(app: Flask, scripted: tuple[Scripted, int]) -> Scripted:
    """The scripted server, as the app's mail server."""
    handler, port = scripted
    use_smtp_port(app, port)
    return handler


def add_follower(app: Flask, ticket_id: int, username: str, email: str) -> None:
    models = ext_models(app)
    with app.app_context():
        user = User(username=username, email=email)
        db.session.add(user)
        db.session.flush()
        now = datetime.now(timezone.utc)
        db.session.add(models.Follow(user_id=user.id, ticket_id=ticket_id, created_at=now))
        models.Ticket.query.filter_by(id=ticket_id).update(
            {models.Ticket.follower_count: models.Ticket.follower_count + 1}
        )
        db.session.commit()


WORKER = {"FLASKET_DELIVERY": "worker"}


@settings(**WORKER)
@pytest.mark.smtputf8
def test_an_internationalised_address_is_sent_with_smtputf8_when_the_server_offers_it(
    app: Flask, followed_ticket: int, admin: Client, server: Scripted
) -> None:
    add_follower(app, followed_ticket, "jorg", "jörg@exämple.test")
    admin.reply(followed_ticket, "Fixed.")
    deliver_once(app)

    assert "jörg@xn--exmple-cua.test" in server.to()
    [(_, options, message)] = [r for r in server.received if r[0].startswith("jörg")]
    assert "SMTPUTF8" in options
    assert message["To"].addresses[0].addr_spec == "jörg@xn--exmple-cua.test"
    plain = [r for r in server.received if not r[0].startswith("jörg")]
    assert plain
    assert all("SMTPUTF8" not in options for _, options, _ in plain)
    assert {row.status for row in outbox(app)} == {"sent"}


@settings(**WORKER)
def test_an_internationalised_address_fails_for_good_at_once_without_smtputf8(
    app: Flask, followed_ticket: int, admin: Client, server: Scripted
) -> None:
    add_follower(app, followed_ticket, "jorg", "jörg@example.test")
    admin.reply(followed_ticket, "Fixed.")
    deliver_once(app)
    deliver_once(app)

    assert server.to() == ["alice@example.test", "bob@example.test", "carol@example.test"]
    [row] = outbox(app, recipient="jörg@example.test")
    assert (row.status, row.attempts) == ("failed", 1)
    assert "SMTPUTF8 (RFC 6531)" in (row.last_error or "")
    assert "does not offer it" in (row.last_error or "")


@settings(**WORKER)
@pytest.mark.parametrize("address", ["a..b@example.test", "bob@exa_mple.test", "x" * 70 + "@e.t"])
def test_an_address_that_can_never_be_sent_fails_once_with_a_clear_error(
    app: Flask,
    followed_ticket: int,
    admin: Client,
    server: Scripted,
    address: str,
) -> None:
    add_follower(app, followed_ticket, "odd", address)
    admin.reply(followed_ticket, "Fixed.")
    deliver_once(app)
    deliver_once(app)

    assert server.to() == ["alice@example.test", "bob@example.test", "carol@example.test"]
    [row] = outbox(app, recipient=address)
    assert (row.status, row.attempts) == ("failed", 1)
    assert (row.last_error or "").startswith(f"undeliverable address: {address!r}")


@settings(**WORKER)
def test_a_refused_sender_is_retried_for_every_row_and_never_failed_for_good(
    app: Flask, followed_ticket: int, admin: Client, server: Scripted
) -> None:
    server.mail_answer = "553 5.7.1 Sender address rejected: not owned by you"
    admin.reply(followed_ticket, "Fixed.")
    deliver_once(app)

    rows = outbox(app)
    assert [(row.status, row.attempts) for row in rows] == [("pending", 1)] * 3
    assert all("FLASKET_MAIL_SENDER" in (row.last_error or "") for row in rows)
    assert all("553" in (row.last_error or "") for row in rows)

    server.mail_answer = None
    make_due(app)
    deliver_once(app)
    assert server.to() == ["alice@example.test", "bob@example.test", "carol@example.test"]


@settings(**WORKER)
@pytest.mark.parametrize(
    ("answer", "status"),
    [("554 5.7.1 Message rejected as spam", "failed"), ("451 4.3.0 Try again", "pending")],
)
def test_refused_data_is_permanent_on_5xx_and_retried_on_4xx(
    app: Flask,
    followed_ticket: int,
    admin: Client,
    server: Scripted,
    answer: str,
    status: str,
) -> None:
    server.data_answer = answer
    admin.reply(followed_ticket, "Fixed.")
    deliver_once(app)
    assert {(row.status, row.attempts, row.last_error) for row in outbox(app)} == {
        (status, 1, f"SMTPDataError: {answer}")
    }


#: The deadline of the tests where one recipient's server hangs and the others' mail must
#: go out on a new connection: long enough for that connection on a loaded machine (at 1 s,
#: a busy CI run saw the reconnection itself miss it).
HANG_TIMEOUT = 3


@settings(
    FLASKET_DELIVERY="worker",
    FLASKET_DELIVERY_RETRY_BASE=0,
    FLASKET_SMTP_TIMEOUT=HANG_TIMEOUT,
    FLASKET_DELIVERY_LEASE=60,
)
def test_a_recipient_whose_server_hangs_costs_one_deadline_and_the_others_go_out(
    app: Flask, followed_ticket: int, admin: Client, server: Scripted
) -> None:
    """RCPT for one address never answers: that message is cut at FLASKET_SMTP_TIMEOUT and
    retried later; a new connection carries the rest of the batch in the same run."""
    server.hang.add("bob@example.test")
    admin.reply(followed_ticket, "Fixed.")
    with app.app_context():
        delivery.fan_out()
        rows = flasket_outbox.claim(10)
        order = [row.recipient for row in rows]
        outcome = delivery._send(rows)

    assert order.index("bob@example.test") < len(order) - 1, "bob is not the last one"
    assert (outcome.sent, outcome.retrying, outcome.released) == (2, 1, 0)
    assert server.to() == ["alice@example.test", "carol@example.test"]
    [bob] = outbox(app, recipient="bob@example.test")
    assert (bob.status, bob.attempts) == ("pending", 1)
    # Whichever comes first: the deadline, or the socket timeout of the read.
    assert re.fullmatch(
        rf"connection lost: (DeadlinePassed: no answer within {HANG_TIMEOUT} s"
        r"|SMTPServerDisconnected: .*timed out)",
        bob.last_error or "",
    )


class Trickler:
    """A server that sends its greeting one continuation line every 0.2 s, for ever: no read
    ever times out, so only a deadline on the whole step ends it."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            connection, _ = self.listener.accept()
            with connection:
                while not self.stop.wait(0.2):
                    connection.sendall(b"220-still here\r\n")

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@settings(FLASKET_DELIVERY="worker", FLASKET_SMTP_TIMEOUT=1, FLASKET_DELIVERY_LEASE=60)
def test_a_server_that_trickles_its_greeting_is_cut_off_at_the_deadline(
    app: Flask, followed_ticket: int, admin: Client
) -> None:
    trickler = Trickler()
    use_smtp_port(app, trickler.port)
    admin.reply(followed_ticket, "Fixed.")
    try:
        with app.app_context():
            delivery.fan_out()
            outcome = delivery._send(flasket_outbox.claim(10))
    finally:
        trickler.close()
    assert (outcome.sent, outcome.retrying) == (0, 3)
    assert {row.last_error for row in outbox(app)} == {
        "could not reach the mail server: DeadlinePassed: no answer within 1 s"
    }


# Leases: a message starts only while the lease outlasts it


class Clock:
    """``delivery.utcnow`` and ``outbox.utcnow``, moved by the test; a slow server is time
    passing per message."""

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@settings(FLASKET_DELIVERY="worker", FLASKET_SMTP_TIMEOUT=3, FLASKET_DELIVERY_LEASE=20)
def test_each_message_starts_only_while_the_lease_outlasts_its_deadline(
    app: Flask,
    followed_ticket: int,
    admin: Client,
    inbox: Inbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The issue's case, on a clock: a lease of 20 s and a server taking 3 s per message.
    The worker connects and sends while 3 s + the margin are left, releases the rest, and
    the released rows go to the next claim, each mail exactly once."""
    clock = Clock()
    monkeypatch.setattr(delivery, "utcnow", clock)
    monkeypatch.setattr(flasket_outbox, "utcnow", clock)
    for n in range(3):
        add_follower(app, followed_ticket, f"extra{n}", f"extra{n}@example.test")
    real_send = smtp.SMTPConnection.send
    started: list[float] = []

    def slow_send(self: smtp.SMTPConnection, message: Any) -> None:
        started.append((claimed[0].until - clock.now).total_seconds())
        clock.now += timedelta(seconds=3)
        real_send(self, message)

    monkeypatch.setattr(smtp.SMTPConnection, "send", slow_send)
    admin.reply(followed_ticket, "Fixed.")
    with app.app_context():
        assert len(delivery.fan_out()) == 6
        claimed = flasket_outbox.claim(10)
        first = delivery._send(claimed)

    assert started == [20, 17, 14, 11, 8]
    assert all(left >= 3 + LEASE_MARGIN for left in started)
    assert (first.sent, first.released, first.overtaken) == (5, 1, 0)
    with app.app_context():
        second = delivery.deliver_due()
    assert (second.sent, second.released) == (1, 0)
    assert len(inbox.messages) == 6
    assert len(set(inbox.message_ids())) == 6
    assert {(row.status, row.attempts) for row in outbox(app)} == {("sent", 1)}


@settings(FLASKET_DELIVERY="worker")
def test_an_outcome_is_recorded_only_by_the_claim_that_holds_the_row(
    app: Flask, followed_ticket: int, admin: Client, inbox: Inbox
) -> None:
    """Compare-and-set: if another worker holds the row by the time this one records its
    outcome, nothing is overwritten and the mail counts as overtaken, not sent."""
    admin.reply(followed_ticket, "Fixed.")
    table = ext_models(app).Outbox.__table__
    with app.app_context():
        delivery.fan_out()
        rows = flasket_outbox.claim(10)
        db.session.execute(
            sa.update(table).where(table.c.id == rows[0].id).values(claimed_by="another:worker")
        )
        db.session.commit()
        outcome = delivery._send(rows)
    assert (outcome.sent, outcome.overtaken) == (2, 1)
    taken = outbox(app)[0]
    assert (taken.status, taken.claimed_by, taken.attempts) == ("pending", "another:worker", 0)


@settings(FLASKET_DELIVERY="worker")
def test_a_database_lost_while_recording_owes_the_outcome_and_sends_nothing_twice(
    app: Flask,
    followed_ticket: int,
    admin: Client,
    inbox: Inbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second "sent" cannot be written: the run stops; that outcome and the release of
    the untried row are kept, and recorded before the next run claims anything."""
    admin.reply(followed_ticket, "Fixed.")
    real_apply = flasket_outbox._apply
    calls = 0

    def failing_apply(row: flasket_outbox.Claimed, values: dict[str, Any]) -> bool:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise sa.exc.OperationalError("UPDATE", {}, Exception("server closed the connection"))
        return real_apply(row, values)

    monkeypatch.setattr(flasket_outbox, "_apply", failing_apply)
    with app.app_context():
        delivery.fan_out()
        rows = flasket_outbox.claim(10)
        with pytest.raises(sa.exc.OperationalError):
            delivery._send(rows)
        assert len(flasket_outbox.ledger()) == 2
    assert len(inbox.messages) == 2
    second, third = outbox(app)[1:]
    assert second.status == third.status == "pending"
    assert second.claimed_by == third.claimed_by == rows[0].token

    with app.app_context():
        outcome = delivery.deliver_due()
        assert len(flasket_outbox.ledger()) == 0
    assert outcome.sent == 1
    assert len(inbox.messages) == 3
    assert len(set(inbox.message_ids())) == 3
    assert [(row.status, row.claimed_by) for row in outbox(app)] == [("sent", None)] * 3


# Fairness: new mail does not wait behind a backlog


@settings(FLASKET_DELIVERY="worker", FLASKET_DELIVERY_BATCH=3)
def test_new_events_are_fanned_out_and_sent_before_a_backlog_of_retries(
    app: Flask, followed_ticket: int, admin: Client, alice: Client, inbox: Inbox
) -> None:
    for n in range(6):
        add_follower(app, followed_ticket, f"extra{n}", f"extra{n}@example.test")
    admin.reply(followed_ticket, "First.")
    table = ext_models(app).Outbox.__table__
    with app.app_context():
        delivery.fan_out()
        # Every copy of the first reply failed once and is due again: a backlog of retries.
        db.session.execute(
            sa.update(table).values(
                attempts=1, next_attempt_at=datetime.now(timezone.utc) - timedelta(hours=1)
            )
        )
        db.session.commit()
    backlog = {row.id for row in outbox(app)}
    assert len(backlog) == 9

    alice.reply(followed_ticket, "Second.")
    with app.app_context():
        outcome = delivery.deliver_due(max_batches=1)
    assert outcome.sent == 3
    new_rows = [row for row in outbox(app) if row.id not in backlog]
    assert len(new_rows) == 9, "the new event was fanned out before the batch"
    first_batch = {row.id for row in outbox(app) if row.status == "sent"}
    assert first_batch <= {row.id for row in new_rows}, "new mail went first"


# Findings of the review: TLS, signals, limits, answers at MAIL FROM


TLS = Path(__file__).parent / "tls"


def server_context() -> ssl.SSLContext:
    """The test server's TLS (a self-signed certificate in tests/tls, valid until 2126)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(TLS / "cert.pem", TLS / "key.pem")
    return context


@settings(FLASKET_DELIVERY="worker")
@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_mail_goes_out_over_starttls_and_implicit_tls(
    app: Flask, followed_ticket: int, admin: Client, mode: str
) -> None:
    handler = Scripted()
    port = free_port()
    if mode == "ssl":
        controller = Controller(
            handler, hostname="127.0.0.1", port=port, ssl_context=server_context()
        )
    else:
        controller = Controller(
            handler,
            hostname="127.0.0.1",
            port=port,
            tls_context=server_context(),
            require_starttls=True,
        )
    controller.start()
    try:
        use_smtp_port(app, port)
        mail = app.extensions["mail"]
        mail.use_ssl, mail.use_tls = mode == "ssl", mode == "starttls"
        admin.reply(followed_ticket, "Fixed.")
        with app.app_context():
            delivery.fan_out()
            outcome = delivery._send(flasket_outbox.claim(10))
    finally:
        controller.stop()
    assert (outcome.sent, outcome.retrying) == (3, 0), outbox(app)[0].last_error
    assert handler.to() == ["alice@example.test", "bob@example.test", "carol@example.test"]


@settings(FLASKET_DELIVERY="worker")
def test_a_failing_email_dispatched_receiver_does_not_make_a_sent_mail_go_again(
    app: Flask, followed_ticket: int, admin: Client, server: Scripted
) -> None:

    def broken_receiver(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the audit log is down")

    email_dispatched.connect(broken_receiver)
    try:
        admin.reply(followed_ticket, "Fixed.")
        deliver_once(app)
        make_due(app)
        deliver_once(app)
    finally:
        email_dispatched.disconnect(broken_receiver)
    assert server.to() == ["alice@example.test", "bob@example.test", "carol@example.test"]
    assert {(row.status, row.attempts) for row in outbox(app)} == {("sent", 1)}


@settings(FLASKET_DELIVERY="worker")
def test_a_message_larger_than_the_servers_size_fails_alone(
    app: Flask, followed_ticket: int, admin: Client
) -> None:
    """RFC 1870: the server announces SIZE; a larger message fails for good, at once, and
    the rest of the batch still goes out."""
    handler = Scripted()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, data_size_limit=6000)
    controller.start()
    try:
        use_smtp_port(app, port)
        admin.reply(followed_ticket, "x " * 5000)
        admin.reply(followed_ticket, "Short.")
        deliver_once(app)
    finally:
        controller.stop()
    rows = outbox(app)
    assert {(row.status, row.attempts) for row in rows[:3]} == {("failed", 1)}
    assert all("the mail server takes at most 6000" in (row.last_error or "") for row in rows[:3])
    assert {row.status for row in rows[3:]} == {"sent"}
    assert len(handler.received) == 3


@settings(FLASKET_DELIVERY="worker", FLASKET_MAIL_SENDER="hilfe-büro@example.test")
def test_a_sender_that_needs_smtputf8_on_a_server_without_it_is_retried_not_failed(
    app: Flask, followed_ticket: int, admin: Client, server: Scripted
) -> None:
    admin.reply(followed_ticket, "Fixed.")
    deliver_once(app)
    rows = outbox(app)
    assert {(row.status, row.attempts) for row in rows} == {("pending", 1)}
    assert all("refused the sender" in (row.last_error or "") for row in rows)
    assert server.received == []


@settings(FLASKET_DELIVERY="worker")
def test_mail_max_emails_opens_a_new_connection_after_that_many(
    app: Flask, followed_ticket: int, admin: Client, server: Scripted
) -> None:
    app.extensions["mail"].max_emails = 2
    opened = 0
    real_open = smtp.SMTPConnection.open

    def counting_open(self: smtp.SMTPConnection) -> None:
        nonlocal opened
        opened += 1
        real_open(self)

    admin.reply(followed_ticket, "Fixed.")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(smtp.SMTPConnection, "open", counting_open)
        deliver_once(app)
    assert opened == 2
    assert len(server.received) == 3


@settings(FLASKET_DELIVERY="worker")
@pytest.mark.parametrize(
    ("address", "envelope"),
    [
        ("carol.fqdn@example.test.", "carol.fqdn@example.test"),
        ('"bob smith"@example.test', '"bob smith"@example.test'),
        ("dave@Exämple.TEST", "dave@xn--exmple-cua.TEST"),
    ],
)
def test_unusual_but_valid_addresses_are_delivered(
    app: Flask,
    followed_ticket: int,
    admin: Client,
    server: Scripted,
    address: str,
    envelope: str,
) -> None:
    add_follower(app, followed_ticket, "unusual", address)
    admin.reply(followed_ticket, "Fixed.")
    deliver_once(app)
    assert envelope in server.to()
    assert {row.status for row in outbox(app)} == {"sent"}


@pytest.mark.parametrize(
    ("error", "permanent", "scope"),
    [
        (smtplib.SMTPSenderRefused(421, b"too many messages", "d@x.test"), False, smtp.CONNECTION),
        (smtplib.SMTPSenderRefused(552, b"message too large", "d@x.test"), True, smtp.MESSAGE),
        (refused(552), False, smtp.MESSAGE),
        (
            smtplib.SMTPRecipientsRefused({"a@x.test": (554, b"5.7.1 Relay access denied")}),
            False,
            smtp.SERVER,
        ),
        (smtplib.SMTPResponseException(500, "Line too long."), False, smtp.CONNECTION),
        (smtp.MessageError("the message cannot be encoded"), True, smtp.MESSAGE),
        (ValueError("Read on closed or unwrapped SSL socket."), False, smtp.MESSAGE),
    ],
)
def test_answers_that_are_not_the_messages_fault_are_not_permanent(
    error: BaseException, permanent: bool, scope: str
) -> None:
    failure = smtp.verdict(error)
    assert (failure.permanent, failure.scope) == (permanent, scope)


def test_the_ledger_forgets_only_the_entry_it_recorded() -> None:
    """Two threads of one process: an entry owed for a row after another was read stays."""
    ledger = flasket_outbox.Ledger()
    now = datetime.now(timezone.utc)
    first = flasket_outbox.Claimed(1, "a@x.test", "s", "t", "h", "<m@x>", {}, 0, "first", now)
    second = flasket_outbox.Claimed(1, "a@x.test", "s", "t", "h", "<m@x>", {}, 0, "second", now)
    ledger.owe(first, None)
    ledger.owe(second, {"status": "sent"})
    assert len(ledger) == 1
    ledger.owe(first, None)  # a release never replaces an owed outcome
    assert ledger._owed[1][0] is second


@settings(
    FLASKET_DELIVERY="worker",
    FLASKET_DELIVERY_RETRY_BASE=60,
    FLASKET_SMTP_TIMEOUT=HANG_TIMEOUT,
    FLASKET_DELIVERY_LEASE=60,
)
def test_a_hanging_recipient_costs_one_deadline_not_one_per_message(
    app: Flask, followed_ticket: int, admin: Client, server: Scripted
) -> None:
    """Three events, so three messages to bob: only the first waits for the deadline; the
    others to him count an attempt at once and wait for their retry, and everyone else's
    mail goes out in the same run."""
    server.hang.add("bob@example.test")
    for text in ("One.", "Two.", "Three."):
        admin.reply(followed_ticket, text)
    tried = 0
    real_send = smtp.SMTPConnection.send

    def counting_send(self: smtp.SMTPConnection, message: Any) -> None:
        nonlocal tried
        if message.recipients == ["bob@example.test"]:
            tried += 1
        real_send(self, message)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(smtp.SMTPConnection, "send", counting_send)
        with app.app_context():
            outcome = delivery.deliver_due()
    assert tried == 1
    assert (outcome.sent, outcome.retrying, outcome.released) == (6, 3, 0)
    assert len(server.received) == 6
    bob = outbox(app, recipient="bob@example.test")
    assert {(row.status, row.attempts) for row in bob} == {("pending", 1)}
    assert sum((row.last_error or "").startswith("not tried: ") for row in bob) == 2
