"""The host deletes users and tickets its own way; Flasket's data stays true.

A deleted user's tickets and replies stay, shown as "a deleted user"; their follows
and the mail still owed to them go; counts and pages stay right; a user or ticket
created later inherits nothing, and a ticket number is never handed out twice. It
holds however the host deletes (ORM, bulk ``delete()``, raw SQL) and on SQLite
without foreign keys enforced, as SQLAlchemy leaves them by default.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from flasket import delivery
from tests.helpers import (
    Client,
    Inbox,
    delete_in_bulk,
    delete_with_orm,
    delete_with_sql,
    ext_models,
    rows,
    user_id,
)
from tests.hostapp import User, db

DELETED = "a deleted user"


def text(response: Any) -> str:
    assert response.status_code == 200, response.status_code
    return str(response.get_data(as_text=True))


def section(page: str, heading_id: str) -> str:
    start = page.index(f'<section aria-labelledby="{heading_id}">')
    return page[start : page.index("</section>", start)]


HOW = {"orm": delete_with_orm, "bulk": delete_in_bulk, "sql": delete_with_sql}
Deleter = Callable[[Flask, Any, int], None]


@pytest.fixture(params=list(HOW))
def delete(request: pytest.FixtureRequest) -> Deleter:
    """One way a host deletes a row: ``session.delete()``, ``delete(Model)`` or raw SQL."""
    return HOW[request.param]


def count(app: Flask, model: Any, **filters: Any) -> int:
    return len(rows(app, model, **filters))


@pytest.mark.parametrize("app_config", [{"FLASKET_REPLIES_PER_PAGE": 2}], ids=["2 per page"])
def test_deleted_users_tickets_and_replies_stay_shown_as_a_deleted_user_with_true_counts(
    app: Flask, alice: Client, bob: Client, carol: Client, delete: Deleter, login: Any
) -> None:
    models = ext_models(app)
    bobs = bob.submit("Bob's printer")
    assert alice.reply(bobs, "Alice answers Bob").status_code == 303
    alices = alice.submit("Alice's scanner")
    for body in ("Bob one", "Bob two"):
        assert bob.reply(alices, body).status_code == 303
    carols = carol.submit("Carol's fax")
    assert bob.post(f"/ticket/{carols}/follow").status_code == 303
    bob_id = user_id(app, "bob")

    delete(app, User, bob_id)

    assert [t.author_id for t in rows(app, models.Ticket, id=bobs)] == [None]
    assert count(app, models.Reply, ticket_id=alices) == 2
    assert count(app, models.Reply, author_id=bob_id) == 0
    assert count(app, models.Follow, user_id=bob_id) == 0
    page = text(alice.get(f"/ticket/{bobs}"))
    assert f"Opened by {DELETED}" in page
    assert "Alice answers Bob" in page
    replies = section(text(alice.get(f"/ticket/{alices}")), "flasket-replies")
    assert replies.count(DELETED) == 2
    assert "Page 1 of 1" in replies or "Reply pages" not in replies
    for listing in ("/ticket/all?status=all", "/ticket/", "/ticket/user/alice?show=following"):
        assert DELETED in text(alice.get(listing, follow_redirects=True)), listing
    followers = section(text(carol.get(f"/ticket/{carols}")), "flasket-followers")
    assert "Followers (1)" in followers
    assert "more</li>" not in followers

    # The third reply opens page 2, the first that page has: the redirect goes there.
    answered = alice.reply(alices, "Alice again")
    assert answered.status_code == 303
    assert re.search(r"\?page=2#reply-\d+$", answered.headers["Location"])
    second = section(text(alice.get(f"/ticket/{alices}?page=2")), "flasket-replies")
    assert "Alice again" in second
    assert alice.get(f"/ticket/{alices}?page=3").status_code == 404

    # A new account, with the deleted one's key where the database reuses keys, starts empty.
    with app.app_context():
        db.session.add(User(id=bob_id, username="dave", email="dave@example.test"))
        db.session.commit()
    dave = login("dave")
    own = text(dave.get("/ticket/user/dave", follow_redirects=True))
    assert "No tickets submitted." in own
    assert count(app, models.Follow, user_id=bob_id) == 0
    assert count(app, models.Reply, author_id=bob_id) == 0
    assert "dave" not in text(dave.get(f"/ticket/{bobs}")).split("Signed in as")[0]
    assert ">dave</a>" not in text(alice.get(f"/ticket/{alices}"))


def test_deleted_closer_leaves_the_ticket_closed_without_a_name(
    app: Flask, alice: Client, admin: Client, delete: Deleter
) -> None:
    ticket_id = alice.submit()
    assert admin.post(f"/ticket/{ticket_id}/close").status_code == 303

    delete(app, User, user_id(app, "admin"))

    (ticket,) = rows(app, ext_models(app).Ticket, id=ticket_id)
    assert (ticket.status, ticket.closed_by_id) == ("closed", None)
    assert "closed <time" in " ".join(text(alice.get(f"/ticket/{ticket_id}")).split())


@pytest.mark.parametrize("app_config", [{"FLASKET_DELIVERY": "worker"}], ids=["worker"])
def test_mail_of_a_deleted_user_is_cancelled_and_the_others_still_get_theirs(
    app: Flask, alice: Client, bob: Client, carol: Client, inbox: Inbox
) -> None:
    models = ext_models(app)
    bobs = bob.submit("Bob's printer")
    assert carol.post(f"/ticket/{bobs}/follow").status_code == 303
    alices = alice.submit("Alice's scanner")
    for client in (bob, carol):
        assert client.post(f"/ticket/{alices}/follow").status_code == 303
    assert alice.reply(alices, "Fanned out before").status_code == 303
    with app.app_context():
        delivery.fan_out()
    assert alice.reply(bobs, "Fanned out after").status_code == 303
    assert count(app, models.Outbox, recipient="bob@example.test") == 1

    delete_in_bulk(app, User, user_id(app, "bob"))

    assert count(app, models.Outbox, recipient="bob@example.test") == 0
    with app.app_context():
        delivery.fan_out()
        delivery.deliver_due()
    sent = sorted((m.envelope_to[0], m.part("plain").split("\n")[0]) for m in inbox.messages)
    assert [to for to, _ in sent] == ["carol@example.test", "carol@example.test"]
    assert not inbox.to("bob@example.test")


def test_unfollow_link_of_a_deleted_user_unfollows_nobody(
    app: Flask, alice: Client, bob: Client, inbox: Inbox
) -> None:
    ticket_id = alice.submit()
    assert bob.post(f"/ticket/{ticket_id}/follow").status_code == 303
    assert alice.reply(ticket_id, "News").status_code == 303
    [mail] = inbox.to("bob@example.test")
    link = str(mail.message["List-Unsubscribe"]).strip("<>")
    path = link.split("host.test", 1)[1]

    delete_with_sql(app, User, user_id(app, "bob"))

    answer = bob.http.post(path)
    assert "an account that no longer exists" in answer.get_data(as_text=True)
    assert count(app, ext_models(app).Follow, ticket_id=ticket_id) == 1


@pytest.mark.parametrize("how", ["orm", "sql"])
def test_deleted_ticket_takes_its_rows_and_its_number_is_never_given_again(
    app: Flask, alice: Client, bob: Client, how: str
) -> None:
    models = ext_models(app)
    first = alice.submit("Stays")
    newest = alice.submit("Goes")
    assert bob.reply(newest, "Mine too").status_code == 303
    assert count(app, models.OutboxEvent, ticket_id=newest) >= 1

    HOW[how](app, models.Ticket, newest)

    for model in (models.Reply, models.Follow, models.TicketCategory, models.OutboxEvent):
        assert count(app, model, ticket_id=newest) == 0, model
    assert count(app, models.Outbox, ticket_id=newest) == 0
    assert count(app, models.Follow, ticket_id=first) == 1
    assert bob.get(f"/ticket/{newest}").status_code == 404
    later = alice.submit("Later")
    assert later > newest
    assert not rows(app, models.Reply, ticket_id=later)


def test_deleting_users_while_their_mail_is_fanned_out_never_deadlocks(
    app: Flask, bob: Client, login: Any, inbox: Inbox
) -> None:
    """The host deletes a ticket's author the moment a reply's mail to them is fanned out.

    The deletion sets the ticket's author to NULL (the ticket row) after locking the user
    row; the fan-out writes the author's copy (a foreign key to that user row) and locks
    the ticket. Taken in opposite orders, PostgreSQL and MariaDB deadlock and abort one of
    them, the host's own deletion as often as not.
    """
    for n in range(12):
        name = f"leaver{n}"
        with app.app_context():
            db.session.add(User(username=name, email=f"{name}@example.test"))
            db.session.commit()
        ticket_id = login(name).submit(title=f"Ticket {n}")
        delivery.wait_for_idle(timeout=30)
        assert bob.reply(ticket_id, "On it").status_code == 303
        delete_in_bulk(app, User, user_id(app, name))
        delivery.wait_for_idle(timeout=30)
    models = ext_models(app)
    assert count(app, models.Ticket) == 12
    assert all(ticket.author_id is None for ticket in rows(app, models.Ticket))
    assert [event.failed_at for event in rows(app, models.OutboxEvent)] == [None] * 12
