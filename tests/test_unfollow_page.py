"""The unfollow link from e-mail tells the truth on every visit and leads back to the ticket."""

from __future__ import annotations

import html
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flasket import unfollow
from tests.conftest import Client, ext_models
from tests.hostapp import User, db

FOLLOW_AGAIN = "To get e-mails about it again, choose Follow there."


def text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


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

    done = text(app.test_client().post(url))
    assert f"You no longer follow ticket #{ticket_id}" in done
    assert f'href="/ticket/{ticket_id}"' not in done
    again = text(app.test_client().get(url))
    assert f"You don\N{RIGHT SINGLE QUOTATION MARK}t follow ticket #{ticket_id}" in again
    assert f'href="/ticket/{ticket_id}"' not in again
