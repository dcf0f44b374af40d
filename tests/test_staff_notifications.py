"""What staff hear of a requester's follow-up: the assignee (following or not) on an assigned
ticket, the staff addresses (``FLASKET_STAFF_RECIPIENTS``) on an unassigned one, each mailbox
once, never the actor; observed through the pages and a real SMTP server."""

from __future__ import annotations

import html
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.helpers import Client, Inbox
from tests.hostapp import User, db

DESK = "desk@example.test"
FOOTER = "this address hears of the requester's follow-ups on tickets nobody is assigned to"


def settings(**values: Any) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("app_config", [values], ids=["config"])


def user_key(app: Flask, username: str) -> str:
    with app.app_context():
        return str(db.session.scalar(sa.select(User.id).filter_by(username=username)))


def recipients(inbox: Inbox) -> list[str]:
    return sorted(address for message in inbox.messages for address in message.envelope_to)


@pytest.fixture
def ticket_id(alice: Client, bob: Client, inbox: Inbox) -> int:
    """Alice's ticket, which Bob follows; the inbox starts empty."""
    found = alice.submit("Printer jams")
    assert bob.post(f"/ticket/{found}/follow").status_code == 303
    inbox.clear()
    return found


@settings(FLASKET_STAFF_RECIPIENTS=[DESK, "Bob@Example.test"])
def test_a_requester_follow_up_on_an_unassigned_ticket_reaches_the_staff_addresses_once(
    alice: Client, ticket_id: int, inbox: Inbox
) -> None:
    assert alice.reply(ticket_id, "Still jamming.").status_code == 303

    # Bob follows and is a staff address too: one copy, his follower one.
    assert recipients(inbox) == ["bob@example.test", DESK]
    [desk] = inbox.to(DESK)
    assert "Still jamming." in desk.part("plain")
    assert FOOTER in desk.part("plain")
    assert FOOTER in html.unescape(desk.part("html"))
    assert "unfollow" not in desk.part("plain").lower()
    assert desk.message["List-Unsubscribe"] is None
    [bob_copy] = inbox.to("bob@example.test")
    assert FOOTER not in bob_copy.part("plain")
    assert "unfollow it in one click" in bob_copy.part("plain")


@settings(FLASKET_STAFF_RECIPIENTS=[DESK])
def test_a_reply_by_anyone_but_the_requester_does_not_reach_the_staff_addresses(
    bob: Client, admin: Client, ticket_id: int, inbox: Inbox
) -> None:
    assert bob.reply(ticket_id, "Me too.").status_code == 303
    assert admin.reply(ticket_id, "Looking.").status_code == 303

    assert DESK not in recipients(inbox)


@settings(FLASKET_STAFF_RECIPIENTS=[DESK], FLASKET_STAFF_FOLLOW_UPS=False)
def test_staff_follow_ups_can_be_turned_off(alice: Client, ticket_id: int, inbox: Inbox) -> None:
    assert alice.reply(ticket_id, "Still jamming.").status_code == 303

    assert recipients(inbox) == ["bob@example.test"]


@settings(FLASKET_STAFF_RECIPIENTS=["alice@example.test"])
def test_the_requester_is_not_told_of_their_own_follow_up_as_a_staff_address(
    alice: Client, ticket_id: int, inbox: Inbox
) -> None:
    assert alice.reply(ticket_id, "Still jamming.").status_code == 303

    assert recipients(inbox) == ["bob@example.test"]


@settings(FLASKET_STAFF_RECIPIENTS=[DESK])
def test_an_assigned_ticket_tells_its_assignee_not_the_staff_addresses_even_unfollowed(
    app: Flask, alice: Client, admin: Client, ticket_id: int, inbox: Inbox
) -> None:
    assigned = admin.post(
        f"/ticket/{ticket_id}/assign", {"assignee": user_key(app, "admin"), "from_assignee": ""}
    )
    assert assigned.status_code == 303
    assert admin.post(f"/ticket/{ticket_id}/unfollow").status_code == 303
    inbox.clear()

    assert alice.reply(ticket_id, "Still jamming.").status_code == 303

    assert recipients(inbox) == ["admin@example.test", "bob@example.test"]
    [copy] = inbox.to("admin@example.test")
    # They do not follow: no unfollow link, and the footer says why it came.
    assert f"because ticket #{ticket_id} is assigned to you" in copy.part("plain")
    assert "unfollow" not in copy.part("plain").lower()
    assert copy.message["List-Unsubscribe"] is None

    # Following again: still one copy, a follower's.
    assert admin.post(f"/ticket/{ticket_id}/follow").status_code == 303
    inbox.clear()
    assert alice.reply(ticket_id, "And again.").status_code == 303
    assert recipients(inbox) == ["admin@example.test", "bob@example.test"]
    [copy] = inbox.to("admin@example.test")
    assert "unfollow it in one click" in copy.part("plain")


@settings(FLASKET_STAFF_RECIPIENTS=[DESK], FLASKET_DEFAULT_LOCALE="de")
def test_the_staff_copy_is_written_in_the_sites_language(
    alice: Client, ticket_id: int, inbox: Inbox
) -> None:
    assert alice.reply(ticket_id, "Still jamming.").status_code == 303

    [desk] = inbox.to(DESK)
    plain = desk.part("plain")
    assert "Still jamming." in plain
    assert FOOTER not in plain, "the footer is translated like the rest"
    assert "alice" in plain
