"""What the tests share that is not a fixture: the mail catcher, a logged-in client, row readers.

Fixtures live in tests/conftest.py and build on these; test modules import from here, never
from conftest.py (pytest loads conftest.py itself, and importing it a second time as a module
would make a second copy of its fixtures' state).
"""

from __future__ import annotations

import html
import re
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flasket import delivery
from tests.hostapp import User, db

CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_DIR = ROOT / "examples" / "microblog_app"
FLASKET_TABLES = (
    "flasket_ticket",
    "flasket_reply",
    "flasket_note",
    "flasket_ticket_change",
    "flasket_revision",
    "flasket_follow",
    "flasket_ticket_category",
    "flasket_outbox_event",
    "flasket_outbox",
)


@dataclass
class Received:
    envelope_to: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, subtype: str) -> str:
        found = self.message.get_body(preferencelist=(subtype,))
        assert found is not None, f"no text/{subtype} part"
        return str(found.get_content())


@dataclass
class Inbox:
    """What the loopback SMTP server received, and what it should refuse.

    Reading :attr:`messages` first waits for Flasket's background deliveries
    (``FLASKET_DELIVERY = "after_request"``), so a test sees the mail its
    requests caused without sleeping.
    """

    received: list[Received] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    defer: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def messages(self) -> list[Received]:
        assert delivery.wait_for_idle(timeout=30), "background delivery still running after 30s"
        return self.received

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such mailbox"
        if address in self.defer:
            return "450 4.2.1 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.received.append(Received(list(envelope.rcpt_tos), parsed))
        return "250 Message accepted"

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.envelope_to]

    def clear(self) -> None:
        self.messages.clear()
        self.refuse.clear()
        self.defer.clear()

    def message_ids(self) -> list[str]:
        return [" ".join(str(m.message["Message-ID"]).split()) for m in self.messages]


class SMTPHandler:
    """aiosmtpd's handler: passes each command on to the inbox (looked up per call)."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        return await self.inbox.handle_RCPT(server, session, envelope, address, options)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return await self.inbox.handle_DATA(server, session, envelope)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class OwnApps:
    """Apps a test builds itself on the test's database; their engines close at teardown."""

    database_url: str
    apps: list[Flask] = field(default_factory=list)

    def track(self, app: Flask) -> Flask:
        self.apps.append(app)
        return app

    def dispose(self) -> None:
        for app in self.apps:
            with app.app_context():
                database = app.extensions["sqlalchemy"]
                database.session.remove()
                database.engine.dispose()


class Client:
    """A logged-in person using the site through the test client."""

    def __init__(self, app: Flask, username: str | None) -> None:
        self.app = app
        self.http: FlaskClient = app.test_client()
        self.username = username
        if username is not None:
            response = self.http.post("/login", data={"username": username})
            assert response.status_code == 302

    def csrf(self) -> str:
        page = self.http.get("/ticket/submit")
        match = CSRF_FIELD.search(page.get_data(as_text=True))
        assert match, "no CSRF token on the submit page"
        return match.group(1)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.http.get(url, **kwargs)

    def post(
        self, url: str, data: dict[str, Any] | None = None, csrf: bool = True, **kwargs: Any
    ) -> Any:
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", self.csrf())
        return self.http.post(url, data=data, **kwargs)

    def submit(
        self, title: str = "Printer is on fire", body: str = "Flames everywhere.", **extra: Any
    ) -> int:
        data = {
            "title": title,
            "body": body,
            "urgency": "High",
            "application": "Website",
            "topic": "Bug report",
        }
        data.update(extra)
        response = self.post("/ticket/submit", data)
        assert response.status_code == 303, response.get_data(as_text=True)
        return int(response.headers["Location"].rsplit("/", 1)[1])

    def reply(self, ticket_id: int, body: str = "Any news?") -> Any:
        return self.post(f"/ticket/{ticket_id}", {"body": body})


@contextmanager
def counting_queries(app: Flask) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def rows(app: Flask, model: Any, **filters: Any) -> list[Any]:
    with app.app_context():
        return list(db.session.scalars(sa.select(model).filter_by(**filters)))


def ext_models(app: Flask) -> Any:
    return app.extensions["flasket"].models


# Readers and writers the test modules share.


def text(response: Any) -> str:
    """The response's body, HTML entities decoded."""
    return html.unescape(response.get_data(as_text=True))


def words(response: Any) -> str:
    """The page's text without its markup, white space collapsed."""
    return " ".join(re.sub(r"<[^>]+>", "", text(response)).split())


def user_id(app: Flask, name: str) -> int:
    """The primary key of the host user called ``name``."""
    with app.app_context():
        return int(db.session.scalars(sa.select(User.id).filter_by(username=name)).one())


def add_staff(app: Flask, name: str) -> None:
    """Add a host user called ``name`` whose ``is_admin`` is true (staff by default)."""
    with app.app_context():
        db.session.add(User(username=name, email=f"{name}@example.test", is_admin=True))
        db.session.commit()


def ticket_row(app: Flask, ticket_id: int) -> Any:
    """Ticket ``ticket_id`` as stored, read in its own app context."""
    (found,) = rows(app, ext_models(app).Ticket, id=ticket_id)
    return found


def elsewhere(call: Callable[[], Any]) -> Any:
    """Run ``call`` in another thread: a request there gets its own app context and session,
    as a request running at the same time as this code would."""
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(call()))
    thread.start()
    thread.join(timeout=60)
    assert results, "the other request failed or hung"
    return results[0]


def delete_with_orm(app: Flask, model: Any, key: int) -> None:
    """Delete a row as a host would through the ORM (its cascades run)."""
    with app.app_context():
        db.session.delete(db.session.get(model, key))
        db.session.commit()


def delete_in_bulk(app: Flask, model: Any, key: int) -> None:
    """Delete a row with a bulk DELETE statement (no ORM cascades)."""
    with app.app_context():
        db.session.execute(sa.delete(model).where(model.id == key))
        db.session.commit()


def delete_with_sql(app: Flask, model: Any, key: int) -> None:
    """Delete a row in plain SQL, as a host's script would."""
    with app.app_context():
        table = model.__table__.name
        db.session.execute(sa.text(f"DELETE FROM {table} WHERE id = :key"), {"key": key})  # noqa: S608
        db.session.commit()
