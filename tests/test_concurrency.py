"""Requests racing each other on a real database server keep counters, follows and status exact.

Each thread has its own test client, logged in on its own; Flask-SQLAlchemy gives each
thread's app context its own session and connection, and a barrier releases them together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from flasket import signals
from tests.helpers import Client, Inbox, ext_models, rows
from tests.hostapp import User, db

RACERS = 20


@pytest.fixture(autouse=True)
def database_server(backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite serialises writers on one in-memory connection; races need a server")


@pytest.fixture
def app_config() -> dict[str, Any]:
    # One connection per racing thread, so the requests really run at the same time.
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": RACERS + 5, "max_overflow": 0}}


def race(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in parallel threads released together; their results, in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = call()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a racing request hung"
    assert errors == []
    return results


def posting(client: Client, url: str, **data: str) -> Callable[[], int]:
    """A POST ready to fire: the CSRF token is fetched now, not during the race."""
    form = {"csrf_token": client.csrf(), **data}
    return lambda: int(client.post(url, form).status_code)


def ticket_row(app: Flask, ticket_id: int) -> Any:
    [found] = rows(app, ext_models(app).Ticket, id=ticket_id)
    return found


def follower_ids(app: Flask, ticket_id: int) -> list[Any]:
    return [f.user_id for f in rows(app, ext_models(app).Follow, ticket_id=ticket_id)]


@pytest.fixture
def received(app: Flask) -> Iterator[dict[str, list[Any]]]:
    """The ticket_closed and ticket_reopened signals sent during the test."""
    seen: dict[str, list[Any]] = {"closed": [], "reopened": []}

    def on_closed(sender: Flask, **models: Any) -> None:
        seen["closed"].append(models["ticket"].id)

    def on_reopened(sender: Flask, **models: Any) -> None:
        seen["reopened"].append(models["ticket"].id)

    signals.ticket_closed.connect(on_closed, app)
    signals.ticket_reopened.connect(on_reopened, app)
    yield seen
    signals.ticket_closed.disconnect(on_closed, app)
    signals.ticket_reopened.disconnect(on_reopened, app)


def add_people(app: Flask, count: int) -> list[str]:
    names = [f"racer{n:02}" for n in range(count)]
    with app.app_context():
        db.session.add_all(User(username=name, email=f"{name}@example.test") for name in names)
        db.session.commit()
    return names


def test_twenty_simultaneous_replies_are_all_stored_and_counted(
    app: Flask, alice: Client, inbox: Inbox
) -> None:
    ticket_id = alice.submit()
    clients = [Client(app, name) for name in add_people(app, RACERS)]
    replies = [
        posting(client, f"/ticket/{ticket_id}", body=f"Reply from {client.username}")
        for client in clients
    ]

    assert race(replies) == [303] * RACERS

    models = ext_models(app)
    stored = rows(app, models.Reply, ticket_id=ticket_id)
    assert sorted(r.body for r in stored) == sorted(f"Reply from {c.username}" for c in clients)
    ticket = ticket_row(app, ticket_id)
    assert ticket.reply_count == RACERS
    assert ticket.follower_count == RACERS + 1
    assert len(follower_ids(app, ticket_id)) == RACERS + 1
    assert ticket.updated_at == max(r.created_at for r in stored)


def test_one_user_following_twice_at_once_follows_once(
    app: Flask, alice: Client, login: Any
) -> None:
    ticket_id = alice.submit()
    first, second = login("bob"), login("bob")
    follows = [posting(c, f"/ticket/{ticket_id}/follow") for c in (first, second)]

    assert race(follows) == [303, 303]

    assert len(follower_ids(app, ticket_id)) == 2
    assert ticket_row(app, ticket_id).follower_count == 2


def test_many_users_following_at_once_are_all_counted(app: Flask, alice: Client) -> None:
    ticket_id = alice.submit()
    clients = [Client(app, name) for name in add_people(app, RACERS)]

    assert race([posting(c, f"/ticket/{ticket_id}/follow") for c in clients]) == [303] * RACERS

    assert len(follower_ids(app, ticket_id)) == RACERS + 1
    assert ticket_row(app, ticket_id).follower_count == RACERS + 1


def test_two_closes_at_once_close_once_and_notify_once(
    app: Flask, alice: Client, bob: Client, login: Any, inbox: Inbox, received: Any
) -> None:
    ticket_id = alice.submit()
    assert bob.reply(ticket_id, "Me too.").status_code == 303
    inbox.clear()
    closes = [posting(login("alice"), f"/ticket/{ticket_id}/close") for _ in range(2)]

    assert race(closes) == [303, 303]

    ticket = ticket_row(app, ticket_id)
    assert ticket.status == "closed"
    assert ticket.closed_at is not None
    assert received["closed"] == [ticket_id]
    assert [m.envelope_to for m in inbox.messages] == [["bob@example.test"]]


def test_racing_closes_and_reopens_leave_a_consistent_status(
    app: Flask, alice: Client, admin: Client, received: Any
) -> None:
    ticket_id = alice.submit()
    # A client per request: one test client is not meant to be used by two threads at once.
    actors = [Client(app, name) for name in ("alice", "admin") * 4]
    for _ in range(5):
        calls = [
            posting(actor, f"/ticket/{ticket_id}/{('close', 'reopen')[n % 4 // 2]}")
            for n, actor in enumerate(actors)
        ]
        assert race(calls) == [303] * len(calls)

        ticket = ticket_row(app, ticket_id)
        closes, reopens = len(received["closed"]), len(received["reopened"])
        # Every change that happened was a real transition, so they alternate from "open".
        assert closes - reopens == (1 if ticket.status == "closed" else 0)
        if ticket.status == "closed":
            assert ticket.closed_at is not None
            assert ticket.closed_by_id is not None
        else:
            assert ticket.status == "open"
            assert (ticket.closed_at, ticket.closed_by_id) == (None, None)


def test_a_reply_racing_a_close_is_stored_and_counted_or_refused(
    app: Flask, alice: Client, bob: Client
) -> None:
    ticket_id = alice.submit()
    models = ext_models(app)
    for round_number in range(6):
        reply = posting(bob, f"/ticket/{ticket_id}", body=f"Racing reply {round_number}")
        close = posting(alice, f"/ticket/{ticket_id}/close")

        replied, closed = race([reply, close])

        assert (replied, closed) in {(303, 303), (409, 303)}
        stored = rows(app, models.Reply, ticket_id=ticket_id)
        ticket = ticket_row(app, ticket_id)
        assert ticket.status == "closed"
        assert ticket.reply_count == len(stored)
        bodies = [r.body for r in stored]
        assert (f"Racing reply {round_number}" in bodies) == (replied == 303)
        assert alice.post(f"/ticket/{ticket_id}/reopen").status_code == 303
