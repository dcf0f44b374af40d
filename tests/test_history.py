"""A ticket's history (``flasket_ticket_change``): what each change records, and the thread.

Every change of a ticket (its status, assignee, title, categories, an author's edit of a
text, staff hiding a reply or showing it again, closing as a duplicate) is one row written
in the change's own transaction. The ticket's page shows each as a sentence
(:func:`flasket.templating.change_line`) after the reply that was the ticket's last when it
happened, on that reply's page; a refused or repeated change records nothing. An entry
about a reply links to the reply's own address, which finds its page. What people wrote
(titles, category values and labels) is escaped, ``staff_only`` entries (such as the
original's entry of a duplicate) reach staff alone, and the page runs as many statements
with twenty entries as with none.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.helpers import (
    Client,
    Inbox,
    add_staff,
    counting_queries,
    ext_models,
    rows,
    user_id,
)
from tests.hostapp import User, db

CHANGE = re.compile(r'<p id="change-(\d+)" class="flasket-change">(.*?)</p>', re.S)
DELETED = "a deleted user"
PER_PAGE = {"FLASKET_REPLIES_PER_PAGE": 2}
#: Categories whose label and choices' labels are markup, and a value that is markup too.
MARKUP_CATEGORIES = [
    {
        "name": "area",
        "label": "<i>Area</i>",
        "choices": [
            ("one", "<script>one()</script>"),
            ("<b>two</b>", "<img src=x onerror=two()>"),
        ],
        "widget": "select",
    }
]


def words(markup: str) -> str:
    """Text without its tags, entities decoded, white space collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def lines(client: Client, ticket_id: int, page: int = 1) -> list[str]:
    """The history sentences of one page of the ticket, in page order, as a reader reads them."""
    response = client.get(f"/ticket/{ticket_id}" + (f"?page={page}" if page > 1 else ""))
    assert response.status_code == 200
    return [words(found) for _, found in CHANGE.findall(response.get_data(as_text=True))]


def changes(app: Flask, ticket_id: int) -> list[Any]:
    return sorted(rows(app, ext_models(app).Change, ticket_id=ticket_id), key=lambda c: c.id)


def summary(app: Flask, ticket_id: int) -> list[tuple[Any, ...]]:
    """(field, old_value, new_value, detail) of each entry, oldest first."""
    return [(c.field, c.old_value, c.new_value, c.detail) for c in changes(app, ticket_id)]


def delete_user(app: Flask, name: str) -> None:
    with app.app_context():
        db.session.execute(sa.delete(User).where(User.username == name))
        db.session.commit()


def reply_ids(app: Flask, ticket_id: int) -> list[int]:
    return sorted(r.id for r in rows(app, ext_models(app).Reply, ticket_id=ticket_id))


def set_status(client: Client, ticket_id: int, status: str, resolution: str = "solved") -> Any:
    response = client.post(
        f"/ticket/{ticket_id}/status", {"status": status, "resolution": resolution}
    )
    return response


def assign(client: Client, ticket_id: int, assignee: str) -> Any:
    return client.post(f"/ticket/{ticket_id}/assign", {"assignee": assignee})


def edit(client: Client, ticket_id: int, title: str, **categories: str) -> Any:
    values = {"urgency": "High", "application": "Website", "topic": "Bug report"}
    values.update(categories)
    return client.post(f"/ticket/{ticket_id}/edit", {"title": title, **values})


def add_change(app: Flask, ticket_id: int, **values: Any) -> None:
    """A history entry written straight into the table (what no action writes yet)."""
    values.setdefault("created_at", datetime.now(timezone.utc))
    with app.app_context():
        db.session.add(ext_models(app).Change(ticket_id=ticket_id, **values))
        db.session.commit()


@pytest.fixture
def ticket_id(alice: Client, bob: Client, inbox: Inbox) -> int:
    """Alice's open ticket, followed by Bob; the inbox starts empty."""
    found = alice.submit("Printer jams", "Every second page.")
    assert bob.post(f"/ticket/{found}/follow").status_code == 303
    inbox.clear()
    return found


@pytest.fixture
def dora(app: Flask, login: Callable[[str | None], Client]) -> Client:
    """A second staff member."""
    add_staff(app, "dora")
    return login("dora")


# --- what each change records --------------------------------------------------------------------


def test_a_new_ticket_has_no_history(
    app: Flask, ticket_id: int, alice: Client, admin: Client
) -> None:
    assert changes(app, ticket_id) == []
    assert lines(alice, ticket_id) == []
    assert lines(admin, ticket_id) == []


def test_status_moves_are_recorded_with_who_made_them_and_the_resolution(
    app: Flask, ticket_id: int, admin: Client, alice: Client, bob: Client
) -> None:
    assert set_status(admin, ticket_id, "waiting").status_code == 303
    assert alice.reply(ticket_id, "The one on floor 2.").status_code == 303  # ends the wait
    assert alice.post(f"/ticket/{ticket_id}/close").status_code == 303
    assert alice.post(f"/ticket/{ticket_id}/reopen").status_code == 303
    assert set_status(admin, ticket_id, "closed", "wont_fix").status_code == 303

    (reply_id,) = reply_ids(app, ticket_id)
    found = changes(app, ticket_id)
    assert summary(app, ticket_id) == [
        ("status", "open", "waiting", None),
        ("status", "waiting", "open", None),
        ("status", "open", "closed", "solved"),
        ("status", "closed", "open", None),
        ("status", "open", "closed", "wont_fix"),
    ]
    admin_id, alice_id = user_id(app, "admin"), user_id(app, "alice")
    assert [c.actor_id for c in found] == [admin_id, alice_id, alice_id, alice_id, admin_id]
    # The first came before any reply; the wait ended with the reply, so it follows it.
    assert [c.after_reply_id for c in found] == [None, reply_id, reply_id, reply_id, reply_id]
    assert not any(c.staff_only for c in found)
    # Written in the change's own transaction: the same moment as the ticket's own columns.
    (ticket,) = rows(app, ext_models(app).Ticket, id=ticket_id)
    assert found[-1].created_at == ticket.closed_at == ticket.updated_at

    expected = [
        "admin changed the status from Open to Waiting for requester just now",
        "alice changed the status from Waiting for requester to Open just now",
        "alice changed the status from Open to Closed just now · Resolution: Solved",
        "alice changed the status from Closed to Open just now",
        "admin changed the status from Open to Closed just now · Resolution: Won't fix",
    ]
    for client in (admin, alice, bob):
        assert lines(client, ticket_id) == expected


def test_a_reply_that_sets_the_status_records_it_after_that_reply(
    app: Flask, ticket_id: int, admin: Client, alice: Client, bob: Client
) -> None:
    assert bob.reply(ticket_id, "Same here.").status_code == 303
    response = admin.post(
        f"/ticket/{ticket_id}",
        {"body": "Fixed the tray.", "status": "closed", "resolution": "wont_fix"},
    )
    assert response.status_code == 303
    _first, second = reply_ids(app, ticket_id)
    (found,) = changes(app, ticket_id)
    assert (found.field, found.old_value, found.new_value, found.detail) == (
        "status",
        "open",
        "closed",
        "wont_fix",
    )
    assert found.after_reply_id == second
    assert found.actor_id == user_id(app, "admin")
    page = alice.get(f"/ticket/{ticket_id}").get_data(as_text=True)
    # After the reply that closed it, not between the two replies.
    assert page.index(f'id="reply-{second}"') < page.index(f'id="change-{found.id}"')


def test_staff_replies_and_other_users_replies_record_no_change(
    app: Flask, ticket_id: int, admin: Client, bob: Client
) -> None:
    assert set_status(admin, ticket_id, "waiting").status_code == 303
    assert admin.reply(ticket_id, "Which printer?").status_code == 303
    assert bob.reply(ticket_id, "Same here.").status_code == 303
    # Only the requester's reply ends a wait: neither of these moved the ticket.
    assert summary(app, ticket_id) == [("status", "open", "waiting", None)]


def test_assignments_are_recorded_between_the_two_assignees(
    app: Flask, ticket_id: int, admin: Client, dora: Client, alice: Client
) -> None:
    assert assign(admin, ticket_id, str(user_id(app, "admin"))).status_code == 303
    assert assign(admin, ticket_id, str(user_id(app, "dora"))).status_code == 303
    assert assign(dora, ticket_id, "").status_code == 303

    found = changes(app, ticket_id)
    admin_id, dora_id = user_id(app, "admin"), user_id(app, "dora")
    assert [(c.field, c.old_user_id, c.new_user_id, c.actor_id) for c in found] == [
        ("assignee", None, admin_id, admin_id),
        ("assignee", admin_id, dora_id, admin_id),
        ("assignee", dora_id, None, dora_id),
    ]
    expected = [
        "admin assigned this ticket to admin just now",
        "admin reassigned this ticket from admin to dora just now",
        "dora removed dora as the assignee just now",
    ]
    assert lines(alice, ticket_id) == expected
    assert lines(admin, ticket_id) == expected
    page = alice.get(f"/ticket/{ticket_id}").get_data(as_text=True)
    (_, line) = next(m for m in CHANGE.findall(page) if m[0] == str(found[1].id))
    # Names are links to the users' pages.
    assert f'<a href="/ticket/user/{admin_id}">admin</a>' in line
    assert f'<a href="/ticket/user/{dora_id}">dora</a>' in line


def test_title_and_category_edits_are_one_entry_each_in_the_category_s_words(
    app: Flask, ticket_id: int, admin: Client, bob: Client
) -> None:
    response = edit(admin, ticket_id, "Printer jams on floor 2", urgency="Low", topic="Question")
    assert response.status_code == 303
    assert summary(app, ticket_id) == [
        ("title", "Printer jams", "Printer jams on floor 2", None),
        ("category", "High", "Low", "urgency"),
        ("category", "Bug report", "Question", "topic"),
    ]
    assert len({c.created_at for c in changes(app, ticket_id)}) == 1  # one transaction
    assert lines(bob, ticket_id) == [
        "admin changed the title from “Printer jams” to “Printer jams on floor 2” just now",
        "admin changed Urgency from High to Low just now",
        "admin changed Topic from Bug report to Question just now",
    ]


@pytest.mark.parametrize(
    "app_config",
    [
        {
            "FLASKET_CATEGORIES": [
                {
                    "name": "team",
                    "label": "Team",
                    "choices": [("ops", "Operations"), ("dev", "Development")],
                    "required": False,
                }
            ]
        }
    ],
)
def test_a_category_set_and_cleared_reads_as_set_and_cleared(
    app: Flask, alice: Client, admin: Client
) -> None:
    ticket_id = alice.submit("Printer jams", "Every second page.")
    post = admin.post
    assert post(f"/ticket/{ticket_id}/edit", {"title": "Printer jams", "team": "ops"}).status_code
    assert post(f"/ticket/{ticket_id}/edit", {"title": "Printer jams", "team": "dev"}).status_code
    assert post(f"/ticket/{ticket_id}/edit", {"title": "Printer jams", "team": ""}).status_code
    assert summary(app, ticket_id) == [
        ("category", None, "ops", "team"),
        ("category", "ops", "dev", "team"),
        ("category", "dev", None, "team"),
    ]
    assert lines(alice, ticket_id) == [
        "admin set Team to Operations just now",
        "admin changed Team from Operations to Development just now",
        "admin cleared Team (it was Development) just now",
    ]


def test_edits_of_texts_and_hiding_replies_are_recorded_and_link_to_the_reply(
    app: Flask, ticket_id: int, admin: Client, alice: Client, bob: Client
) -> None:
    assert bob.reply(ticket_id, "Same here.").status_code == 303
    (reply_id,) = reply_ids(app, ticket_id)
    assert alice.post(f"/ticket/{ticket_id}/revise", {"body": "Every page."}).status_code == 303
    revised = bob.post(f"/ticket/{ticket_id}/replies/{reply_id}/revise", {"body": "Me too."})
    assert revised.status_code == 303
    assert admin.post(f"/ticket/{ticket_id}/replies/{reply_id}/hide").status_code == 303
    assert admin.post(f"/ticket/{ticket_id}/replies/{reply_id}/unhide").status_code == 303

    found = changes(app, ticket_id)
    assert summary(app, ticket_id) == [
        ("edit", None, None, "ticket"),
        ("edit", None, str(reply_id), "reply"),
        ("hide", None, str(reply_id), None),
        ("unhide", None, str(reply_id), None),
    ]
    alice_id, bob_id, admin_id = (user_id(app, n) for n in ("alice", "bob", "admin"))
    assert [c.actor_id for c in found] == [alice_id, bob_id, admin_id, admin_id]
    assert {c.after_reply_id for c in found} == {reply_id}
    expected = [
        "alice edited the description just now",
        "bob edited a reply just now",
        "admin hid a reply just now",
        "admin showed a reply again just now",
    ]
    for client in (alice, bob, admin):
        assert lines(client, ticket_id) == expected
    # "a reply" links to the reply's own address, which finds the page of replies it is on.
    page = bob.get(f"/ticket/{ticket_id}").get_data(as_text=True)
    link = f'<a href="/ticket/{ticket_id}/replies/{reply_id}">a reply</a>'
    assert page.count(link) == 3
    found = bob.get(f"/ticket/{ticket_id}/replies/{reply_id}")
    assert found.status_code == 302
    assert found.headers["Location"].endswith(f"/ticket/{ticket_id}#reply-{reply_id}")


def test_closing_as_a_duplicate_is_recorded_on_both_tickets(
    app: Flask, ticket_id: int, admin: Client, carol: Client, alice: Client, bob: Client
) -> None:
    duplicate = carol.submit("Printer jams too", "Same printer.")
    assert admin.post(f"/ticket/{duplicate}/duplicate", {"original": str(ticket_id)}).status_code
    assert summary(app, duplicate) == [("duplicate", "open", str(ticket_id), None)]
    assert summary(app, ticket_id) == [("duplicated", None, str(duplicate), None)]
    # The duplicate's entry is everyone's; the original's names the duplicate, which not
    # every reader of the original may read ("own" visibility): it is staff's.
    assert [c.staff_only for c in changes(app, duplicate)] == [False]
    assert [c.staff_only for c in changes(app, ticket_id)] == [True]
    for client in (carol, alice, admin):
        assert lines(client, duplicate) == [
            f"admin closed this ticket as a duplicate of #{ticket_id} just now"
        ]
    assert lines(admin, ticket_id) == [
        f"admin closed #{duplicate} as a duplicate of this ticket just now"
    ]
    for client in (alice, bob):
        assert lines(client, ticket_id) == []
    page = admin.get(f"/ticket/{ticket_id}").get_data(as_text=True)
    assert f'<a href="/ticket/{duplicate}">#{duplicate}</a> as a duplicate' in page


def test_staff_reopening_a_duplicate_is_a_status_change(
    app: Flask, ticket_id: int, admin: Client, carol: Client
) -> None:
    duplicate = carol.submit("Printer jams too", "Same printer.")
    assert admin.post(f"/ticket/{duplicate}/duplicate", {"original": str(ticket_id)}).status_code
    assert admin.post(f"/ticket/{duplicate}/reopen").status_code == 303
    assert summary(app, duplicate) == [
        ("duplicate", "open", str(ticket_id), None),
        ("status", "closed", "open", None),
    ]


# --- refused and repeated changes record nothing -------------------------------------------------


def test_refused_and_repeated_changes_record_nothing(
    app: Flask, ticket_id: int, admin: Client, alice: Client, carol: Client, inbox: Inbox
) -> None:
    admin_key = str(user_id(app, "admin"))
    assert set_status(alice, ticket_id, "waiting").status_code == 403
    assert carol.post(f"/ticket/{ticket_id}/close").status_code == 403
    assert assign(alice, ticket_id, admin_key).status_code == 403
    assert edit(carol, ticket_id, "Mine now").status_code == 403
    assert edit(admin, ticket_id, "").status_code == 400
    assert admin.post(f"/ticket/{ticket_id}/duplicate", {"original": "abc"}).status_code == 400
    assert carol.post(f"/ticket/{ticket_id}/revise", {"body": "Mine"}).status_code == 403
    assert alice.post(f"/ticket/{ticket_id}/reopen").status_code == 303  # already open
    assert edit(admin, ticket_id, "Printer jams").status_code == 303  # nothing to change
    assert alice.post(f"/ticket/{ticket_id}/revise", {"body": "Every second page."}).status_code
    assert changes(app, ticket_id) == []
    assert inbox.messages == []

    # Sent twice: the second sending finds the ticket where it asked, and records nothing.
    form = {"status": "waiting", "resolution": "solved", "from_status": "open"}
    assert admin.post(f"/ticket/{ticket_id}/status", form).status_code == 303
    assert admin.post(f"/ticket/{ticket_id}/status", form).status_code == 303
    assert assign(admin, ticket_id, admin_key).status_code == 303
    assert assign(admin, ticket_id, admin_key).status_code == 303
    assert [c.field for c in changes(app, ticket_id)] == ["status", "assignee"]


# --- where the thread shows them -----------------------------------------------------------------


@pytest.mark.parametrize("app_config", [PER_PAGE], ids=["2 per page"])
def test_each_entry_follows_the_reply_that_was_last_on_that_reply_s_page(
    app: Flask, ticket_id: int, admin: Client, alice: Client, bob: Client
) -> None:
    assert set_status(admin, ticket_id, "waiting").status_code == 303  # before any reply
    assert alice.reply(ticket_id, "Floor 2.").status_code == 303  # ends the wait
    assert bob.reply(ticket_id, "Same here.").status_code == 303
    assert assign(admin, ticket_id, str(user_id(app, "admin"))).status_code == 303
    assert bob.reply(ticket_id, "Still jams.").status_code == 303
    assert edit(admin, ticket_id, "Printer jams on floor 2").status_code == 303

    r1, r2, r3 = reply_ids(app, ticket_id)
    c0, c1, c2, c3 = (c.id for c in changes(app, ticket_id))
    assert [c.after_reply_id for c in changes(app, ticket_id)] == [None, r1, r2, r3]

    for client in (admin, alice):
        first = client.get(f"/ticket/{ticket_id}").get_data(as_text=True)
        order = [
            f'id="change-{c0}"',
            f'id="reply-{r1}"',
            f'id="change-{c1}"',
            f'id="reply-{r2}"',
            f'id="change-{c2}"',
        ]
        places = [first.index(marker) for marker in order]
        assert places == sorted(places)
        assert f'id="change-{c3}"' not in first
        # The numbered list stops for an entry and goes on at the next number.
        between = first[first.index(f'id="change-{c1}"') : first.index(f'id="reply-{r2}"')]
        assert '<ol class="flasket-replies" start="2">' in between

        second = client.get(f"/ticket/{ticket_id}?page=2").get_data(as_text=True)
        assert second.index(f'id="reply-{r3}"') < second.index(f'id="change-{c3}"')
        for earlier in (c0, c1, c2):
            assert f'id="change-{earlier}"' not in second


def test_a_change_and_a_note_after_the_same_reply_show_in_the_order_they_happened(
    app: Flask, ticket_id: int, admin: Client, alice: Client
) -> None:
    assert set_status(admin, ticket_id, "waiting").status_code == 303
    assert admin.post(f"/ticket/{ticket_id}/note", {"note": "Called them."}).status_code == 303
    assert edit(admin, ticket_id, "Printer jams on floor 2").status_code == 303
    first, second = (c.id for c in changes(app, ticket_id))
    (note,) = rows(app, ext_models(app).Note, ticket_id=ticket_id)
    page = admin.get(f"/ticket/{ticket_id}").get_data(as_text=True)
    assert (
        page.index(f'id="change-{first}"')
        < page.index(f'id="note-{note.id}"')
        < page.index(f'id="change-{second}"')
    )
    # The requester reads the changes, not the note.
    assert f'id="note-{note.id}"' not in alice.get(f"/ticket/{ticket_id}").get_data(as_text=True)
    assert len(lines(alice, ticket_id)) == 2


# --- who reads what ------------------------------------------------------------------------------


def test_a_staff_only_entry_reaches_staff_alone(
    app: Flask, ticket_id: int, admin: Client, alice: Client, bob: Client
) -> None:
    admin_id = user_id(app, "admin")
    add_change(
        app,
        ticket_id,
        field="status",
        old_value="open",
        new_value="waiting",
        actor_id=admin_id,
        staff_only=True,
    )
    add_change(app, ticket_id, field="title", old_value="A", new_value="B", actor_id=admin_id)
    staff_line = "admin changed the status from Open to Waiting for requester just now"
    public_line = "admin changed the title from “A” to “B” just now"
    assert lines(admin, ticket_id) == [staff_line, public_line]
    for client in (alice, bob):
        assert lines(client, ticket_id) == [public_line]
        page = client.get(f"/ticket/{ticket_id}").get_data(as_text=True)
        assert "Waiting for requester just now" not in page


@pytest.mark.parametrize("app_config", [{"FLASKET_VISIBILITY": "own"}])
def test_with_own_visibility_the_requester_reads_the_history_and_others_get_404(
    app: Flask, admin: Client, alice: Client, carol: Client
) -> None:
    ticket_id = alice.submit("Printer jams", "Every second page.")
    assert set_status(admin, ticket_id, "waiting").status_code == 303
    line = "admin changed the status from Open to Waiting for requester just now"
    assert lines(alice, ticket_id) == [line]
    assert lines(admin, ticket_id) == [line]
    assert carol.get(f"/ticket/{ticket_id}").status_code == 404


def test_a_deleted_actor_is_named_a_deleted_user(
    app: Flask, ticket_id: int, admin: Client, dora: Client, alice: Client
) -> None:
    assert set_status(dora, ticket_id, "waiting").status_code == 303
    delete_user(app, "dora")
    (found,) = changes(app, ticket_id)
    assert found.actor_id is None
    assert lines(alice, ticket_id) == [
        f"{DELETED} changed the status from Open to Waiting for requester just now"
    ]


def test_an_assignment_to_a_user_deleted_since_still_reads_as_an_assignment(
    app: Flask, ticket_id: int, admin: Client, dora: Client, alice: Client
) -> None:
    assert assign(admin, ticket_id, str(user_id(app, "dora"))).status_code == 303
    assert assign(admin, ticket_id, str(user_id(app, "admin"))).status_code == 303
    delete_user(app, "dora")
    assert lines(alice, ticket_id) == [
        f"admin assigned this ticket to {DELETED} just now",
        f"admin reassigned this ticket from {DELETED} to admin just now",
    ]


def test_an_unassignment_whose_users_are_both_deleted_reads_as_removing_the_assignee(
    app: Flask, ticket_id: int, admin: Client, alice: Client
) -> None:
    add_change(app, ticket_id, field="assignee", actor_id=user_id(app, "admin"))
    assert lines(alice, ticket_id) == ["admin removed the assignee just now"]


def test_entries_a_release_does_not_know_are_said_plainly(
    app: Flask, ticket_id: int, alice: Client
) -> None:
    admin_id = user_id(app, "alice")
    add_change(app, ticket_id, field="priority", old_value="1", new_value="2", actor_id=admin_id)
    add_change(app, ticket_id, field="status", old_value=None, new_value="escalated")
    add_change(app, ticket_id, field="duplicate", new_value="not a number", actor_id=admin_id)
    assert lines(alice, ticket_id) == [
        "alice changed this ticket just now",
        f"{DELETED} set the status to Escalated just now",
        "alice changed this ticket just now",
    ]


# --- escaping ------------------------------------------------------------------------------------


@pytest.mark.parametrize("app_config", [{"FLASKET_CATEGORIES": MARKUP_CATEGORIES}])
def test_titles_category_labels_and_values_in_history_lines_are_escaped(
    app: Flask, alice: Client, admin: Client, bob: Client
) -> None:
    ticket_id = alice.submit("<script>alert(1)</script>", "Body.", area="one")
    response = admin.post(
        f"/ticket/{ticket_id}/edit", {"title": "Plain <b>bold</b> title", "area": "<b>two</b>"}
    )
    assert response.status_code == 303
    assert summary(app, ticket_id) == [
        ("title", "<script>alert(1)</script>", "Plain <b>bold</b> title", None),
        ("category", "one", "<b>two</b>", "area"),
    ]
    # And a category value no longer configured, which is shown as stored.
    add_change(
        app,
        ticket_id,
        field="category",
        detail="area",
        old_value="<b>two</b>",
        new_value="<svg onload=gone()>",
        actor_id=user_id(app, "admin"),
    )
    for client in (admin, bob):
        page = client.get(f"/ticket/{ticket_id}").get_data(as_text=True)
        found = [line for _, line in CHANGE.findall(page)]
        assert len(found) == 3
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in found[0]
        assert "Plain &lt;b&gt;bold&lt;/b&gt; title" in found[0]
        assert "&lt;i&gt;Area&lt;/i&gt;" in found[1]
        assert "&lt;script&gt;one()&lt;/script&gt;" in found[1]
        assert "&lt;img src=x onerror=two()&gt;" in found[1]
        assert "&lt;svg onload=gone()&gt;" in found[2]
        for raw in ("<script", "<img", "<svg", "<b>", "<i>"):
            assert raw not in "".join(found)
        assert "<script>alert(1)" not in page
        assert "<script>one()" not in page
        assert "<img src=x" not in page
        assert "<svg onload" not in page
        assert [words(line) for line in found] == [
            "admin changed the title from “<script>alert(1)</script>” to"
            " “Plain <b>bold</b> title” just now",
            "admin changed <i>Area</i> from <script>one()</script> to"
            " <img src=x onerror=two()> just now",
            "admin changed <i>Area</i> from <img src=x onerror=two()> to"
            " <svg onload=gone()> just now",
        ]


# --- the statements a page runs ------------------------------------------------------------------


def make_twenty_entries(
    app: Flask, ticket_id: int, admin: Client, dora: Client, alice: Client, bob: Client
) -> None:
    """Twenty entries of every kind, by several people, after one reply of Bob's."""
    (reply_id,) = reply_ids(app, ticket_id)
    other = alice.submit("Printer jams again", "Same.")
    admin_key, dora_key = str(user_id(app, "admin")), str(user_id(app, "dora"))
    done = [
        set_status(admin, ticket_id, "waiting"),
        set_status(admin, ticket_id, "open"),
        assign(admin, ticket_id, admin_key),
        assign(admin, ticket_id, dora_key),
        assign(dora, ticket_id, ""),
        edit(admin, ticket_id, "Printer jams on floor 2", urgency="Low", topic="Question"),
        alice.post(f"/ticket/{ticket_id}/revise", {"body": "Every page."}),
        bob.post(f"/ticket/{ticket_id}/replies/{reply_id}/revise", {"body": "Me too."}),
        admin.post(f"/ticket/{ticket_id}/replies/{reply_id}/hide"),
        admin.post(f"/ticket/{ticket_id}/replies/{reply_id}/unhide"),
        alice.post(f"/ticket/{ticket_id}/close"),
        alice.post(f"/ticket/{ticket_id}/reopen"),
        set_status(dora, ticket_id, "closed", "wont_fix"),
        set_status(admin, ticket_id, "open"),
        admin.post(f"/ticket/{other}/duplicate", {"original": str(ticket_id)}),
    ]
    assert [r.status_code for r in done] == [303] * len(done)
    alice_id = user_id(app, "alice")
    add_change(app, ticket_id, field="duplicate", new_value=str(other), actor_id=alice_id)
    add_change(
        app,
        ticket_id,
        field="status",
        old_value="open",
        new_value="waiting",
        actor_id=user_id(app, "dora"),
        staff_only=True,
    )
    add_change(app, ticket_id, field="priority", new_value="2", actor_id=alice_id)
    assert len(changes(app, ticket_id)) == 20


def test_the_ticket_page_runs_as_many_statements_with_twenty_entries_as_with_none(
    app: Flask,
    ticket_id: int,
    admin: Client,
    dora: Client,
    alice: Client,
    bob: Client,
    inbox: Inbox,
) -> None:
    assert bob.reply(ticket_id, "Same here.").status_code == 303
    readers = {"admin": admin, "alice": alice, "bob": bob}

    def count() -> dict[str, int]:
        assert inbox.messages is not None  # every delivery so far is done
        found = {}
        for name, client in readers.items():
            assert client.get(f"/ticket/{ticket_id}").status_code == 200  # warm
            with counting_queries(app) as statements:
                assert client.get(f"/ticket/{ticket_id}").status_code == 200
            found[name] = len(statements)
        return found

    before = count()
    make_twenty_entries(app, ticket_id, admin, dora, alice, bob)
    after = count()
    # One statement more for every reader: a ticket is a duplicate of this one now, and the
    # page lists the duplicates (one statement, however many); the entries cost none.
    assert after == {name: statements + 1 for name, statements in before.items()}
    assert len(lines(admin, ticket_id)) == 20
    # Not the two staff-only ones: the one added, and the original's "closed #N as a
    # duplicate of this ticket".
    assert len(lines(alice, ticket_id)) == 18
    assert len(lines(bob, ticket_id)) == 18
