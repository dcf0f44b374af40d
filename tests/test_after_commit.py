"""A committed change answers success whatever happens next; a failing database gets a 503 page.

The database fails for real: on PostgreSQL and MariaDB the app's connections are killed from
another connection (``pg_terminate_backend``, ``KILL``) and new ones are sent to a port nobody
listens on; on SQLite, whose in-memory database cannot be cut off, the driver's own error is
raised when a statement runs.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy.session import Session as FlaskSession

from flasket import signals
from tests.databases import server_url
from tests.helpers import Client, ext_models, free_port, rows
from tests.hostapp import User, db

UNAVAILABLE = "The ticket system cannot reach its database just now."
FLASKET_PAGE = '<div class="flasket" lang="en" dir="ltr">'


class Outage:
    """Makes the test app's database fail, and come back."""

    def __init__(self, app: Flask, backend: str) -> None:
        self.app, self.backend = app, backend
        with app.app_context():
            self.engine: sa.Engine = db.engine
        self._forget_connections()
        self.server_ids: list[int] = []
        self.refusing = False
        #: SQLite: statements containing this fail once; "" fails every statement.
        self.failing: str | None = None
        #: Called once, after the commit of the request's transaction.
        self.armed: list[Callable[[], None]] = []
        #: Called once, before the first statement containing the key runs.
        self.on_statement: dict[str, Callable[[], None]] = {}
        #: The driver's error the first statement containing the key raises.
        self.raise_on: dict[str, Exception] = {}
        sa.event.listen(self.engine, "connect", self._connected)
        sa.event.listen(self.engine, "do_connect", self._connecting)
        sa.event.listen(self.engine, "before_cursor_execute", self._before_statement)
        sa.event.listen(self.engine, "do_execute", self._executing)
        sa.event.listen(FlaskSession, "after_commit", self._committed)

    def close(self) -> None:
        sa.event.remove(FlaskSession, "after_commit", self._committed)
        sa.event.remove(self.engine, "do_execute", self._executing)
        sa.event.remove(self.engine, "before_cursor_execute", self._before_statement)
        sa.event.remove(self.engine, "do_connect", self._connecting)
        sa.event.remove(self.engine, "connect", self._connected)

    def _connected(self, dbapi_connection: Any, record: Any) -> None:
        if self.backend == "postgresql":
            self.server_ids.append(dbapi_connection.info.backend_pid)
        elif self.backend == "mariadb":
            self.server_ids.append(dbapi_connection.thread_id())

    def _connecting(self, dialect: Any, record: Any, cargs: Any, cparams: Any) -> None:
        if self.refusing:
            cparams.update(host="127.0.0.1", port=free_port(), connect_timeout=2)

    def _executing(self, cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        """Runs where the driver's execute would: its errors are wrapped as the driver's are."""
        if self.failing is not None and self.failing in statement:
            if self.failing:
                self.failing = None
            raise sqlite3.OperationalError("disk I/O error")
        for match, error in list(self.raise_on.items()):
            if match in statement:
                del self.raise_on[match]
                raise error
        return False

    def _before_statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        for match, start in list(self.on_statement.items()):
            if match in statement:
                del self.on_statement[match]
                start()

    def _committed(self, session: Any) -> None:
        while self.armed:
            self.armed.pop()()

    def kill_connections(self) -> None:
        """Kill the server side of every connection the app has (SQLite: fail one statement)."""
        if self.backend == "sqlite":
            self.failing = "SELECT"
            return
        admin = sa.create_engine(server_url(self.backend), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                for server_id in self.server_ids:
                    if self.backend == "postgresql":
                        connection.execute(
                            sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": server_id}
                        )
                    else:
                        with contextlib.suppress(sa.exc.OperationalError):  # closed already
                            connection.execute(sa.text(f"KILL {int(server_id)}"))
        finally:
            admin.dispose()
        self.server_ids.clear()

    def start(self) -> None:
        """The database goes away: connections die, new ones are refused, statements fail."""
        self.refusing = True
        self.kill_connections()
        if self.backend == "sqlite":
            self.failing = ""

    def end(self) -> None:
        self.refusing, self.failing = False, None
        self._forget_connections()

    def _forget_connections(self) -> None:
        """Close the pooled connections (killed ones too); in-memory SQLite keeps its one."""
        if self.backend != "sqlite":
            self.engine.dispose()


@pytest.fixture
def app_config() -> dict[str, Any]:
    """No delivery threads racing the outage: the hook notes what was handed to delivery."""
    handed.clear()
    return {
        "FLASKET_DELIVERY": "hook",
        "FLASKET_DELIVERY_HOOK": handed.append,
        "FLASKET_STAFF_RECIPIENTS": ["desk@example.test"],
    }


handed: list[list[int]] = []


@pytest.fixture
def outage(app: Flask, backend: str) -> Iterator[Outage]:
    found = Outage(app, backend)
    yield found
    found.end()
    found.close()


def csrf_of(client: Client, url: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get(url).text)
    assert match
    return match.group(1)


TICKET_FORM = {
    "title": "Printer",
    "body": "Flames.",
    "urgency": "High",
    "application": "Website",
    "topic": "Bug report",
}


def act_and_lose_the_database(
    outage: Outage, client: Client, url: str, data: dict[str, str]
) -> Any:
    """POST ``url``; the database goes away the moment the request's transaction commits."""
    form = {"csrf_token": csrf_of(client, "/ticket/submit"), **data}
    outage.armed.append(outage.start)
    try:
        return client.http.post(url, data=form)
    finally:
        outage.armed.clear()
        outage.end()


def test_a_ticket_submitted_just_before_the_database_went_away_answers_success(
    app: Flask, alice: Client, outage: Outage
) -> None:
    response = act_and_lose_the_database(outage, alice, "/ticket/submit", TICKET_FORM)

    assert response.status_code == 303
    [ticket] = rows(app, ext_models(app).Ticket)
    assert response.headers["Location"].endswith(f"/ticket/{ticket.id}")
    page = alice.get(response.headers["Location"]).text
    assert f"Ticket #{ticket.id} submitted." in page
    assert len(handed) == 1


def test_a_reply_committed_just_before_the_database_went_away_answers_success(
    app: Flask, alice: Client, bob: Client, outage: Outage
) -> None:
    ticket_id = alice.submit()
    handed.clear()

    response = act_and_lose_the_database(outage, bob, f"/ticket/{ticket_id}", {"body": "Hi"})

    assert response.status_code == 303
    [reply] = rows(app, ext_models(app).Reply, ticket_id=ticket_id)
    assert response.headers["Location"].endswith(f"/ticket/{ticket_id}#reply-{reply.id}")
    assert "Your reply was posted." in bob.get(response.headers["Location"]).text
    assert [t.reply_count for t in rows(app, ext_models(app).Ticket)] == [1]
    assert len(handed) == 1


@pytest.mark.parametrize(
    ("action", "message", "status"),
    [
        ("close", "Ticket #{id} is closed.", "closed"),
        ("follow", "You follow ticket #{id}", "open"),
        ("unfollow", "You no longer follow ticket #{id}.", "open"),
    ],
)
def test_a_button_committed_just_before_the_database_went_away_answers_success(
    app: Flask,
    alice: Client,
    bob: Client,
    outage: Outage,
    action: str,
    message: str,
    status: str,
) -> None:
    ticket_id = alice.submit()
    if action == "unfollow":
        assert bob.post(f"/ticket/{ticket_id}/follow").status_code == 303
    clicker = alice if action == "close" else bob

    response = act_and_lose_the_database(outage, clicker, f"/ticket/{ticket_id}/{action}", {})

    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/ticket/{ticket_id}")
    assert message.format(id=ticket_id) in clicker.get(response.headers["Location"]).text
    assert [t.status for t in rows(app, ext_models(app).Ticket)] == [status]
    follows = {f.user_id for f in rows(app, ext_models(app).Follow)}
    assert (2 in follows) == (action == "follow")


def test_an_unfollow_link_committed_just_before_the_database_went_away_answers_success(
    app: Flask, alice: Client, bob: Client, outage: Outage
) -> None:
    from flasket import unfollow

    ticket_id = alice.submit()
    assert bob.post(f"/ticket/{ticket_id}/follow").status_code == 303
    with app.test_request_context():
        [ticket] = rows(app, ext_models(app).Ticket)
        token = unfollow.make_token(ticket.mail_key, 2)
    outage.armed.append(outage.start)
    try:
        response = app.test_client().post(f"/ticket/unfollow/{token}")
    finally:
        outage.end()

    assert response.status_code == 200
    assert f"You no longer follow ticket #{ticket_id}" in response.text
    assert {f.user_id for f in rows(app, ext_models(app).Follow)} == {1}


def test_a_raising_receiver_is_logged_the_others_run_and_the_mail_goes_out(
    app: Flask,
    followed_ticket: int,
    admin: Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    heard: list[str] = []

    def broken(sender: Flask, **models: Any) -> None:
        raise RuntimeError("receiver bug")

    def listening(sender: Flask, **models: Any) -> None:
        heard.append(models["reply"].body)

    handed.clear()
    with (
        signals.ticket_replied.connected_to(broken, sender=app),
        signals.ticket_replied.connected_to(listening, sender=app),
    ):
        response = admin.reply(followed_ticket, "On it.")

    assert response.status_code == 303
    assert heard == ["On it."]
    assert len(handed) == 1
    failures = [r for r in caplog.records if r.name == "flasket" and r.levelno >= logging.ERROR]
    assert len(failures) == 1
    assert failures[0].exc_info
    assert "receiver bug" in str(failures[0].exc_info[1])


def test_a_receiver_that_uses_a_dead_session_does_not_break_the_response(
    app: Flask, followed_ticket: int, admin: Client, outage: Outage
) -> None:
    heard: list[int] = []

    def querying(sender: Flask, **models: Any) -> None:
        outage.kill_connections()
        db.session.execute(sa.select(User.id)).all()

    def listening(sender: Flask, **models: Any) -> None:
        heard.append(models["reply"].id)

    with (
        signals.ticket_replied.connected_to(querying, sender=app),
        signals.ticket_replied.connected_to(listening, sender=app),
    ):
        response = admin.reply(followed_ticket, "On it.")
    outage.end()

    assert response.status_code == 303
    [reply] = rows(app, ext_models(app).Reply, ticket_id=followed_ticket)
    assert heard == [reply.id]
    assert admin.get(f"/ticket/{followed_ticket}").status_code == 200


def test_a_receiver_may_keep_the_objects_it_gets_and_read_them_after_the_request(
    app: Flask, alice: Client, bob: Client
) -> None:
    kept: dict[str, Any] = {}

    def keeping(sender: Flask, **models: Any) -> None:
        kept.update(models)

    ticket_id = alice.submit()
    with signals.ticket_replied.connected_to(keeping, sender=app):
        assert bob.reply(ticket_id, "Kept.").status_code == 303

    # The request's session is gone: these are read from the objects alone.
    assert (kept["ticket"].id, kept["ticket"].reply_count, kept["ticket"].status) == (
        ticket_id,
        1,
        "open",
    )
    assert kept["ticket"].follower_count == 2
    assert (kept["reply"].body, kept["reply"].ticket_id) == ("Kept.", ticket_id)
    assert kept["user"].username == "bob"


def test_the_database_down_before_a_request_gets_a_plain_503_page(
    app: Flask, alice: Client, outage: Outage
) -> None:
    outage.start()
    for response in (alice.get("/ticket/"), alice.http.post("/ticket/submit", data=TICKET_FORM)):
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "60"
        assert UNAVAILABLE in response.text
        assert FLASKET_PAGE not in response.text  # the user cannot be loaded: no layout
    as_json = alice.get("/ticket/", headers={"Accept": "application/json"})
    assert as_json.status_code == 503
    assert UNAVAILABLE in as_json.json["error"]
    outage.end()

    assert alice.get("/ticket/").status_code == 200
    assert rows(app, ext_models(app).Ticket) == []


def test_a_connection_lost_in_the_middle_of_a_reply_gets_flaskets_503_page_and_stores_nothing(
    app: Flask, alice: Client, outage: Outage
) -> None:
    ticket_id = alice.submit()
    form = {"csrf_token": csrf_of(alice, "/ticket/submit"), "body": "Lost."}
    if outage.backend == "sqlite":
        outage.failing = "INSERT INTO flasket_reply"
    else:
        outage.on_statement["INSERT INTO flasket_reply"] = outage.kill_connections

    response = alice.http.post(f"/ticket/{ticket_id}", data=form)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    assert UNAVAILABLE in response.text
    assert FLASKET_PAGE in response.text  # the database answers again: the full page
    assert rows(app, ext_models(app).Reply) == []
    assert [t.reply_count for t in rows(app, ext_models(app).Ticket)] == [0]


def test_a_database_error_that_is_not_an_outage_stays_the_hosts_500(
    app: Flask, alice: Client, outage: Outage
) -> None:
    ticket_id = alice.submit()
    dbapi = outage.engine.dialect.loaded_dbapi
    outage.raise_on["INSERT INTO flasket_reply"] = dbapi.ProgrammingError("syntax error")
    response = alice.reply(ticket_id, "Nope.")

    assert response.status_code == 500
    assert UNAVAILABLE not in response.text
    assert rows(app, ext_models(app).Reply) == []


def test_signals_send_calls_every_live_receiver_once_even_after_one_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signal = signals.ticket_closed
    sender, other = object(), object()
    heard: list[str] = []

    def broken(sender: Any, **kwargs: Any) -> None:
        raise ValueError("bug")

    def for_sender(sender: Any, **kwargs: Any) -> None:
        heard.append(f"sender {kwargs['ticket']}")

    def for_anyone(sender: Any, **kwargs: Any) -> None:
        heard.append(f"any {kwargs['ticket']}")

    def for_other(sender: Any, **kwargs: Any) -> None:
        heard.append("other")

    async def coroutine(sender: Any, **kwargs: Any) -> None:
        heard.append("coroutine")

    def gone(sender: Any, **kwargs: Any) -> None:
        heard.append("gone")

    with (
        signal.connected_to(broken, sender=sender),
        signal.connected_to(for_sender, sender=sender),
        signal.connected_to(for_anyone),
        signal.connected_to(for_other, sender=other),
        signal.connected_to(coroutine, sender=sender),
    ):
        signal.connect(gone, sender=sender, weak=True)
        del gone
        assert signals.send(signal, sender, ticket=7) == 2
        with signal.muted():
            assert signals.send(signal, sender, ticket=8) == 0

    assert sorted(heard) == ["any 7", "sender 7"]
    logged = [r for r in caplog.records if r.name == "flasket"]
    assert len(logged) == 2
