"""What each page shows and what its forms change: index, submit, ticket, lists, user pages."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask

from flasket import config, i18n, queries, search, templating, views
from tests.helpers import Client, counting_queries, ext_models, rows, ticket_row
from tests.hostapp import User, db

NOW = datetime.now(timezone.utc).replace(microsecond=0)
TICKET_LINK = re.compile(r'class="flasket-ticket-link" href="/ticket/(\d+)"')
REPLY_ITEM = re.compile(r'<li id="reply-(\d+)"')
STATUS_BADGE = re.compile(
    r'<span class="flasket-status flasket-status--(\w+)">'
    r"((?:[^<]|<span[^>]*>[^<]*</span>)*)</span>"
)
TAG = re.compile(r"<[^>]+>")


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def listed(page: str) -> list[int]:
    """Ticket ids in the order a ticket table lists them."""
    return [int(found) for found in TICKET_LINK.findall(page)]


def reply_ids(page: str) -> list[int]:
    return [int(found) for found in REPLY_ITEM.findall(page)]


def section(page: str, heading_id: str) -> str:
    """The HTML of the ``<section aria-labelledby=heading_id>`` (sections are not nested)."""
    start = page.index(f'<section aria-labelledby="{heading_id}">')
    return page[start : page.index("</section>", start)]


def pager_link(page: str, rel: str) -> tuple[str, dict[str, list[str]]]:
    match = re.search(rf'<a rel="{rel}" href="([^"]+)"', page)
    assert match, f"no {rel} link"
    url = urlsplit(html.unescape(match.group(1)))
    return url.path, parse_qs(url.query)


def shown(first: int, last: int, total: int, noun: str = "tickets") -> str:
    """The result-count text of a list, e.g. "4\u20136 of 7 tickets" ("1 ticket" for one)."""
    if total == 1 and noun.endswith("tickets"):
        noun = noun[:-1]
    return f"{first}\N{EN DASH}{last} of {total} {noun}"


def user_ids(app: Flask) -> dict[str, int]:
    with app.app_context():
        return {user.username: user.id for user in db.session.scalars(sa.select(User))}


def seed_ticket(
    app: Flask,
    author: str,
    title: str,
    *,
    body: str = "Nothing special.",
    status: str = "open",
    created: datetime | None = None,
    updated: datetime | None = None,
    categories: dict[str, str] | None = None,
    replies: Sequence[tuple[str, str]] = (),
    followers: Iterable[str] | None = None,
    closed_by: str | None = None,
) -> int:
    """Insert a ticket with consistent counters; replies are one minute apart after creation."""
    models, ids = ext_models(app), user_ids(app)
    created = created or NOW - timedelta(days=1)
    follower_names = list(dict.fromkeys([author] if followers is None else followers))
    with app.app_context():
        ticket = models.Ticket(
            author_id=ids[author],
            title=title,
            body=body,
            status=status,
            state="closed" if status == "closed" else "open",
            created_at=created,
            updated_at=updated or created + timedelta(minutes=len(replies)),
            closed_at=created + timedelta(hours=1) if status == "closed" else None,
            closed_by_id=ids[closed_by or author] if status == "closed" else None,
            reply_count=len(replies),
            follower_count=len(follower_names),
        )
        ticket.categories = [
            models.TicketCategory(name=name, value=value)
            for name, value in (categories or {}).items()
        ]
        db.session.add(ticket)
        db.session.flush()
        for number, (name, reply_body) in enumerate(replies, start=1):
            db.session.add(
                models.Reply(
                    ticket_id=ticket.id,
                    author_id=ids[name],
                    body=reply_body,
                    created_at=created + timedelta(minutes=number),
                )
            )
        for name in follower_names:
            db.session.add(
                models.Follow(ticket_id=ticket.id, user_id=ids[name], created_at=created)
            )
        db.session.commit()
        return int(ticket.id)


def hours_ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


# --- overview ---------------------------------------------------------------


def test_index_counts_match_the_database_and_lists_recent_tickets(
    app: Flask, alice: Client
) -> None:
    alice_open = [seed_ticket(app, "alice", f"Alice {n}", updated=hours_ago(n)) for n in range(6)]
    alice_closed = seed_ticket(app, "alice", "Alice closed", status="closed", updated=hours_ago(7))
    bob_open = [
        seed_ticket(app, "bob", f"Bob {n}", updated=hours_ago(n + 0.5), followers=["bob", "alice"])
        for n in range(3)
    ]
    bob_closed = seed_ticket(
        app, "bob", "Bob closed", status="closed", updated=hours_ago(20), followers=["alice"]
    )
    seed_ticket(app, "carol", "Carol old", updated=hours_ago(30), followers=["carol"])

    page = text(alice.get("/ticket/"))
    assert text(alice.get("/ticket/index")) == page

    models, ids = ext_models(app), user_ids(app)
    tickets = rows(app, models.Ticket)
    expected = {
        "open": sum(t.status == "open" for t in tickets),
        "closed": sum(t.status == "closed" for t in tickets),
        "of mine open": sum(t.status == "open" and t.author_id == ids["alice"] for t in tickets),
        "followed": len(rows(app, models.Follow, user_id=ids["alice"])),
    }
    assert expected == {"open": 10, "closed": 2, "of mine open": 6, "followed": 11}
    for label, count in expected.items():
        assert f"<strong>{count}</strong> {label}</a>" in page, label

    by_update = sorted(tickets, key=lambda t: t.updated_at, reverse=True)
    assert listed(section(page, "flasket-recent")) == [t.id for t in by_update[:10]]
    assert listed(section(page, "flasket-mine")) == alice_open[:5]
    assert alice_closed in listed(section(page, "flasket-recent"))
    assert set(bob_open) <= set(listed(section(page, "flasket-recent")))
    assert bob_closed not in listed(page)


@pytest.mark.parametrize("app_config", [{"FLASKET_VISIBILITY": "own"}, {}], ids=["own", "all"])
def test_the_overview_built_once_answers_each_reader_with_their_own_tickets(
    app: Flask, alice: Client, bob: Client, admin: Client
) -> None:
    """The overview's statements are built for the first reader of a kind and run for every
    other one with their own key: what each reader sees must be theirs, in any order."""
    own = app.config.get("FLASKET_VISIBILITY") == "own"
    mine = {
        "alice": [seed_ticket(app, "alice", f"Alice {n}", updated=hours_ago(n)) for n in range(2)],
        "bob": [seed_ticket(app, "bob", "Bob 0", updated=hours_ago(0.5), followers=["bob"])],
    }
    ids = user_ids(app)
    with app.app_context():
        assigned = seed_ticket(app, "alice", "For admin", updated=hours_ago(3))
        db.session.execute(
            sa.update(ext_models(app).Ticket)
            .where(ext_models(app).Ticket.id == assigned)
            .values(assignee_id=ids["admin"])
        )
        db.session.commit()
    mine["alice"].append(assigned)
    for first, second in (("alice", "bob"), ("bob", "alice")):
        queries.forget_statements()
        pages = {
            name: text({"alice": alice, "bob": bob}[name].get("/ticket/"))
            for name in (first, second)
        }
        for name, page in pages.items():
            expected_open = len(mine[name]) if own else 4
            assert f"<strong>{expected_open}</strong> open</a>" in page, (name, first)
            assert f"<strong>{len(mine[name])}</strong> of mine open</a>" in page, (name, first)
            assert set(listed(section(page, "flasket-mine"))) == set(mine[name])
            if own:
                assert set(listed(section(page, "flasket-recent"))) == set(mine[name])
    # Staff after a user, and the other way round: staff read every ticket, and "assigned to
    # me" is the staff member's own.
    for order in (("alice", "admin"), ("admin", "alice")):
        queries.forget_statements()
        for name in order:
            page = text({"alice": alice, "admin": admin}[name].get("/ticket/"))
            if name == "admin":
                assert listed(section(page, "flasket-mine")) == [assigned]
                assert "<strong>4</strong> open</a>" in page
            else:
                assert set(listed(section(page, "flasket-mine"))) == set(mine["alice"])


def test_the_ticket_page_built_once_tells_each_reader_whether_they_follow(
    app: Flask, alice: Client, bob: Client, carol: Client
) -> None:
    """The ticket page's statement is built for its first reader and run for the others
    with their own key: the follow button is each reader's own, in any order."""
    followed = seed_ticket(app, "carol", "Followed", followers=["carol", "alice"])
    for order in (("alice", "bob"), ("bob", "alice")):
        queries.forget_statements()
        for name in order:
            page = text({"alice": alice, "bob": bob}[name].get(f"/ticket/{followed}"))
            follows = f'action="/ticket/{followed}/unfollow"' in page
            assert follows == (name == "alice"), (name, order)
            assert (f'action="/ticket/{followed}/follow"' in page) == (name == "bob")


def test_index_of_a_new_user_shows_zero_counts_and_empty_lists(app: Flask, alice: Client) -> None:
    page = text(alice.get("/ticket/"))
    for label in ("open", "closed", "of mine open", "followed"):
        assert f"<strong>0</strong> {label}</a>" in page
    assert "You have not submitted a ticket yet." in page
    assert "No tickets here yet." in page


# --- submitting -------------------------------------------------------------


def test_submit_redirects_to_the_ticket_and_shows_a_flash_once(app: Flask, alice: Client) -> None:
    form = alice.get("/ticket/submit")
    assert form.status_code == 200
    assert 'name="title"' in text(form)

    response = alice.post(
        "/ticket/submit",
        {
            "title": "Cannot log in",
            "body": "The form says no.",
            "urgency": "Medium",
            "application": "Mobile app",
            "topic": "Account",
        },
    )
    assert response.status_code == 303
    location = urlsplit(response.headers["Location"]).path
    (ticket,) = rows(app, ext_models(app).Ticket)
    assert location == f"/ticket/{ticket.id}"

    landing = text(alice.get(location))
    assert f"Ticket #{ticket.id} submitted." in landing
    assert 'class="flasket-message flasket-message--success"' in landing
    assert "Cannot log in" in landing
    assert f"Ticket #{ticket.id} submitted." not in text(alice.get(location))


def test_submit_stores_the_ticket_its_categories_and_the_authors_follow(
    app: Flask, alice: Client
) -> None:
    ticket_id = alice.submit(
        title="Export is slow", body="It takes an hour.", urgency="Low", topic="Question"
    )
    models, ids = ext_models(app), user_ids(app)
    ticket = ticket_row(app, ticket_id)
    assert (ticket.title, ticket.body, ticket.status) == (
        "Export is slow",
        "It takes an hour.",
        "open",
    )
    assert ticket.author_id == ids["alice"]
    assert (ticket.reply_count, ticket.follower_count) == (0, 1)
    assert ticket.closed_at is None
    assert ticket.closed_by_id is None
    assert ticket.created_at.tzinfo is not None
    assert abs(ticket.created_at - datetime.now(timezone.utc)) < timedelta(minutes=1)
    assert ticket.updated_at == ticket.created_at
    stored = {c.name: c.value for c in rows(app, models.TicketCategory, ticket_id=ticket_id)}
    assert stored == {"urgency": "Low", "application": "Website", "topic": "Question"}
    follows = rows(app, models.Follow, ticket_id=ticket_id)
    assert [f.user_id for f in follows] == [ids["alice"]]


# --- the ticket page --------------------------------------------------------


def test_ticket_page_shows_body_categories_and_replies_in_order(
    app: Flask, alice: Client, bob: Client
) -> None:
    ticket_id = alice.submit(title="Broken upload", body="Upload fails at 99%.")
    for who, body in ((bob, "First answer"), (alice, "Second answer"), (bob, "Third answer")):
        assert who.reply(ticket_id, body).status_code == 303

    page = text(alice.get(f"/ticket/{ticket_id}"))
    assert "Broken upload" in page
    assert "Upload fails at 99%." in page
    assert "<dt>Urgency</dt><dd>High</dd>" in page
    assert "<dt>Topic</dt><dd>Bug report</dd>" in page
    ids = reply_ids(page)
    assert len(ids) == 3
    assert ids == sorted(ids)
    positions = [page.index(body) for body in ("First answer", "Second answer", "Third answer")]
    assert positions == sorted(positions)
    assert "3 replies" in page


def test_ticket_page_shows_the_reply_form_to_readers_of_an_open_ticket(
    app: Flask, alice: Client, bob: Client
) -> None:
    ticket_id = alice.submit()
    page = text(bob.get(f"/ticket/{ticket_id}"))
    assert f'<form method="post" action="/ticket/{ticket_id}" class="flasket-form"' in page
    assert re.search(r'<textarea id="body"[^>]* name="body"', page)
    assert "Post reply" in page
    assert "No replies yet." in page


def test_ticket_page_offers_follow_or_unfollow_by_state(
    app: Flask, alice: Client, bob: Client
) -> None:
    ticket_id = alice.submit()
    follow_form = f'action="/ticket/{ticket_id}/follow"'
    unfollow_form = f'action="/ticket/{ticket_id}/unfollow"'

    as_author = text(alice.get(f"/ticket/{ticket_id}"))
    assert unfollow_form in as_author
    assert follow_form not in as_author

    as_reader = text(bob.get(f"/ticket/{ticket_id}"))
    assert follow_form in as_reader
    assert unfollow_form not in as_reader

    assert bob.post(f"/ticket/{ticket_id}/follow").status_code == 303
    as_follower = text(bob.get(f"/ticket/{ticket_id}"))
    assert unfollow_form in as_follower
    assert follow_form not in as_follower


def test_close_button_only_for_author_and_staff_and_reopen_only_when_closed(
    app: Flask, alice: Client, bob: Client, admin: Client
) -> None:
    ticket_id = alice.submit()
    close_form = f'action="/ticket/{ticket_id}/close"'
    reopen_form = f'action="/ticket/{ticket_id}/reopen"'

    for who, may in ((alice, True), (admin, True), (bob, False)):
        page = text(who.get(f"/ticket/{ticket_id}"))
        assert (close_form in page) is may, who.username
        assert reopen_form not in page, who.username

    assert alice.post(f"/ticket/{ticket_id}/close").status_code == 303
    for who, may in ((alice, True), (admin, True), (bob, False)):
        page = text(who.get(f"/ticket/{ticket_id}"))
        assert close_form not in page, who.username
        assert (reopen_form in page) is may, who.username
        assert "Post reply" not in page
        assert "This ticket is closed." in page


def test_ticket_page_lists_followers_and_their_count(
    app: Flask, alice: Client, bob: Client, login: Any
) -> None:
    ticket_id = alice.submit()
    bob.post(f"/ticket/{ticket_id}/follow")
    login("carol").post(f"/ticket/{ticket_id}/follow")

    followers = section(text(bob.get(f"/ticket/{ticket_id}")), "flasket-followers")
    assert "Followers (3)" in followers
    links = re.findall(r'<a href="(/ticket/user/\w+)">(\w+)</a>', followers)
    assert links == [
        ("/ticket/user/1", "alice"),
        ("/ticket/user/2", "bob"),
        ("/ticket/user/3", "carol"),
    ]


def test_ticket_page_says_when_nobody_follows(app: Flask, alice: Client) -> None:
    ticket_id = seed_ticket(app, "bob", "Lonely", followers=[])
    followers = section(text(alice.get(f"/ticket/{ticket_id}")), "flasket-followers")
    assert "Followers (0)" in followers
    assert "Nobody follows this ticket." in followers


def test_missing_ticket_page_is_a_404_that_names_the_ticket(app: Flask, alice: Client) -> None:
    response = alice.get("/ticket/4242")
    assert response.status_code == 404
    assert "There is no ticket #4242." in text(response)


# --- replying ---------------------------------------------------------------


def test_reply_redirects_to_the_ticket_anchored_at_the_new_reply(
    app: Flask, alice: Client, bob: Client
) -> None:
    ticket_id = alice.submit()
    response = bob.reply(ticket_id, "Have you tried water?")
    assert response.status_code == 303
    (reply,) = rows(app, ext_models(app).Reply, ticket_id=ticket_id)
    location = urlsplit(response.headers["Location"])
    assert (location.path, location.query, location.fragment) == (
        f"/ticket/{ticket_id}",
        "",
        f"reply-{reply.id}",
    )
    assert reply.body == "Have you tried water?"
    page = text(bob.get(location.path))
    assert "Your reply was posted." in page
    assert f'<li id="reply-{reply.id}"' in page


def test_reply_updates_counters_and_makes_the_replier_follow(
    app: Flask, alice: Client, bob: Client
) -> None:
    ticket_id = alice.submit()
    before = ticket_row(app, ticket_id)
    bob.reply(ticket_id, "One")
    bob.reply(ticket_id, "Two")
    after = ticket_row(app, ticket_id)
    assert after.reply_count == 2
    assert after.follower_count == 2
    assert after.updated_at > before.updated_at
    assert {f.user_id for f in rows(app, ext_models(app).Follow, ticket_id=ticket_id)} == {
        user_ids(app)["alice"],
        user_ids(app)["bob"],
    }


class TestReplyPages:
    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {"FLASKET_REPLIES_PER_PAGE": 3}

    def test_reply_past_the_first_page_redirects_to_the_last_page(
        self, app: Flask, alice: Client, bob: Client
    ) -> None:
        ticket_id = alice.submit()
        for number in range(3):
            location = urlsplit(bob.reply(ticket_id, f"reply {number}").headers["Location"])
            assert location.query == ""
        response = bob.reply(ticket_id, "the fourth")
        assert response.status_code == 303
        newest = max(r.id for r in rows(app, ext_models(app).Reply, ticket_id=ticket_id))
        location = urlsplit(response.headers["Location"])
        assert location.path == f"/ticket/{ticket_id}"
        assert parse_qs(location.query) == {"page": ["2"]}
        assert location.fragment == f"reply-{newest}"
        page = text(bob.get(f"{location.path}?{location.query}"))
        assert reply_ids(page) == [newest]
        assert "the fourth" in page

        for number in range(3):
            bob.reply(ticket_id, f"more {number}")
        response = bob.reply(ticket_id, "the eighth")
        assert parse_qs(urlsplit(response.headers["Location"]).query) == {"page": ["3"]}

    def test_replies_are_paginated_in_order(self, app: Flask, alice: Client) -> None:
        replies = [("bob", f"answer number {n}") for n in range(1, 8)]
        ticket_id = seed_ticket(app, "alice", "Many replies", replies=replies)
        all_ids = sorted(r.id for r in rows(app, ext_models(app).Reply, ticket_id=ticket_id))

        first = text(alice.get(f"/ticket/{ticket_id}"))
        assert reply_ids(first) == all_ids[:3]
        assert "answer number 1<" in first
        assert "answer number 4<" not in first
        assert "Page 1 of 3" in first
        assert pager_link(first, "next") == (f"/ticket/{ticket_id}", {"page": ["2"]})
        assert 'rel="prev"' not in first

        second = text(alice.get(f"/ticket/{ticket_id}?page=2"))
        assert reply_ids(second) == all_ids[3:6]
        assert '<ol class="flasket-replies" start="4">' in second
        assert pager_link(second, "prev") == (f"/ticket/{ticket_id}", {})
        assert pager_link(second, "next") == (f"/ticket/{ticket_id}", {"page": ["3"]})

        third = text(alice.get(f"/ticket/{ticket_id}?page=3"))
        assert reply_ids(third) == all_ids[6:]
        assert 'rel="next"' not in third
        assert "7 replies" in third

        assert alice.get(f"/ticket/{ticket_id}?page=4").status_code == 404


# --- follow, unfollow, close, reopen ----------------------------------------


def test_follow_and_unfollow_toggle_the_row_and_the_follower_count(
    app: Flask, alice: Client, bob: Client
) -> None:
    ticket_id = alice.submit()
    follow_model, bob_id = ext_models(app).Follow, user_ids(app)["bob"]

    response = bob.post(f"/ticket/{ticket_id}/follow")
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == f"/ticket/{ticket_id}"
    assert rows(app, follow_model, ticket_id=ticket_id, user_id=bob_id)
    assert ticket_row(app, ticket_id).follower_count == 2
    assert f"You follow ticket #{ticket_id}" in text(bob.get(f"/ticket/{ticket_id}"))

    bob.post(f"/ticket/{ticket_id}/follow")
    assert len(rows(app, follow_model, ticket_id=ticket_id)) == 2
    assert ticket_row(app, ticket_id).follower_count == 2
    assert f"You already follow ticket #{ticket_id}." in text(bob.get(f"/ticket/{ticket_id}"))

    assert bob.post(f"/ticket/{ticket_id}/unfollow").status_code == 303
    assert not rows(app, follow_model, ticket_id=ticket_id, user_id=bob_id)
    assert ticket_row(app, ticket_id).follower_count == 1
    assert "Followers (1)" in text(bob.get(f"/ticket/{ticket_id}"))

    bob.post(f"/ticket/{ticket_id}/unfollow")
    assert ticket_row(app, ticket_id).follower_count == 1
    assert f"You were not following ticket #{ticket_id}." in text(bob.get(f"/ticket/{ticket_id}"))


def test_close_and_reopen_change_status_closed_at_and_closed_by(
    app: Flask, alice: Client, bob: Client
) -> None:
    ticket_id = alice.submit()
    alice_id = user_ids(app)["alice"]

    response = alice.post(f"/ticket/{ticket_id}/close")
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == f"/ticket/{ticket_id}"
    closed = ticket_row(app, ticket_id)
    assert closed.status == "closed"
    assert closed.closed_by_id == alice_id
    assert closed.closed_at is not None
    assert abs(closed.closed_at - datetime.now(timezone.utc)) < timedelta(minutes=1)
    page = text(bob.get(f"/ticket/{ticket_id}"))
    assert re.search(r'closed by <a href="/ticket/user/1">alice</a> <time', page)
    assert "flasket-status--closed" in page

    response = alice.post(f"/ticket/{ticket_id}/reopen")
    assert response.status_code == 303
    reopened = ticket_row(app, ticket_id)
    assert (reopened.status, reopened.closed_at, reopened.closed_by_id) == ("open", None, None)
    page = text(bob.get(f"/ticket/{ticket_id}"))
    assert "closed by" not in page
    assert "flasket-status--open" in page


def test_staff_close_is_recorded_as_closed_by_staff(
    app: Flask, alice: Client, admin: Client
) -> None:
    ticket_id = alice.submit()
    admin.post(f"/ticket/{ticket_id}/close")
    assert ticket_row(app, ticket_id).closed_by_id == user_ids(app)["admin"]
    assert re.search(
        r'closed by <a href="/ticket/user/4">admin</a>',
        text(alice.get(f"/ticket/{ticket_id}")),
    )


def test_a_reader_who_is_not_the_author_cannot_close(
    app: Flask, alice: Client, bob: Client
) -> None:
    ticket_id = alice.submit()
    assert bob.post(f"/ticket/{ticket_id}/close").status_code == 403
    assert ticket_row(app, ticket_id).status == "open"


# --- /all -------------------------------------------------------------------


@pytest.fixture
def open_and_closed(app: Flask) -> dict[str, list[int]]:
    return {
        "open": [
            seed_ticket(app, "alice", "Open A", updated=hours_ago(1)),
            seed_ticket(app, "bob", "Open B", updated=hours_ago(2)),
        ],
        "closed": [
            seed_ticket(app, "alice", "Closed A", status="closed", updated=hours_ago(3)),
            seed_ticket(app, "bob", "Closed B", status="closed", updated=hours_ago(4)),
        ],
    }


def status_links(page: str) -> list[tuple[str, bool]]:
    """The list's status switch: (label, current) for each link."""
    start = page.index('<nav class="flasket-tabs" aria-label="Tickets by status">')
    nav = page[start : page.index("</nav>", start)]
    return [
        (label, bool(current))
        for current, label in re.findall(r'<a href="[^"]+"( aria-current="page")?>(\w+)</a>', nav)
    ]


def test_all_lists_only_open_tickets_by_default_and_says_so(
    app: Flask, alice: Client, open_and_closed: dict[str, list[int]]
) -> None:
    page = text(alice.get("/ticket/all"))
    assert listed(page) == open_and_closed["open"]
    assert '<option value="open" selected>' in page
    assert "<h1>Open tickets</h1>" in page
    assert "<title>Open tickets · Tickets</title>" in page
    assert shown(1, 2, 2, "open tickets") in page
    assert status_links(page) == [("Open", True), ("Closed", False), ("All", False)]


@pytest.mark.parametrize(
    ("status", "expected"),
    [("open", ["open"]), ("closed", ["closed"]), ("all", ["open", "closed"])],
)
def test_all_filters_by_status(
    app: Flask,
    alice: Client,
    open_and_closed: dict[str, list[int]],
    status: str,
    expected: list[str],
) -> None:
    page = text(alice.get(f"/ticket/all?status={status}"))
    assert listed(page) == [i for group in expected for i in open_and_closed[group]]
    assert f'<option value="{status}" selected>' in page
    heading, noun = {
        "open": ("Open tickets", "open tickets"),
        "closed": ("Closed tickets", "closed tickets"),
        "all": ("All tickets", "tickets"),
    }[status]
    assert f"<h1>{heading}</h1>" in page
    total = len(listed(page))
    assert shown(1, total, total, noun) in page
    assert [current for _, current in status_links(page)] == [
        value == status for value in ("open", "closed", "all")
    ]


def test_the_status_switch_keeps_the_other_filters(app: Flask, alice: Client) -> None:
    seed_ticket(app, "bob", "one")
    page = text(alice.get("/ticket/all?status=all&author=bob&urgency=High&page=1"))
    start = page.index('<nav class="flasket-tabs"')
    hrefs = re.findall(r'href="([^"]+)"', page[start : page.index("</nav>", start)])
    assert [(urlsplit(h).path, parse_qs(urlsplit(html.unescape(h)).query)) for h in hrefs] == [
        ("/ticket/all", {"status": [status], "author": ["bob"], "urgency": ["High"]})
        for status in ("open", "closed", "all")
    ]


@pytest.mark.parametrize(
    ("name", "value", "other"),
    [
        ("urgency", "Medium", "Low"),
        ("application", "API", "Website"),
        ("topic", "Feature request", "Question"),
    ],
)
def test_all_filters_by_each_category(
    app: Flask, alice: Client, name: str, value: str, other: str
) -> None:
    base = {"urgency": "Low", "application": "Website", "topic": "Question"}
    matching = [
        seed_ticket(
            app, "bob", f"match {n}", categories={**base, name: value}, updated=hours_ago(n)
        )
        for n in range(2)
    ]
    seed_ticket(app, "bob", "other value", categories={**base, name: other})
    seed_ticket(app, "bob", "no categories")
    seed_ticket(app, "bob", "closed match", status="closed", categories={**base, name: value})

    page = text(alice.get(f"/ticket/all?{name}={value.replace(' ', '+')}"))
    assert listed(page) == matching
    assert f'<option value="{value}" selected>' in page


def test_all_combines_category_filters(app: Flask, alice: Client) -> None:
    wanted = seed_ticket(app, "bob", "both", categories={"urgency": "High", "topic": "Account"})
    seed_ticket(app, "bob", "urgent only", categories={"urgency": "High", "topic": "Question"})
    seed_ticket(app, "bob", "topic only", categories={"urgency": "Low", "topic": "Account"})
    assert listed(text(alice.get("/ticket/all?urgency=High&topic=Account"))) == [wanted]


def row_tags(page: str, ticket_id: int) -> list[str] | None:
    """The category values a ticket table shows for a ticket, or None without a tag list."""
    start = page.index(f'class="flasket-ticket-link" href="/ticket/{ticket_id}"')
    cell = page[start : page.index("</td>", start)]
    if 'class="flasket-tags"' not in cell:
        return None
    return re.findall(r"<li>([^<]*)</li>", cell)


#: Configured out of name order, with choice labels unlike their values.
LABELLED_CATEGORIES = [
    {"name": "urgency", "label": "Urgency", "choices": [("1", "Low"), ("3", "High")]},
    {"name": "topic", "label": "Topic", "choices": ["Bug report", "Account"]},
    {"name": "application", "label": "Application", "choices": [("api", "Public API")]},
]


@pytest.mark.parametrize("app_config", [{"FLASKET_CATEGORIES": LABELLED_CATEGORIES}])
@pytest.mark.parametrize("aggregate", ["json", "no json"])
def test_lists_show_each_tickets_categories_labelled_in_configured_order_like_the_ticket(
    app: Flask,
    alice: Client,
    aggregate: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    if aggregate == "no json":
        # A database without a JSON aggregate: lists load the category rows instead. The list
        # queries are built once per database, so they are built again, and again after it.
        monkeypatch.setattr(queries, "_JSON_OBJECT_AGGREGATES", {})
        queries.forget_statements()
        request.addfinalizer(queries.forget_statements)
    tagged = seed_ticket(
        app,
        "alice",
        "tagged",
        categories={"urgency": "3", "topic": "Bug report", "application": "api"},
        updated=hours_ago(1),
    )
    # A value whose category is no longer configured shows nowhere, as on the ticket page.
    partly = seed_ticket(app, "alice", "partly", categories={"topic": "Account", "gone": "x"})
    untagged = seed_ticket(app, "alice", "untagged", categories={})
    expected = {
        tagged: ["Urgency: High", "Topic: Bug report", "Application: Public API"],
        partly: ["Topic: Account"],
        untagged: None,
    }
    ticket_page = text(alice.get(f"/ticket/{tagged}"))
    shown_there = re.findall(r"<dt>([^<]*)</dt><dd>([^<]*)</dd>", ticket_page)
    assert [f"{label}: {value}" for label, value in shown_there] == expected[tagged]

    for url in ("/ticket/all", "/ticket/", "/ticket/user/1", "/ticket/all?q=tagged"):
        page = text(alice.get(url))
        for ticket_id, tags in expected.items():
            if url.endswith("q=tagged") and ticket_id != tagged:
                continue
            assert row_tags(page, ticket_id) == tags, (url, ticket_id)
    # Every ticket's categories come with one statement, not one per ticket, and the
    # configuration was parsed once, when Flasket was registered: never per page or row.
    parsed = []
    parse = config.parse_categories
    monkeypatch.setattr(config, "parse_categories", lambda raw: parsed.append(1) or parse(raw))  # type: ignore[func-returns-value]
    with counting_queries(app) as statements:
        assert alice.get("/ticket/").status_code == 200
    assert len([s for s in statements if "flasket_ticket_category" in s]) <= 2
    assert parsed == []
    with counting_queries(app) as statements:
        assert alice.get("/ticket/all?status=all").status_code == 200
    assert len([s for s in statements if "flasket_ticket_category" in s]) == 1
    assert parsed == []


@pytest.mark.parametrize("app_config", [{"FLASKET_CATEGORIES": LABELLED_CATEGORIES}])
def test_a_list_words_each_category_value_once_however_many_rows_share_it(
    app: Flask, alice: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Four tickets, four combinations, five (category, value) pairs: each pair is worded once
    # per page, not once per row or per combination.
    for n, (urgency, topic) in enumerate(
        [("3", "Bug report"), ("3", "Account"), ("1", "Bug report"), ("1", "Account")]
    ):
        seed_ticket(
            app,
            "alice",
            f"t{n}",
            categories={"urgency": urgency, "topic": topic, "application": "api"},
        )
    worded: list[str] = []
    gettext = i18n.gettext

    def counting(message: str, **values: Any) -> str:
        if message == "%(category)s: %(value)s":
            worded.append(f"{values['category']}: {values['value']}")
        return gettext(message, **values)

    monkeypatch.setattr(templating, "gettext", counting)
    page = text(alice.get("/ticket/all"))
    assert sorted(worded) == sorted(
        [
            "Urgency: High",
            "Urgency: Low",
            "Topic: Bug report",
            "Topic: Account",
            "Application: Public API",
        ]
    )
    assert page.count("Application: Public API") == 4
    worded.clear()
    text(alice.get("/ticket/all"))
    assert len(worded) == 5  # and again on the next request, which may read another language


def test_all_filters_by_author_name(app: Flask, alice: Client) -> None:
    bobs = [seed_ticket(app, "bob", f"bob {n}", updated=hours_ago(n)) for n in range(2)]
    seed_ticket(app, "alice", "alice's")
    seed_ticket(app, "carol", "carol's")
    page = text(alice.get("/ticket/all?author=bob"))
    assert listed(page) == bobs
    assert 'name="author" value="bob"' in page


def test_all_with_an_unknown_author_says_so_and_lists_nothing(app: Flask, alice: Client) -> None:
    seed_ticket(app, "bob", "exists")
    response = alice.get("/ticket/all?author=nobody")
    assert response.status_code == 200
    page = text(response)
    assert "There is no user called “nobody”." in page
    assert listed(page) == []
    # That is the one message: no count line, no empty-list line besides it.
    assert "flasket-result-count" not in page
    assert "flasket-empty" not in page


def test_all_matches_the_author_name_in_any_case_and_shows_it_as_stored(
    app: Flask, alice: Client
) -> None:
    bobs = seed_ticket(app, "bob", "bob's")
    seed_ticket(app, "carol", "carol's")
    for typed in ("BOB", "Bob", " bob "):
        page = text(alice.get("/ticket/all", query_string={"author": typed}))
        assert listed(page) == [bobs], typed
        assert 'name="author" value="bob"' in page


def add_user(app: Flask, name: str) -> None:
    with app.app_context():
        db.session.add(User(username=name, email=f"{name.lower()}@example.test"))
        db.session.commit()


def test_names_that_differ_only_by_case_each_keep_their_exact_match(
    app: Flask, alice: Client, backend: str
) -> None:
    if backend == "mariadb":
        pytest.skip("MariaDB's default collation makes such names equal: both cannot exist")
    add_user(app, "Dana")
    add_user(app, "dana")
    older = seed_ticket(app, "Dana", "by Dana")
    newer = seed_ticket(app, "dana", "by dana")
    assert listed(text(alice.get("/ticket/all?author=Dana"))) == [older]
    assert listed(text(alice.get("/ticket/all?author=dana"))) == [newer]
    # Another case matches both: the list asks which one is meant, and picks neither.
    both = text(alice.get("/ticket/all?author=DANA"))
    assert listed(both) == []
    assert "2 users are called “DANA”." in both
    choices = re.findall(r'<a href="/ticket/all\?author_id=(\d+)">(\w+)</a>', both)
    assert [name for _, name in choices] == ["Dana", "dana"]
    for (key, _), expected in zip(choices, [older, newer], strict=True):
        assert listed(text(alice.get(f"/ticket/all?author_id={key}"))) == [expected]
    # Each has a page of their own at their key; an old name address leads to it.
    for key, name in choices:
        assert f"<h1>{name}\N{RIGHT SINGLE QUOTATION MARK}s tickets</h1>" in text(
            alice.get(f"/ticket/user/{key}")
        )
        assert alice.get(f"/ticket/user/{name}").headers["Location"] == f"/ticket/user/{key}"
    assert alice.get("/ticket/user/DANA").status_code == 404


def test_an_old_name_address_in_another_case_redirects_to_the_users_page(
    app: Flask, alice: Client
) -> None:
    response = alice.get("/ticket/user/BOB?show=replies")
    assert response.status_code == 302
    assert response.headers["Location"] == "/ticket/user/2?show=replies"
    assert alice.get("/ticket/user/2?show=replies").status_code == 200


def author_suggestions(page: str) -> list[str] | None:
    match = re.search(r'<datalist id="flasket-authors">(.*?)</datalist>', page, re.S)
    if match is None:
        return None
    assert 'list="flasket-authors"' in page
    return re.findall(r'<option value="([^"]*)">', match.group(1))


def test_the_author_filter_suggests_the_authors_listed_and_the_reader(
    app: Flask, alice: Client
) -> None:
    assert author_suggestions(text(alice.get("/ticket/all"))) == ["alice"]
    seed_ticket(app, "carol", "carol's", updated=hours_ago(1))
    seed_ticket(app, "bob", "bob's closed", status="closed", updated=hours_ago(2))
    seed_ticket(app, "carol", "carol's again", updated=hours_ago(3))
    seed_ticket(app, "admin", "long ago", updated=hours_ago(100))
    assert author_suggestions(text(alice.get("/ticket/all"))) == ["admin", "alice", "carol"]
    assert author_suggestions(text(alice.get("/ticket/all?status=closed"))) == ["alice", "bob"]
    page_two = text(alice.get("/ticket/all?status=all&per_page=2&page=2"))
    assert author_suggestions(page_two) == ["admin", "alice", "carol"]


@pytest.mark.parametrize("app_config", [{"FLASKET_VISIBILITY": "own"}])
def test_the_author_suggestions_name_only_authors_of_tickets_the_reader_may_read(
    app: Flask, alice: Client, admin: Client
) -> None:
    seed_ticket(app, "bob", "bob's")
    seed_ticket(app, "alice", "alice's")
    assert author_suggestions(text(alice.get("/ticket/all"))) == ["alice"]
    assert author_suggestions(text(admin.get("/ticket/all"))) == ["admin", "alice", "bob"]


def test_all_sorted_by_update_puts_recent_activity_first(
    app: Flask, alice: Client, bob: Client
) -> None:
    newest = seed_ticket(app, "alice", "recently touched", updated=hours_ago(1))
    middle = seed_ticket(app, "alice", "touched earlier", updated=hours_ago(2))
    oldest = seed_ticket(app, "alice", "long ago", updated=hours_ago(3))
    assert listed(text(alice.get("/ticket/all"))) == [newest, middle, oldest]
    assert listed(text(alice.get("/ticket/all?sort=updated"))) == [newest, middle, oldest]

    assert bob.reply(oldest, "bump").status_code == 303
    assert listed(text(alice.get("/ticket/all?sort=updated"))) == [oldest, newest, middle]


def test_all_sorted_by_creation_newest_or_oldest_first(app: Flask, alice: Client) -> None:
    # Tickets are numbered as they are created; update times run against creation times,
    # so a sort on the wrong column shows.
    first = seed_ticket(app, "bob", "first", created=hours_ago(30), updated=hours_ago(1))
    second = seed_ticket(app, "bob", "second", created=hours_ago(20), updated=hours_ago(3))
    third = seed_ticket(app, "bob", "third", created=hours_ago(10), updated=hours_ago(5))
    assert listed(text(alice.get("/ticket/all?sort=created"))) == [third, second, first]
    assert listed(text(alice.get("/ticket/all?sort=oldest"))) == [first, second, third]
    assert listed(text(alice.get("/ticket/all"))) == [first, second, third]


def test_all_search_matches_title_or_body_case_insensitively(app: Flask, alice: Client) -> None:
    in_title = seed_ticket(app, "bob", "Printer jam", body="Paper stuck.", updated=hours_ago(1))
    in_body = seed_ticket(app, "bob", "Office", body="The PRINTER smokes.", updated=hours_ago(2))
    seed_ticket(app, "bob", "Unrelated", body="Coffee machine.")
    seed_ticket(app, "bob", "Closed printer", status="closed")

    page = text(alice.get("/ticket/all?q=pRiNtEr"))
    assert listed(page) == [in_title, in_body]
    assert 'name="q" value="pRiNtEr"' in page
    assert listed(text(alice.get("/ticket/all?q=printer&status=all"))) == [
        in_title,
        in_body,
        *[t.id for t in rows(app, ext_models(app).Ticket, title="Closed printer")],
    ]


def test_all_search_treats_wildcards_as_plain_text(
    app: Flask, alice: Client, backend: str
) -> None:
    literal = seed_ticket(app, "bob", "Disk 100% full", updated=hours_ago(1))
    longer = seed_ticket(app, "bob", "Disk 1000 files", updated=hours_ago(2))
    seed_ticket(app, "bob", "Disk 200 free", updated=hours_ago(3))
    # Without letters or digits a query is a literal substring on every database.
    assert listed(text(alice.get("/ticket/all?q=%25"))) == [literal]
    assert listed(text(alice.get("/ticket/all?q=_"))) == []
    # As wildcards, % and _ would find "1000" and "100% full" here.
    assert listed(text(alice.get("/ticket/all?q=1%250"))) == []
    assert listed(text(alice.get("/ticket/all?q=10_0"))) == []
    # With digits, every database searches the word prefix "100": the % is punctuation.
    assert listed(text(alice.get("/ticket/all?q=100%25"))) == [literal, longer]


def test_all_search_finds_words_the_full_text_index_leaves_out(
    app: Flask, alice: Client, backend: str
) -> None:
    printer = seed_ticket(app, "bob", "The printer is out of paper", updated=hours_ago(1))
    wifi = seed_ticket(app, "bob", "Wifi", body="Slow for all of us", updated=hours_ago(2))
    seed_ticket(app, "bob", "Printer toner", updated=hours_ago(3))
    # "the", "is", "of" and "for" are InnoDB stopwords or too short for MariaDB's index.
    assert listed(text(alice.get("/ticket/all?q=the printer"))) == [printer]
    assert listed(text(alice.get("/ticket/all?q=printer is out"))) == [printer]
    assert listed(text(alice.get("/ticket/all?q=slow for"))) == [wifi]
    # Full-text search takes the words in any order.
    assert listed(text(alice.get("/ticket/all?q=paper printer"))) == [printer]


# PostgreSQL's parser reads an e-mail address, a URL, a path or a version number as one token;
# Flasket's index splits them at punctuation, as the query is split (flasket/models.py).
ADDRESSES_BODY = (
    "Write to alice@example.com, then follow https://example.com/docs/install.html: "
    "version 2.0.1 still calls foo_bar."
)
FOUND_IN_ADDRESSES = (
    "alice@example.com",
    "example.com",
    "example",
    "docs/install",
    "install.html",
    "2.0.1",
    "0.1",
    "foo_bar",
    "bar",
    "https://example.com/docs/install.html",
)


def found_by(client: Client, query: str) -> list[int]:
    return listed(text(client.get(f"/ticket/all?status=all&q={quote(query)}")))


def test_all_search_finds_parts_of_addresses_urls_paths_and_version_numbers(
    app: Flask, alice: Client, backend: str
) -> None:
    ticket = seed_ticket(app, "bob", "Install guide", body=ADDRESSES_BODY, updated=hours_ago(1))
    seed_ticket(app, "bob", "Coffee", body="The machine on floor two is broken.")

    found = {query: found_by(alice, query) for query in FOUND_IN_ADDRESSES}
    expected = {query: [ticket] for query in FOUND_IN_ADDRESSES}
    if backend == "mariadb":
        # InnoDB's full-text index holds "foo_bar" as one word ("_" is a letter to it), so
        # "bar" alone starts no word it knows; "foo_bar" is found (flasket/search.py).
        expected["bar"] = []
    assert found == expected
    missing = ("carol@example.com", "example.org", "docs/setup", "foo_baz", "3.0.1")
    assert {query: found_by(alice, query) for query in missing} == {query: [] for query in missing}


def test_all_search_finds_words_with_letters_beyond_ascii(app: Flask, alice: Client) -> None:
    cafe = seed_ticket(
        app, "bob", "Le café du coin", body="Fermé; voir la crème-brûlée.", updated=hours_ago(1)
    )
    seed_ticket(app, "bob", "Tea room", body="Closed on Mondays.", updated=hours_ago(2))

    for query in ("café", "caf", "fermé", "brûlée", "crème-brûlée", "fermé; voir"):
        assert found_by(alice, query) == [cafe], query
    assert found_by(alice, "crêpe") == []


def test_postgresql_search_reads_the_gin_index(app: Flask, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("the GIN index is PostgreSQL's")
    seed_ticket(app, "bob", "Install guide", body=ADDRESSES_BODY)
    models = ext_models(app)
    plans = []
    with app.app_context():
        # Without a session, matches() gives the condition a common word's page filters on;
        # with one, a rare word's condition reads the matches from the index first (a CTE).
        sessions: tuple[Any, ...] = (None, db.session)
        for session in sessions:
            condition = search.matches("postgresql", models, "alice@example.com", session)
            ticket = models.Ticket
            listed = (
                sa.select(ticket.id)
                .where(ticket.state == "open", condition)
                .order_by(ticket.updated_at.desc(), ticket.id.desc())
                .limit(25)
            )
            compiled = listed.compile(dialect=db.engine.dialect)
            with db.engine.connect() as connection:
                connection.exec_driver_sql("SET enable_seqscan = off")
                plan = connection.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params)
                plans.append([str(row[0]) for row in plan])
        with db.engine.connect() as connection:
            definition = connection.scalar(
                sa.text("SELECT pg_get_indexdef('ix_flasket_ticket_search'::regclass)")
            )
    common, rare = plans
    # A common word's condition is checked on each ticket the list reads in its own order:
    # its text and its replies' are computed as the indexes' expressions, not read from them.
    assert not any("ix_flasket_ticket_search" in step for step in common), common
    assert any("using ix_flasket_ticket_state_updated" in step for step in common), common
    assert any("flasket_reply" in step for step in common), common
    # A rare word's tickets come from both GIN indexes, tickets' and replies'.
    for index in ("ix_flasket_ticket_search", "ix_flasket_reply_search"):
        assert any(f"Bitmap Index Scan on {index}" in step for step in rare), rare
    from flasket.search_index import SEARCH_PUNCTUATION_PATTERN

    # The index holds the punctuation as the queries spell it: no quote or backslash doubled.
    assert "'" + SEARCH_PUNCTUATION_PATTERN.replace("'", "''") + "'::text" in definition
    assert "translate(" not in definition


def test_all_paginates_with_per_page_and_pager_links_keep_the_filters(
    app: Flask, alice: Client
) -> None:
    high = {"urgency": "High"}
    seed_ticket(app, "bob", "not urgent", created=hours_ago(8), categories={"urgency": "Low"})
    # Created oldest first, so the newest-first list shows them in reverse order of creation.
    matching = [
        seed_ticket(app, "bob", f"match {n}", created=hours_ago(n), categories=high)
        for n in range(6, -1, -1)
    ][::-1]

    query = "status=all&sort=created&urgency=High&per_page=3"
    first = text(alice.get(f"/ticket/all?{query}"))
    assert listed(first) == matching[:3]
    assert shown(1, 3, 7) in first

    page = text(alice.get(f"/ticket/all?{query}&page=2"))
    assert listed(page) == matching[3:6]
    assert shown(4, 6, 7) in page
    assert "Page 2 of 3" in page
    kept = {"status": ["all"], "sort": ["created"], "urgency": ["High"], "per_page": ["3"]}
    assert pager_link(page, "next") == ("/ticket/all", {**kept, "page": ["3"]})
    assert pager_link(page, "prev") == ("/ticket/all", kept)

    last = text(alice.get(f"/ticket/all?{query}&page=3"))
    assert listed(last) == matching[6:]
    assert shown(7, 7, 7) in last
    assert 'rel="next"' not in last

    assert alice.get(f"/ticket/all?{query}&page=4").status_code == 404


def nothing_listed_messages(page: str) -> list[str]:
    """Every line of the page that says what a list holds (count lines and empty-list lines)."""
    found = re.findall(r'<p class="flasket-(?:result-count|empty)"[^>]*>(.*?)</p>', page, re.S)
    return [TAG.sub("", message).strip() for message in found]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/ticket/all?status=closed", "There are no closed tickets."),
        ("/ticket/all?q=zebra", "No open tickets match these filters."),
        ("/ticket/all?status=all&q=zebra", "No tickets match these filters."),
        ("/ticket/all?status=closed&urgency=High", "No closed tickets match these filters."),
        ("/ticket/all?author=carol", "No open tickets match these filters."),
    ],
)
def test_an_empty_list_says_so_once(app: Flask, alice: Client, url: str, message: str) -> None:
    seed_ticket(app, "bob", "open one")
    assert shown(1, 1, 1, "open tickets") in text(alice.get("/ticket/all"))
    page = text(alice.get(url))
    assert nothing_listed_messages(page) == [message]
    assert f'<p class="flasket-empty" role="status">{message}</p>' in page


def test_the_count_line_of_a_search_says_open_tickets(app: Flask, alice: Client) -> None:
    seed_ticket(app, "bob", "printer jam")
    page = text(alice.get("/ticket/all?q=printer"))
    assert nothing_listed_messages(page) == [shown(1, 1, 1, "open tickets")]


# --- /user/<name> -----------------------------------------------------------


TAB = re.compile(
    r'<li><a href="([^"]+)"( aria-current="page")?>(\w+) '
    r'<span class="flasket-tab-count">([\d,+]+)</span></a></li>'
)


def tabs(page: str) -> list[tuple[str, str, bool, str]]:
    """A user page's tabs: (label, link, current, count shown)."""
    return [
        (label, html.unescape(href), bool(current), count)
        for href, current, label, count in TAB.findall(page)
    ]


def test_user_page_shows_their_tickets_follows_and_replies_one_tab_at_a_time(
    app: Flask, alice: Client, bob: Client
) -> None:
    bobs_ticket = seed_ticket(app, "bob", "Bob's own", updated=hours_ago(1))
    followed = seed_ticket(app, "carol", "Carol's, followed by bob", followers=["carol", "bob"])
    replied = seed_ticket(
        app, "carol", "Carol's, replied by bob", replies=[("bob", "Bob says hi")], followers=[]
    )
    seed_ticket(app, "carol", "Nothing to do with bob")

    submitted = text(alice.get("/ticket/user/2"))
    assert listed(section(submitted, "tickets")) == [bobs_ticket]
    assert tabs(submitted) == [
        ("Submitted", "/ticket/user/2", True, "1"),
        ("Following", "/ticket/user/2?show=following", False, "2"),
        ("Replies", "/ticket/user/2?show=replies", False, "1"),
    ]
    assert "<title>bob · Submitted" in submitted
    assert "Bob says hi" not in submitted
    assert text(alice.get("/ticket/user/2?show=tickets")) == submitted

    following = text(alice.get("/ticket/user/2?show=following"))
    # Newest followed ticket first.
    assert listed(section(following, "following")) == [followed, bobs_ticket]
    assert "1\N{EN DASH}2 of 2 followed tickets, newest first" in following
    assert "1\N{EN DASH}1 of 1 submitted ticket, recently updated first" in submitted
    assert [current for _, _, current, _ in tabs(following)] == [False, True, False]

    replies_tab = text(alice.get("/ticket/user/2?show=replies"))
    replies = section(replies_tab, "replies")
    (reply,) = rows(app, ext_models(app).Reply, ticket_id=replied)
    assert f'href="/ticket/{replied}#reply-{reply.id}"' in replies
    assert "Bob says hi" in replies
    assert "Carol&#39;s, replied by bob" in replies
    assert listed(replies_tab) == []


def test_every_list_of_the_user_page_has_a_tab_in_the_same_order() -> None:
    assert tuple(views.USER_TABS) == queries.USER_LISTS


def test_user_page_tabs_say_once_when_a_list_is_empty(app: Flask, alice: Client) -> None:
    page = text(alice.get("/ticket/user/3"))
    assert [count for _, _, _, count in tabs(page)] == ["0", "0", "0"]
    assert nothing_listed_messages(page) == ["No tickets submitted."]
    following = text(alice.get("/ticket/user/3?show=following"))
    assert nothing_listed_messages(following) == ["Not following any ticket."]
    replies = text(alice.get("/ticket/user/3?show=replies"))
    assert nothing_listed_messages(replies) == ["No replies."]


def test_the_overview_of_a_new_user_says_once_per_list_that_it_is_empty(
    app: Flask, alice: Client
) -> None:
    page = text(alice.get("/ticket/"))
    assert nothing_listed_messages(section(page, "flasket-mine")) == [
        "You have not submitted a ticket yet."
    ]
    assert nothing_listed_messages(section(page, "flasket-recent")) == ["No tickets here yet."]


def test_user_page_of_an_unknown_name_is_a_404(app: Flask, alice: Client) -> None:
    response = alice.get("/ticket/user/nobody")
    assert response.status_code == 404
    assert "There is no such user." in text(response)


def test_user_page_tabs_paginate_and_keep_the_page_size(app: Flask, alice: Client) -> None:
    own = [
        seed_ticket(app, "bob", f"own {n}", updated=hours_ago(n), followers=[]) for n in range(5)
    ]
    # Followed tickets list newest first, whatever their last update.
    follows = [
        seed_ticket(app, "carol", f"followed {n}", updated=hours_ago(10 - n), followers=["bob"])
        for n in range(3)
    ][::-1]
    target = seed_ticket(
        app,
        "carol",
        "replied",
        created=hours_ago(50),
        replies=[("bob", f"reply {n}") for n in range(4)],
        followers=[],
    )
    reply_ids_newest_first = sorted(
        (r.id for r in rows(app, ext_models(app).Reply, ticket_id=target)), reverse=True
    )

    def replies_listed(page: str) -> list[int]:
        return [int(i) for i in re.findall(rf"/ticket/{target}#reply-(\d+)", page)]

    first = text(alice.get("/ticket/user/2?per_page=2"))
    assert listed(section(first, "tickets")) == own[:2]
    assert shown(1, 2, 5, "submitted tickets") in first
    assert pager_link(first, "next") == ("/ticket/user/2", {"per_page": ["2"], "page": ["2"]})
    assert [(label, link) for label, link, _, _ in tabs(first)] == [
        ("Submitted", "/ticket/user/2?per_page=2"),
        ("Following", "/ticket/user/2?show=following&per_page=2"),
        ("Replies", "/ticket/user/2?show=replies&per_page=2"),
    ]
    last = text(alice.get("/ticket/user/2?per_page=2&page=3"))
    assert listed(section(last, "tickets")) == own[4:]
    assert pager_link(last, "prev") == ("/ticket/user/2", {"per_page": ["2"], "page": ["2"]})
    # A tab opens at its first page, whatever page another tab was on.
    assert [link for _, link, _, _ in tabs(last)][1] == "/ticket/user/2?show=following&per_page=2"

    following = text(alice.get("/ticket/user/2?show=following&per_page=2&page=2"))
    assert listed(section(following, "following")) == follows[2:]
    assert shown(3, 3, 3, "followed tickets") in following
    assert pager_link(following, "prev") == (
        "/ticket/user/2",
        {"show": ["following"], "per_page": ["2"]},
    )

    replies = text(alice.get("/ticket/user/2?show=replies&per_page=3"))
    assert replies_listed(section(replies, "replies")) == reply_ids_newest_first[:3]
    assert shown(1, 3, 4, "replies") in replies
    assert pager_link(replies, "next") == (
        "/ticket/user/2",
        {"show": ["replies"], "per_page": ["3"], "page": ["2"]},
    )
    second = text(alice.get("/ticket/user/2?show=replies&per_page=3&page=2"))
    assert replies_listed(section(second, "replies")) == reply_ids_newest_first[3:]

    response = alice.get("/ticket/user/2?show=following&per_page=2&page=3")
    assert response.status_code == 404
    assert "There is no page 3 of bob's followed tickets." in html.unescape(text(response))


def test_the_overview_links_each_count_to_its_list(app: Flask, alice: Client) -> None:
    page = text(alice.get("/ticket/"))
    assert 'href="/ticket/user/1?show=following"><strong>' in page
    assert 'href="/ticket/user/1">All my tickets' in page


# --- dates and statuses -----------------------------------------------------


def test_dates_render_as_time_elements_with_readable_text(app: Flask, alice: Client) -> None:
    old = datetime(2024, 3, 5, 14, 7, 9, tzinfo=timezone.utc)
    old_id = seed_ticket(app, "bob", "Old one", created=old, updated=old)
    recent_id = seed_ticket(
        app,
        "bob",
        "Recent one",
        created=datetime.now(timezone.utc) - timedelta(minutes=5, seconds=30),
    )

    old_page = text(alice.get(f"/ticket/{old_id}"))
    assert (
        '<time datetime="2024-03-05T14:07:09+00:00" '
        'title="Mar 5, 2024, 2:07\N{NARROW NO-BREAK SPACE}PM UTC">Mar 5, 2024</time>' in old_page
    )

    recent_page = text(alice.get(f"/ticket/{recent_id}"))
    stamps = re.findall(r'<time datetime="([^"]+)" title="[^"]+">([^<]+)</time>', recent_page)
    assert stamps
    for stamp, readable in stamps:
        assert datetime.fromisoformat(stamp).tzinfo is not None
        assert readable in {"5 minutes ago", "6 minutes ago"}

    listing = text(alice.get("/ticket/all"))
    assert '<time datetime="2024-03-05T14:07:09+00:00"' in listing


def test_statuses_are_shown_as_words_not_only_colours(app: Flask, alice: Client) -> None:
    open_id = seed_ticket(app, "bob", "Still open")
    closed_id = seed_ticket(app, "bob", "Done", status="closed")

    def badges(page: str) -> list[tuple[str, str]]:
        return [
            (kind, TAG.sub("", inner).replace("●", "").replace("✓", "").strip())
            for kind, inner in STATUS_BADGE.findall(page)
        ]

    assert badges(text(alice.get("/ticket/all?status=all&sort=created"))) == [
        ("closed", "Closed"),
        ("open", "Open"),
    ]
    assert ("open", "Open") in badges(text(alice.get(f"/ticket/{open_id}")))
    assert ("closed", "Closed") in badges(text(alice.get(f"/ticket/{closed_id}")))
    assert '<option value="closed">Closed</option>' in text(alice.get("/ticket/all"))
