"""Closing a ticket as a duplicate of another (``POST /ticket/<id>/duplicate``, staff only).

The duplicate closes (the first closed status, resolution "duplicate", ``duplicate_of_id``),
its followers who may read the original follow the original from then on, each follower
gets one closed mail naming the original, and both tickets' pages say so (the original's
history entry, which names the duplicate, only to staff). The ticket's own duplicates now
point at the original too: there is no chain of duplicates. Its requester cannot reopen it;
staff can, which ends its being a duplicate. A refused request (not staff, no such
original, the ticket itself, an original that is a duplicate itself, a stale form) changes
nothing and mails nobody; sent twice, even at once, the second sending changes nothing and
says it was done already.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flasket import actions, signals
from tests.helpers import (
    Client,
    Inbox,
    counting_queries,
    elsewhere,
    ext_models,
    rows,
    text,
    ticket_row,
    user_id,
    words,
)
from tests.hostapp import User, db

FLASH = re.compile(r'<p class="flasket-message flasket-message--(\w+)">(.*?)</p>', re.S)
CHANGE = re.compile(r'<p id="change-(\d+)" class="flasket-change">(.*?)</p>', re.S)
ACTION_CSRF = "Nothing was changed because the page with that button had expired."
NOT_A_NUMBER = "Give the number of the ticket this one duplicates."
STAFF_ONLY = "Only staff can close a ticket as a duplicate."
NO_REOPEN = "Only the ticket's author or staff can reopen this ticket; a duplicate, only staff."


def flashes(client: Client, response: Any) -> list[tuple[str, str]]:
    """The messages the page the response redirects to shows, as (category, text)."""
    assert response.status_code == 303, text(response)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    if 'class="flasket flasket-messages"' not in page:
        return []
    shown = page.split('class="flasket flasket-messages"', 1)[1].split("</div>", 1)[0]
    return [(kind, html.unescape(message.strip())) for kind, message in FLASH.findall(shown)]


def state_of(app: Flask, ticket_id: int) -> tuple[Any, ...]:
    found = ticket_row(app, ticket_id)
    return found.status, found.state, found.resolution, found.duplicate_of_id


def followers(app: Flask, ticket_id: int) -> list[str]:
    """The names of the ticket's followers, sorted; the stored count must agree."""
    with app.app_context():
        names = sorted(
            db.session.scalars(
                sa.select(User.username)
                .join(ext_models(app).Follow, ext_models(app).Follow.user_id == User.id)
                .where(ext_models(app).Follow.ticket_id == ticket_id)
            )
        )
    assert ticket_row(app, ticket_id).follower_count == len(names)
    return names


def snapshot(app: Flask, *ticket_ids: int) -> tuple[Any, ...]:
    """Everything closing as a duplicate could change, on each ticket, and the mail written."""
    models = ext_models(app)
    tickets = []
    for ticket_id in ticket_ids:
        found = ticket_row(app, ticket_id)
        tickets.append(
            (
                state_of(app, ticket_id),
                found.closed_at,
                found.closed_by_id,
                found.updated_at,
                followers(app, ticket_id),
                [(c.field, c.new_value) for c in rows(app, models.Change, ticket_id=ticket_id)],
            )
        )
    return tuple(tickets), len(rows(app, models.OutboxEvent))


def mark(client: Client, ticket_id: int, original: Any, csrf: bool = True) -> Any:
    return client.post(f"/ticket/{ticket_id}/duplicate", {"original": str(original)}, csrf=csrf)


def history(client: Client, ticket_id: int) -> list[str]:
    page = client.get(f"/ticket/{ticket_id}").get_data(as_text=True)
    return [" ".join(re.sub(r"<[^>]+>", "", line).split()) for _, line in CHANGE.findall(page)]


@pytest.fixture
def original(alice: Client) -> int:
    """Alice's open ticket, which only she follows."""
    return alice.submit("Printer jams", "Every second page.")


@pytest.fixture
def duplicate(original: int, carol: Client, bob: Client, inbox: Inbox) -> int:
    """Carol's ticket about the same thing, followed by Bob; the inbox starts empty."""
    found = carol.submit("Printer eats paper", "Same printer.")
    assert bob.post(f"/ticket/{found}/follow").status_code == 303
    inbox.clear()
    return found


@pytest.fixture
def closed() -> Iterator[list[tuple[int, Any, str]]]:
    """Every ticket_closed signal: (ticket id, its duplicate_of_id, user's name)."""
    caught: list[tuple[int, Any, str]] = []

    def receive(sender: Any, **kwargs: Any) -> None:
        ticket = kwargs["ticket"]
        caught.append((ticket.id, ticket.duplicate_of_id, kwargs["user"].username))

    signals.ticket_closed.connect(receive)
    yield caught
    signals.ticket_closed.disconnect(receive)


# --- closing as a duplicate ----------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["{n}", "#{n}", "  #{n} "], ids=["7", "#7", "spaces"])
def test_staff_close_a_ticket_as_a_duplicate_its_followers_follow_the_original(
    app: Flask,
    original: int,
    duplicate: int,
    admin: Client,
    alice: Client,
    bob: Client,
    carol: Client,
    inbox: Inbox,
    closed: list[Any],
    typed: str,
) -> None:
    before = ticket_row(app, duplicate)
    response = mark(admin, duplicate, typed.format(n=original))
    assert response.headers["Location"].endswith(f"/ticket/{duplicate}")
    assert flashes(admin, response) == [
        (
            "success",
            f"Ticket #{duplicate} is closed as a duplicate of #{original}; its followers now"
            f" follow #{original}.",
        )
    ]

    found = ticket_row(app, duplicate)
    assert state_of(app, duplicate) == ("closed", "closed", "duplicate", original)
    assert found.closed_by_id == user_id(app, "admin")
    assert found.closed_at is not None
    assert found.updated_at > before.updated_at
    assert state_of(app, original) == ("open", "open", None, None)
    assert followers(app, original) == ["alice", "bob", "carol"]
    assert followers(app, duplicate) == ["bob", "carol"]
    assert closed == [(duplicate, original, "admin")]

    # One closed mail to each of the duplicate's followers, naming the original.
    mails = {m.envelope_to[0]: m for m in inbox.messages}
    assert len(inbox.messages) == 2
    assert sorted(mails) == ["bob@example.test", "carol@example.test"]
    for mail in mails.values():
        assert mail.subject == f"Re: [Ticket #{duplicate}] Printer eats paper"
        plain = mail.part("plain")
        assert f"admin closed ticket #{duplicate} on " in plain
        assert (
            f"It is a duplicate of ticket #{original}, where the conversation goes on; its"
            f" followers who may read that ticket follow it now: http://host.test/ticket/{original}"
        ) in plain
        assert "reopen it" not in plain
        assert "You follow that ticket now" not in plain
        page = html.unescape(mail.part("html"))
        assert (
            f' as a duplicate of ticket <a href="http://host.test/ticket/{original}">#{original}'
            "</a>, where the conversation goes on; its followers who may read that ticket"
            " follow it now."
        ) in page
        assert "You follow that ticket now" not in page

    for client in (alice, bob, carol, admin):
        shown = words(client.get(f"/ticket/{duplicate}"))
        assert (
            f"Closed as a duplicate of #{original} Printer jams: the conversation goes on there."
        ) in shown
        assert "Resolution: Duplicate" in shown
        assert f"Duplicate: #{original}" not in shown
        assert f"Duplicate: #{duplicate}" in words(client.get(f"/ticket/{original}"))
    page = carol.get(f"/ticket/{duplicate}").get_data(as_text=True)
    assert f'<a href="/ticket/{original}">#{original} Printer jams</a>' in page
    assert f'<a href="/ticket/{duplicate}">#{duplicate}</a>' in alice.get(
        f"/ticket/{original}"
    ).get_data(as_text=True)


def test_an_original_lists_every_duplicate_and_followers_are_not_counted_twice(
    app: Flask,
    original: int,
    duplicate: int,
    admin: Client,
    alice: Client,
    bob: Client,
    carol: Client,
    inbox: Inbox,
) -> None:
    # Bob follows the original already; Alice follows a second duplicate.
    assert bob.post(f"/ticket/{original}/follow").status_code == 303
    second = carol.submit("Printer is slow", "Very slow.")
    assert alice.post(f"/ticket/{second}/follow").status_code == 303
    assert mark(admin, duplicate, original).status_code == 303
    assert mark(admin, second, f"#{original}").status_code == 303
    assert followers(app, original) == ["alice", "bob", "carol"]
    assert followers(app, second) == ["alice", "carol"]
    assert f"Duplicates: #{duplicate}, #{second}" in words(bob.get(f"/ticket/{original}"))
    # Each duplicate's followers got its own closed mail, once.
    assert sorted((m.envelope_to[0], m.subject) for m in inbox.messages) == [
        ("alice@example.test", f"Re: [Ticket #{second}] Printer is slow"),
        ("bob@example.test", f"Re: [Ticket #{duplicate}] Printer eats paper"),
        ("carol@example.test", f"Re: [Ticket #{duplicate}] Printer eats paper"),
        ("carol@example.test", f"Re: [Ticket #{second}] Printer is slow"),
    ]


def test_staff_who_follow_the_duplicate_follow_the_original_and_get_no_mail_of_their_own(
    app: Flask, original: int, duplicate: int, admin: Client, inbox: Inbox
) -> None:
    assert admin.post(f"/ticket/{duplicate}/follow").status_code == 303
    assert mark(admin, duplicate, original).status_code == 303
    assert followers(app, original) == ["admin", "alice", "bob", "carol"]
    assert "admin@example.test" not in [m.envelope_to[0] for m in inbox.messages]
    assert len(inbox.messages) == 2


def test_a_duplicate_form_sent_twice_changes_nothing_more(
    app: Flask, original: int, duplicate: int, admin: Client, inbox: Inbox, closed: list[Any]
) -> None:
    assert mark(admin, duplicate, original).status_code == 303
    assert len(inbox.messages) == 2
    inbox.clear()
    closed.clear()
    before = snapshot(app, original, duplicate)
    again = mark(admin, duplicate, f"#{original}")
    assert flashes(admin, again) == [
        ("info", f"Ticket #{duplicate} was already a duplicate of #{original}.")
    ]
    assert snapshot(app, original, duplicate) == before
    assert inbox.messages == []
    assert closed == []


def test_only_staff_get_the_duplicate_form_and_only_while_the_ticket_is_no_duplicate(
    original: int, duplicate: int, admin: Client, alice: Client, carol: Client
) -> None:
    action = f'action="/ticket/{duplicate}/duplicate"'
    assert action in admin.get(f"/ticket/{duplicate}").get_data(as_text=True)
    for client in (alice, carol):
        assert "/duplicate" not in client.get(f"/ticket/{duplicate}").get_data(as_text=True)
    assert mark(admin, duplicate, original).status_code == 303
    assert action not in admin.get(f"/ticket/{duplicate}").get_data(as_text=True)


def test_an_original_s_markup_title_is_escaped_on_the_duplicate_s_page_and_in_the_mail(
    app: Flask, admin: Client, alice: Client, carol: Client, bob: Client, inbox: Inbox
) -> None:
    original = alice.submit("<script>alert(1)</script> printer", "Jams.")
    duplicate = carol.submit("<img src=x onerror=y()> printer", "Same.")
    inbox.clear()
    assert mark(admin, duplicate, original).status_code == 303
    for client in (carol, bob, admin):
        raw = client.get(f"/ticket/{duplicate}").get_data(as_text=True)
        assert "<script>alert(1)" not in raw
        assert "<img src=x" not in raw
        assert f"#{original} &lt;script&gt;alert(1)&lt;/script&gt; printer</a>" in raw
        assert "<img src=x" not in client.get(f"/ticket/{original}").get_data(as_text=True)
    (mail,) = inbox.to("carol@example.test")
    assert "<img src=x" not in mail.part("html")
    assert "&lt;img src=x onerror=y()&gt; printer" in mail.part("html")
    assert "<img src=x onerror=y()> printer" in mail.part("plain")  # plain text is plain


def test_pages_of_duplicates_and_originals_run_as_many_statements_as_any_ticket_page(
    app: Flask,
    original: int,
    duplicate: int,
    admin: Client,
    carol: Client,
    alice: Client,
    inbox: Inbox,
) -> None:
    plain = carol.submit("Another", "Unrelated.")
    more = [carol.submit(f"Printer {n}", "Same.") for n in range(3)]

    def statements(client: Client, ticket_id: int) -> int:
        # Every delivery so far is done: the mail of a close runs statements of its own.
        assert inbox.messages is not None
        assert client.get(f"/ticket/{ticket_id}").status_code == 200
        with counting_queries(app) as found:
            assert client.get(f"/ticket/{ticket_id}").status_code == 200
        return len(found)

    counts = {
        client.username: (statements(client, plain), statements(client, original))
        for client in (admin, alice)
    }
    for ticket_id in (duplicate, *more):
        assert mark(admin, ticket_id, original).status_code == 303
    for client in (admin, alice):
        assert f"Duplicates: #{duplicate}, #{more[0]}, #{more[1]}, #{more[2]}" in words(
            client.get(f"/ticket/{original}")
        )
        base, _ = counts[client.username]
        # The page's own statement says whether the ticket has duplicates; one more lists
        # them, however many there are.
        assert statements(client, original) == base + 1
        assert statements(client, duplicate) == base


# --- refused: nothing changes, nothing is mailed -------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", NOT_A_NUMBER),
        ("   ", NOT_A_NUMBER),
        ("abc", NOT_A_NUMBER),
        ("#", NOT_A_NUMBER),
        ("##{original}", NOT_A_NUMBER),
        ("0", NOT_A_NUMBER),
        ("0{original}", NOT_A_NUMBER),
        ("-{original}", NOT_A_NUMBER),
        ("{original}.0", NOT_A_NUMBER),
        ("{original} {duplicate}", NOT_A_NUMBER),
        ("\uff11", NOT_A_NUMBER),  # a full-width digit one
        ("99999999999", NOT_A_NUMBER),
        ("<script>x()</script>", NOT_A_NUMBER),
        ("999", "There is no ticket #999."),
        ("{duplicate}", "A ticket cannot be a duplicate of itself."),
        ("#{duplicate}", "A ticket cannot be a duplicate of itself."),
    ],
)
def test_an_original_that_is_no_other_ticket_is_refused_and_nothing_changes(
    app: Flask,
    original: int,
    duplicate: int,
    admin: Client,
    inbox: Inbox,
    closed: list[Any],
    typed: str,
    message: str,
) -> None:
    before = snapshot(app, original, duplicate)
    response = mark(admin, duplicate, typed.format(original=original, duplicate=duplicate))
    assert response.status_code == 400
    assert message in text(response)
    assert "<script>x()" not in response.get_data(as_text=True)
    assert snapshot(app, original, duplicate) == before
    assert inbox.messages == []
    assert closed == []


def test_an_original_that_is_itself_a_duplicate_is_refused_naming_its_original(
    app: Flask,
    original: int,
    duplicate: int,
    admin: Client,
    carol: Client,
    inbox: Inbox,
) -> None:
    middle = carol.submit("Printer again", "Again.")
    assert mark(admin, middle, original).status_code == 303
    inbox.clear()
    before = snapshot(app, original, duplicate, middle)
    response = mark(admin, duplicate, f"#{middle}")
    assert response.status_code == 400
    assert (
        f"Ticket #{middle} is itself a duplicate of #{original}: close this one as a duplicate"
        f" of #{original}."
    ) in text(response)
    assert snapshot(app, original, duplicate, middle) == before
    assert inbox.messages == []
    # And the other way round: the original cannot become a duplicate of its duplicate,
    # and the refusal says what to do instead.
    response = mark(admin, original, middle)
    assert response.status_code == 400
    assert (
        f"Ticket #{middle} is already a duplicate of this one. Reopen it first to make this"
        " ticket the duplicate."
    ) in text(response)
    assert snapshot(app, original, duplicate, middle) == before


@pytest.mark.parametrize("who", ["alice", "bob", "carol"])
def test_users_who_are_not_staff_cannot_close_a_ticket_as_a_duplicate(
    app: Flask,
    original: int,
    duplicate: int,
    login: Any,
    inbox: Inbox,
    closed: list[Any],
    who: str,
) -> None:
    before = snapshot(app, original, duplicate)
    response = mark(login(who), duplicate, original)
    assert response.status_code == 403
    assert STAFF_ONLY in text(response)
    assert snapshot(app, original, duplicate) == before
    assert inbox.messages == []
    assert closed == []


def test_a_duplicate_post_without_a_fresh_token_login_or_post_changes_nothing(
    app: Flask, original: int, duplicate: int, admin: Client, inbox: Inbox
) -> None:
    before = snapshot(app, original, duplicate)
    stale = mark(admin, duplicate, original, csrf=False)
    assert stale.status_code == 400
    assert ACTION_CSRF in text(stale)
    anonymous = app.test_client().post(
        f"/ticket/{duplicate}/duplicate", data={"original": str(original)}
    )
    assert anonymous.status_code == 302
    assert admin.get(f"/ticket/{duplicate}/duplicate").status_code == 405
    assert mark(admin, 999, original).status_code == 404
    assert snapshot(app, original, duplicate) == before
    assert inbox.messages == []


# --- reopening a duplicate -----------------------------------------------------------------------


def test_the_requester_cannot_reopen_a_duplicate_or_reply_to_it(
    app: Flask, original: int, duplicate: int, admin: Client, carol: Client, inbox: Inbox
) -> None:
    assert mark(admin, duplicate, original).status_code == 303
    inbox.clear()
    before = snapshot(app, original, duplicate)

    page = carol.get(f"/ticket/{duplicate}").get_data(as_text=True)
    assert f'action="/ticket/{duplicate}/reopen"' not in page
    assert 'name="body"' not in page
    assert "This ticket is closed." in page
    assert "Reopen it to reply." not in page

    refused = carol.post(f"/ticket/{duplicate}/reopen")
    assert refused.status_code == 403
    assert NO_REOPEN in text(refused)
    status = carol.post(f"/ticket/{duplicate}/status", {"status": "open"})
    assert status.status_code == 403
    reply = carol.post(f"/ticket/{duplicate}", {"body": "Please reopen.", "status": "open"})
    assert reply.status_code == 409
    assert "This ticket is closed, so your reply was not posted." in text(reply)
    assert snapshot(app, original, duplicate) == before
    assert rows(app, ext_models(app).Reply) == []
    assert inbox.messages == []


@pytest.mark.parametrize("how", ["reopen button", "status form"])
def test_staff_reopen_a_duplicate_which_then_is_no_duplicate(
    app: Flask,
    original: int,
    duplicate: int,
    admin: Client,
    alice: Client,
    carol: Client,
    inbox: Inbox,
    how: str,
) -> None:
    assert mark(admin, duplicate, original).status_code == 303
    inbox.clear()
    page = admin.get(f"/ticket/{duplicate}").get_data(as_text=True)
    assert f'action="/ticket/{duplicate}/reopen"' in page
    if how == "reopen button":
        response = admin.post(f"/ticket/{duplicate}/reopen")
    else:
        response = admin.post(
            f"/ticket/{duplicate}/status", {"status": "open", "resolution": "solved"}
        )
    assert response.status_code == 303
    assert state_of(app, duplicate) == ("open", "open", None, None)
    assert ticket_row(app, duplicate).closed_at is None
    # Those who follow the original now go on following it.
    assert followers(app, original) == ["alice", "bob", "carol"]
    assert sorted(m.envelope_to[0] for m in inbox.messages) == [
        "bob@example.test",
        "carol@example.test",
    ]
    assert all("admin reopened" in m.part("plain") for m in inbox.messages)
    assert "Closed as a duplicate" not in words(carol.get(f"/ticket/{duplicate}"))
    assert "Duplicate" not in words(alice.get(f"/ticket/{original}")).replace(
        "as a duplicate of this ticket", ""
    )
    # An ordinary ticket again: its requester closes and reopens it.
    assert carol.post(f"/ticket/{duplicate}/close").status_code == 303
    assert carol.post(f"/ticket/{duplicate}/reopen").status_code == 303
    assert state_of(app, duplicate) == ("open", "open", None, None)


def test_staff_may_not_pick_the_duplicate_resolution_by_hand(
    app: Flask, original: int, duplicate: int, admin: Client, inbox: Inbox
) -> None:
    page = admin.get(f"/ticket/{duplicate}").get_data(as_text=True)
    assert 'value="duplicate"' not in page
    before = snapshot(app, original, duplicate)
    response = admin.post(
        f"/ticket/{duplicate}/status", {"status": "closed", "resolution": "duplicate"}
    )
    assert response.status_code == 403
    assert "You cannot close this ticket with that resolution." in text(response)
    bulk = admin.post(
        "/ticket/bulk",
        {"action": "status", "status": "closed", "resolution": "duplicate", "ticket": duplicate},
    )
    assert bulk.status_code == 400
    assert "Choose one of the resolutions in the list." in text(bulk)
    reply = admin.post(
        f"/ticket/{duplicate}",
        {"body": "Closing.", "status": "closed", "resolution": "duplicate"},
    )
    assert reply.status_code == 400
    assert snapshot(app, original, duplicate) == before
    assert rows(app, ext_models(app).Reply) == []
    assert inbox.messages == []


# --- requests that overlap -----------------------------------------------------------------------


def test_a_duplicate_request_that_read_the_ticket_before_the_same_one_closed_it_does_nothing(
    app: Flask, original: int, duplicate: int, admin: Client, inbox: Inbox, closed: list[Any]
) -> None:
    """The same form sent twice at once (a double click): the second request read the ticket
    before the first committed, and takes the lock after it."""
    models = ext_models(app)
    admin_id = user_id(app, "admin")
    with app.app_context():
        ticket = db.session.get(models.Ticket, duplicate)
        found = db.session.get(models.Ticket, original)
        actor = db.session.get(User, admin_id)
        assert ticket is not None
        assert found is not None
        assert ticket.duplicate_of_id is None
        # The first sending goes through meanwhile.
        assert elsewhere(lambda: mark(admin, duplicate, original).status_code) == 303
        mails = len(inbox.messages)
        before = snapshot(app, original, duplicate)
        changed = actions.close_as_duplicate(ticket, actor, found)
    assert (changed, mails) == (False, 2)
    assert snapshot(app, original, duplicate) == before
    assert len(inbox.messages) == 2
    assert closed == [(duplicate, original, "admin")]


def test_an_original_that_became_a_duplicate_meanwhile_is_refused(
    app: Flask, original: int, duplicate: int, admin: Client, carol: Client, inbox: Inbox
) -> None:
    """Staff close B as a duplicate of A while another closes A as a duplicate of C: the
    request that locks second must find A a duplicate, whatever it read before (a locking
    read: on MariaDB a plain one would see the transaction's older snapshot)."""
    models = ext_models(app)
    third = carol.submit("Printer again", "Again.")
    admin_id = user_id(app, "admin")
    with app.app_context():
        ticket = db.session.get(models.Ticket, duplicate)
        found = db.session.get(models.Ticket, original)
        actor = db.session.get(User, admin_id)
        assert ticket is not None
        assert found is not None
        assert found.duplicate_of_id is None
        assert elsewhere(lambda: mark(admin, original, third).status_code) == 303
        before = snapshot(app, original, duplicate, third)
        with pytest.raises(actions.DuplicateError) as raised:
            actions.close_as_duplicate(ticket, actor, found)
    assert raised.value.original_of == third
    assert snapshot(app, original, duplicate, third) == before


def test_closing_a_ticket_that_has_duplicates_as_a_duplicate_leaves_no_chain(
    app: Flask,
    original: int,
    duplicate: int,
    admin: Client,
    alice: Client,
    carol: Client,
    inbox: Inbox,
) -> None:
    """The ticket's own duplicates move on to the new original with it."""
    third = carol.submit("Printer again", "Again.")
    assert mark(admin, third, duplicate).status_code == 303  # third duplicates duplicate
    inbox.clear()
    before = ticket_row(app, third).updated_at
    response = mark(admin, duplicate, original)  # and now duplicate duplicates original
    assert flashes(admin, response) == [
        (
            "success",
            f"Ticket #{duplicate} is closed as a duplicate of #{original}; its followers now"
            f" follow #{original}.",
        )
    ]
    assert state_of(app, duplicate) == ("closed", "closed", "duplicate", original)
    assert state_of(app, third) == ("closed", "closed", "duplicate", original)
    assert state_of(app, original) == ("open", "open", None, None)
    # The moved duplicate's history says why it names another original now.
    assert history(carol, third)[-1].startswith(
        f"admin closed #{duplicate} as a duplicate of #{original}, so this ticket is now a"
        f" duplicate of #{original}"
    )
    assert ticket_row(app, third).updated_at > before
    assert followers(app, original) == ["alice", "bob", "carol"]
    assert f"Duplicates: #{duplicate}, #{third}" in words(alice.get(f"/ticket/{original}"))
    shown = words(carol.get(f"/ticket/{third}"))
    assert f"Closed as a duplicate of #{original} Printer jams" in shown
    # The closed mail goes to the ticket closed now; its duplicates were closed already.
    assert (
        sorted(m.subject for m in inbox.messages)
        == [f"Re: [Ticket #{duplicate}] Printer eats paper"] * 2
    )


# --- with "own" visibility -----------------------------------------------------------------------


OWN = {"FLASKET_VISIBILITY": "own"}


@pytest.mark.parametrize("app_config", [OWN])
def test_with_own_visibility_a_follower_who_may_not_read_the_original_stays_where_they_are(
    app: Flask, alice: Client, carol: Client, admin: Client, inbox: Inbox
) -> None:
    original = alice.submit("Printer jams", "Every second page.")
    duplicate = carol.submit("Printer eats paper", "Same printer.")
    assert mark(admin, duplicate, original).status_code == 303
    assert state_of(app, duplicate) == ("closed", "closed", "duplicate", original)
    assert followers(app, original) == ["alice"]  # Carol may not read it
    # Carol reads that her ticket is a duplicate, of a number, not whose or what it is.
    shown = carol.get(f"/ticket/{duplicate}").get_data(as_text=True)
    assert (
        f'Closed as a duplicate of <a href="/ticket/{original}">#{original}</a>: the'
        " conversation goes on there."
    ) in shown
    assert "Printer jams" not in shown
    assert carol.get(f"/ticket/{original}").status_code == 404
    staff_view = admin.get(f"/ticket/{duplicate}").get_data(as_text=True)
    assert f'<a href="/ticket/{original}">#{original} Printer jams</a>' in staff_view
    # The original's requester is not shown a duplicate she may not read; staff are.
    assert "Duplicate:" not in words(alice.get(f"/ticket/{original}"))
    assert f"Duplicate: #{duplicate}" in words(admin.get(f"/ticket/{original}"))
    # Nor may staff use a number to reach a ticket the requester cannot.
    assert mark(carol, duplicate, original).status_code == 403


@pytest.mark.parametrize("app_config", [OWN])
def test_with_own_visibility_a_follower_not_moved_is_not_told_they_follow_the_original(
    app: Flask, alice: Client, carol: Client, admin: Client, inbox: Inbox
) -> None:
    original = alice.submit("Printer jams", "Every second page.")
    duplicate = carol.submit("Printer eats paper", "Same printer.")
    inbox.clear()
    assert mark(admin, duplicate, original).status_code == 303
    assert "carol" not in followers(app, original)
    (mail,) = inbox.to("carol@example.test")
    assert "You follow that ticket now" not in mail.part("plain")
    assert "You follow that ticket now" not in mail.part("html")
    # One mail for every follower: it says who follows the original, not that Carol does.
    said = "its followers who may read that ticket follow it now"
    assert said in mail.part("plain")
    assert said in html.unescape(mail.part("html"))


@pytest.mark.parametrize("app_config", [OWN])
def test_with_own_visibility_the_original_s_history_does_not_name_an_unreadable_duplicate(
    app: Flask, alice: Client, carol: Client, admin: Client
) -> None:
    original = alice.submit("Printer jams", "Every second page.")
    duplicate = carol.submit("Printer eats paper", "Same printer.")
    assert mark(admin, duplicate, original).status_code == 303
    assert "Duplicate:" not in words(alice.get(f"/ticket/{original}"))  # withheld here...
    page = alice.get(f"/ticket/{original}").get_data(as_text=True)
    assert f"#{duplicate}" not in page  # ...and so not named anywhere else on the page
    assert history(admin, original) == [
        f"admin closed #{duplicate} as a duplicate of this ticket just now"
    ]
