"""Identifiers in mail are unique for ever: across sites sharing a domain, across reused numbers.

A ticket's thread root Message-ID, every copy's Message-ID and every unfollow
token name something outside the database; none of them may ever name a second
thing, even when a database reuses a deleted ticket's number or two sites send
from one domain.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flasket import notify
from tests.helpers import Client, Inbox, ext_models
from tests.hostapp import User, create_app, db

UNFOLLOW_LINK = re.compile(r"/ticket/unfollow/([A-Za-z0-9_.\-]+)")


def ticket(app: Flask, ticket_id: int) -> Any:
    found = db.session.get(ext_models(app).Ticket, ticket_id)
    assert found is not None
    return found


def delete_ticket(app: Flask, ticket_id: int) -> None:
    """The host deletes a ticket in its own admin code (the rows that cascade go with it)."""
    models = ext_models(app)
    with app.app_context():
        for model in (models.Outbox, models.OutboxEvent, models.Follow, models.Reply):
            db.session.execute(sa.delete(model).where(model.ticket_id == ticket_id))
        db.session.execute(
            sa.delete(models.TicketCategory).where(models.TicketCategory.ticket_id == ticket_id)
        )
        db.session.execute(sa.delete(models.Ticket).where(models.Ticket.id == ticket_id))
        db.session.commit()


def reuse_number(app: Flask, ticket_id: int, alice_id: int) -> None:
    """A later ticket given the deleted one's number (SQLite's rowid does that by itself)."""
    models = ext_models(app)
    with app.app_context():
        db.session.add(
            models.Ticket(id=ticket_id, title="Someone else's", body="New.", author_id=alice_id)
        )
        db.session.commit()


def user_id(app: Flask, name: str) -> int:
    with app.app_context():
        found = db.session.scalar(sa.select(User.id).where(User.username == name))
        assert found is not None
        return found


def test_a_reused_ticket_number_gets_a_thread_and_keys_of_its_own(
    app: Flask, alice: Client, bob: Client, inbox: Inbox
) -> None:
    first = alice.submit("First of its number")
    bob.reply(first, "Following along.")
    (old_mail,) = inbox.to("alice@example.test")
    [old_token] = UNFOLLOW_LINK.findall(old_mail.part("plain"))
    with app.test_request_context():
        old_key, old_root = ticket(app, first).mail_key, notify.thread_id(ticket(app, first))
    assert str(old_mail.message["In-Reply-To"]) == old_root

    delete_ticket(app, first)
    reuse_number(app, first, user_id(app, "alice"))
    bob.post(f"/ticket/{first}/follow")
    with app.test_request_context():
        new = ticket(app, first)
        assert new.mail_key != old_key
        assert notify.thread_id(new) != old_root
        assert notify.copy_message_id(new) != notify.copy_message_id(new)

    # The old ticket's unfollow link names a ticket that is gone: it leaves bob following,
    # and its page shows nothing of the new ticket that has the number now.
    response = app.test_client().post(f"/ticket/unfollow/{old_token}")
    assert response.status_code == 200
    assert f"You no longer follow ticket #{first}" in response.get_data(as_text=True)
    assert "First of its number" not in response.get_data(as_text=True)
    models = ext_models(app)
    with app.app_context():
        followers = db.session.scalars(
            sa.select(models.Follow.user_id).where(models.Follow.ticket_id == first)
        ).all()
    assert user_id(app, "bob") in followers


def test_the_mail_key_keeps_microseconds_through_the_database(app: Flask, alice: Client) -> None:
    first, second = alice.submit("One"), alice.submit("Two")
    models = ext_models(app)
    with app.app_context():
        one = ticket(app, first)
        one.created_at = one.created_at.replace(microsecond=1)
        two = ticket(app, second)
        two.created_at = one.created_at + timedelta(microseconds=1)
        db.session.commit()
        keys = {t.id: t.mail_key for t in db.session.scalars(sa.select(models.Ticket))}
    assert keys[first].split(".")[1] != keys[second].split(".")[1]
    assert int(keys[second].split(".")[1], 16) - int(keys[first].split(".")[1], 16) == 1


@pytest.mark.parametrize(
    ("first_site", "second_site"),
    [
        ({"SERVER_NAME": "shop.example.test"}, {"SERVER_NAME": "forum.example.test"}),
        ({"SERVER_NAME": "example.test:8001"}, {"SERVER_NAME": "example.test:8002"}),
        (
            {"SERVER_NAME": None, "FLASKET_BASE_URL": "https://example.test/shop"},
            {"SERVER_NAME": None, "FLASKET_BASE_URL": "https://example.test/forum"},
        ),
    ],
)
def test_two_sites_sending_from_one_domain_never_share_an_id(
    database_url: str,
    tmp_path: Path,
    first_site: dict[str, Any],
    second_site: dict[str, Any],
) -> None:
    """A staging copy of production, or two apps of one company: same data, same sender."""
    if database_url.startswith("sqlite"):
        database_url = f"sqlite:///{tmp_path / 'shared.db'}"  # both apps on one database
    apps = [
        create_app(SQLALCHEMY_DATABASE_URI=database_url, **site)
        for site in (first_site, second_site)
    ]
    try:
        with apps[0].app_context():
            db.create_all()
            db.session.add(User(username="alice", email="alice@example.test"))
            db.session.commit()
        number = Client(apps[0], "alice").submit("Same ticket, two sites")
        roots = []
        for app in apps:
            with app.test_request_context():
                assert app.config["MAIL_DEFAULT_SENDER"] == apps[0].config["MAIL_DEFAULT_SENDER"]
                roots.append(notify.thread_id(ticket(app, number)))
        assert roots[0] != roots[1]
    finally:
        for app in apps:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
