from __future__ import annotations

import importlib
import re
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient

from flasket import delivery
from tests.databases import fresh_database, selected_backends, unreachable
from tests.hostapp import User, create_app, db

CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_DIR = ROOT / "examples" / "microblog_app"
FLASKET_TABLES = (
    "flasket_ticket",
    "flasket_reply",
    "flasket_follow",
    "flasket_ticket_category",
    "flasket_outbox_event",
    "flasket_outbox",
)


@pytest.fixture(scope="module")
def microblog() -> ModuleType:
    """The demo's package, imported from examples/ (which is not on sys.path)."""
    loaded = sys.modules.get("microblog")
    if loaded is None:
        with pytest.MonkeyPatch.context() as patch:
            patch.syspath_prepend(str(EXAMPLE_DIR))
            loaded = importlib.import_module("microblog")
    assert Path(loaded.__file__ or "").parent == EXAMPLE_DIR / "microblog", (
        f"another module called 'microblog' was imported: {loaded.__file__}"
    )
    return loaded


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
            self.received.append(Received(list(envelope.rcpt_tos), parsed))  # type: ignore[arg-type]
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


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(SMTPHandler(inbox), hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def inbox(smtp_server: tuple[Inbox, int]) -> Iterator[Inbox]:
    smtp_server[0].clear()
    yield smtp_server[0]
    smtp_server[0].clear()


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The host's extra config: override in a module, or parametrize (directly or indirectly)."""
    return dict(getattr(request, "param", {}))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per database server the run could not use, next to pytest's own summary."""
    for name in selected_backends():
        reason = unreachable(name)
        if reason:
            terminalreporter.write_line(f"SKIPPED every {name} test: {reason}", yellow=True)


@pytest.fixture(params=selected_backends())
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend of this test run: sqlite, postgresql or mariadb."""
    name: str = request.param
    reason = unreachable(name)
    if reason:
        pytest.skip(reason)
    return name


@pytest.fixture
def database_url(backend: str) -> Iterator[str]:
    """An empty database of the current backend that only this test uses."""
    with fresh_database(backend) as url:
        yield url


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


@pytest.fixture
def own_apps(database_url: str) -> Iterator[OwnApps]:
    """The database for apps a test builds itself; their engines close before it is dropped."""
    found = OwnApps(database_url)
    yield found
    found.dispose()


@pytest.fixture
def app(
    smtp_server: tuple[Inbox, int],
    inbox: Inbox,
    app_config: dict[str, Any],
    database_url: str,
) -> Iterator[Flask]:
    config = {"SQLALCHEMY_DATABASE_URI": database_url, **app_config}
    app = create_app(smtp_port=smtp_server[1], **config)
    with app.app_context():
        db.create_all()
        db.session.add_all(
            [
                User(username="alice", email="alice@example.test"),
                User(username="bob", email="bob@example.test"),
                User(username="carol", email="carol@example.test"),
                User(username="admin", email="admin@example.test", is_admin=True),
            ]
        )
        db.session.commit()
    yield app
    delivery.wait_for_idle(timeout=30)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


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


@pytest.fixture
def login(app: Flask) -> Any:
    def make(username: str | None) -> Client:
        return Client(app, username)

    return make


@pytest.fixture
def alice(login: Any) -> Client:
    return login("alice")


@pytest.fixture
def bob(login: Any) -> Client:
    return login("bob")


@pytest.fixture
def admin(login: Any) -> Client:
    return login("admin")


@pytest.fixture
def carol(login: Any) -> Client:
    return login("carol")


@pytest.fixture
def followed_ticket(alice: Client, bob: Client, carol: Client, inbox: Inbox) -> int:
    """Alice's ticket, followed by bob and carol; the inbox starts empty."""
    ticket_id = alice.submit("Printer is on fire")
    for client in (bob, carol):
        assert client.post(f"/ticket/{ticket_id}/follow").status_code == 303
    inbox.messages.clear()
    return ticket_id


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
