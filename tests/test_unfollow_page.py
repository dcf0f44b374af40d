"""The unfollow link from e-mail tells the truth on every visit and leads back to the ticket."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from flasket import unfollow
from tests.helpers import Client, ext_models, text
from tests.hostapp import User, db

FOLLOW_AGAIN = "To get e-mails about it again, choose Follow there."


def link_for(app: Flask, ticket_id: int, username: str) -> str:
    with app.test_request_context():
        user_id = db.session.scalar(sa.select(User.id).where(User.username == username))
        ticket = db.session.get(ext_models(app).Ticket, ticket_id)
        assert ticket is not None
        return f"/ticket/unfollow/{unfollow.make_token(ticket.mail_key, user_id)}"


def follows(app: Flask, ticket_id: int, username: str) -> bool:
    models = ext_models(app)
    with app.app_context():
        found = db.session.scalar(
            sa.select(models.Follow.ticket_id)
            .join(User, User.id == models.Follow.user_id)
            .where(models.Follow.ticket_id == ticket_id, User.username == username)
        )
    return found is not None


def test_opening_the_link_again_after_unfollowing_says_so_and_leads_to_the_ticket(
    app: Flask, alice: Client, bob: Client
) -> None:
    ticket_id = alice.submit()
    assert bob.post(f"/ticket/{ticket_id}/follow").status_code == 303
    url, mail_client = link_for(app, ticket_id, "bob"), app.test_client()

    done = mail_client.post(url)
    assert done.status_code == 200
    assert f'<a href="/ticket/{ticket_id}">Open ticket #{ticket_id}</a>' in text(done)
    assert FOLLOW_AGAIN in text(done)
    assert not follows(app, ticket_id, "bob")

    again = text(mail_client.get(url))
    assert f"You don\N{RIGHT SINGLE QUOTATION MARK}t follow ticket #{ticket_id}" in again
    assert "Unfollow ticket" not in again
    assert "<form" not in again
    assert f'<a href="/ticket/{ticket_id}">Open ticket #{ticket_id}</a>' in again
    assert FOLLOW_AGAIN in again


def test_the_ticket_the_link_leads_to_offers_follow_again(
    app: Flask, alice: Client, bob: Client
) -> None:
    ticket_id = alice.submit()
    assert bob.post(f"/ticket/{ticket_id}/follow").status_code == 303
    assert app.test_client().post(link_for(app, ticket_id, "bob")).status_code == 200

    ticket_page = text(bob.get(f"/ticket/{ticket_id}"))
    assert f'action="/ticket/{ticket_id}/follow"' in ticket_page
    assert bob.post(f"/ticket/{ticket_id}/follow").status_code == 303
    assert follows(app, ticket_id, "bob")
    assert f"Unfollow ticket #{ticket_id}?" in text(
        app.test_client().get(link_for(app, ticket_id, "bob"))
    )


def test_one_click_unsubscribe_still_works_and_a_repeat_changes_nothing(
    app: Flask, alice: Client, bob: Client
) -> None:
    ticket_id = alice.submit()
    assert bob.post(f"/ticket/{ticket_id}/follow").status_code == 303
    url = link_for(app, ticket_id, "bob")
    for _ in range(2):
        response = app.test_client().post(
            url,
            data="List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
        assert response.status_code == 200
        assert not follows(app, ticket_id, "bob")


@pytest.mark.parametrize("app_config", [{"FLASKET_VISIBILITY": "own"}])
def test_no_link_to_a_ticket_the_person_may_no_longer_read(app: Flask, alice: Client) -> None:
    ticket_id = alice.submit()
    models = ext_models(app)
    with app.app_context():
        bob_id = db.session.scalar(sa.select(User.id).where(User.username == "bob"))
        db.session.add(models.Follow(ticket_id=ticket_id, user_id=bob_id))
        db.session.commit()
    url = link_for(app, ticket_id, "bob")

    asked = text(app.test_client().get(url))
    assert f"Unfollow ticket #{ticket_id}?" in asked
    done = text(app.test_client().post(url))
    assert f"You no longer follow ticket #{ticket_id}" in done
    assert f'href="/ticket/{ticket_id}"' not in done
    with app.app_context():
        assert db.session.scalars(sa.select(models.Follow).filter_by(user_id=bob_id)).all() == []
    # Whether they follow it or not, the page says nothing about the ticket but its number.
    again = text(app.test_client().get(url))
    assert again == asked
    for page in (asked, done, again):
        assert "Printer is on fire" not in page


def neutral(page: str, number: int) -> str:
    return page.replace(f"#{number}", "#N")


@pytest.mark.parametrize("app_config", [{"FLASKET_VISIBILITY": "own"}])
def test_a_ticket_the_person_may_not_read_looks_like_one_that_is_gone(
    app: Flask, alice: Client
) -> None:
    """Deleted, or no longer theirs to read: the two links' pages cannot be told apart."""
    models = ext_models(app)
    kept, deleted = alice.submit(title="Kept secret"), alice.submit(title="Deleted secret")
    with app.app_context():
        bob_id = db.session.scalar(sa.select(User.id).where(User.username == "bob"))
        for ticket_id in (kept, deleted):
            db.session.add(models.Follow(ticket_id=ticket_id, user_id=bob_id))
        db.session.commit()
    kept_url, deleted_url = link_for(app, kept, "bob"), link_for(app, deleted, "bob")
    with app.app_context():
        db.session.execute(sa.delete(models.Ticket).where(models.Ticket.id == deleted))
        db.session.commit()
    for method in ("get", "post"):
        shown = getattr(app.test_client(), method)(kept_url)
        gone = getattr(app.test_client(), method)(deleted_url)
        assert (shown.status_code, neutral(text(shown), kept)) == (
            gone.status_code,
            neutral(text(gone), deleted),
        )
        assert "secret" not in text(shown)


def test_each_page_names_the_ticket_by_its_title_or_by_its_number_alone(
    app: Flask, alice: Client, bob: Client
) -> None:
    """The ticket's title, never the page's own (which the layout also calls ``title``)."""
    ticket_id = alice.submit(title="Printer is on fire")
    assert bob.post(f"/ticket/{ticket_id}/follow").status_code == 303
    url, mail_client = link_for(app, ticket_id, "bob"), app.test_client()
    about = "e-mails about \N{LEFT DOUBLE QUOTATION MARK}Printer is on fire"
    assert f"You will get no more {about}" in text(mail_client.get(url))
    assert f"You will get no more {about}" in text(mail_client.post(url))
    assert f"You get no {about}" in text(mail_client.get(url))
    models = ext_models(app)
    with app.app_context():
        db.session.execute(sa.delete(models.Ticket).where(models.Ticket.id == ticket_id))
        db.session.commit()
    gone = text(mail_client.get(url))
    assert f"You will get no more e-mails about ticket #{ticket_id}." in gone
    assert "Tickets\N{RIGHT DOUBLE QUOTATION MARK}" not in gone
