"""The staff queues, the assignee filter, who waits on whom, and bulk actions on lists.

``/ticket/all?queue=`` (staff only) lists one of five queues, whose counts the staff overview
shows; ``awaiting_staff`` decides who a ticket waits on; ``POST /ticket/bulk`` assigns
or sets the status of the tickets ticked on a list, each as if changed from its page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import Flask

from flasket import queries, signals
from flasket.user_keys import MAX_KEY_LENGTH
from tests.helpers import Client, Inbox, add_staff, ext_models, rows, text, ticket_row, user_id
from tests.hostapp import db

QUEUES = ("mine", "unassigned", "waiting_on_staff", "waiting_on_requester", "recently_closed")
FLASH = re.compile(r'<p class="flasket-message flasket-message--(\w+)">(.*?)</p>', re.S)
LISTED = re.compile(r'href="/ticket/(\d+)"><span class="[^"]*">#(\d+)</span>')
QUEUE_COUNT = re.compile(r'href="/ticket/all\?queue=(\w+)"><strong[^>]*>([\d,]+)(\+?)</strong>')
TWO_WAITING = [
    {"name": "new", "label": "New", "kind": "open"},
    {"name": "pending", "label": "Pending", "kind": "open", "waiting_on_requester": True},
    {"name": "need_info", "label": "Need info", "kind": "open", "waiting_on_requester": True},
    {"name": "on_hold", "label": "On hold", "kind": "open"},
    {"name": "solved", "label": "Solved", "kind": "closed"},
]
NOT_A_NUMBER = "The tickets to change must be given by their numbers."
ACTION_CSRF = "Nothing was changed because the page with that button had expired."


def key(app: Flask, name: str) -> str:
    return str(user_id(app, name))


def awaiting_staff(app: Flask, ticket_id: int) -> bool:
    return bool(ticket_row(app, ticket_id).awaiting_staff)


def listed(client: Client, url: str) -> list[int]:
    """The ticket numbers a list page shows, in order."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, text(response)[:500])
    found = LISTED.findall(response.get_data(as_text=True))
    assert all(a == b for a, b in found)
    return [int(a) for a, _ in found]


def queue(client: Client, name: str) -> set[int]:
    return set(listed(client, f"/ticket/all?queue={name}&per_page=100"))


def overview_counts(client: Client) -> dict[str, int]:
    page = client.get("/ticket/").get_data(as_text=True)
    start = page.index('<section aria-labelledby="flasket-queues">')
    section = page[start : page.index("</section>", start)]
    found = {name: int(count.replace(",", "")) for name, count, _ in QUEUE_COUNT.findall(section)}
    assert list(found) == list(QUEUES), found
    return found


def flashes(client: Client, response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 303, text(response)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    return [(kind, html.unescape(message.strip())) for kind, message in FLASH.findall(page)]


def assign(client: Client, ticket_id: int, assignee: str) -> None:
    response = client.post(f"/ticket/{ticket_id}/assign", {"assignee": assignee})
    assert response.status_code == 303, text(response)


def set_status(client: Client, ticket_id: int, status: str) -> None:
    response = client.post(f"/ticket/{ticket_id}/status", {"status": status})
    assert response.status_code == 303, text(response)


def closed_days_ago(app: Flask, ticket_id: int, days: float) -> None:
    with app.app_context():
        found = db.session.get(ext_models(app).Ticket, ticket_id)
        assert found is not None
        found.closed_at = datetime.now(timezone.utc) - timedelta(days=days)
        db.session.commit()


@pytest.fixture
def dora(app: Flask, login: Callable[[str | None], Client]) -> Client:
    """A second staff member."""
    add_staff(app, "dora")
    return login("dora")


# --- who a ticket waits on ------------------------------------------------------------------


def test_a_ticket_awaits_staff_until_staff_answer_and_again_after_anyone_elses_reply(
    app: Flask, alice: Client, bob: Client, admin: Client, dora: Client
) -> None:
    ticket_id = alice.submit("Printer jams", "Every second page.")
    assert awaiting_staff(app, ticket_id)  # a new ticket waits for its first answer
    assert queue(admin, "waiting_on_staff") == {ticket_id}

    steps = [
        (admin, "Which printer?", False),
        (alice, "The one on floor 2.", True),
        (dora, "Try turning it off and on.", False),
        (bob, "Same here.", True),  # any reply but staff's waits on staff
        (admin, "Fixed for everyone?", False),
        (admin, "Closing soon.", False),
        (alice, "Still broken.", True),
        (alice, "And again.", True),
    ]
    for client, body, expected in steps:
        assert client.reply(ticket_id, body).status_code == 303
        assert awaiting_staff(app, ticket_id) is expected, body
        assert (ticket_id in queue(admin, "waiting_on_staff")) is expected, body

    # Following, closing and reopening say nothing: the flag stays.
    assert bob.post(f"/ticket/{ticket_id}/follow").status_code == 303
    set_status(admin, ticket_id, "closed")
    assert awaiting_staff(app, ticket_id) is True
    assert queue(admin, "waiting_on_staff") == set()  # closed
    assert alice.post(f"/ticket/{ticket_id}/reopen").status_code == 303
    assert queue(admin, "waiting_on_staff") == {ticket_id}


def test_a_staff_members_own_ticket_awaits_staff_until_another_staff_reply(
    app: Flask, admin: Client, dora: Client
) -> None:
    ticket_id = admin.submit("My laptop", "Broken.")
    assert awaiting_staff(app, ticket_id)
    assert admin.reply(ticket_id, "More details.").status_code == 303
    assert not awaiting_staff(app, ticket_id)


def test_a_staff_reply_that_sets_waiting_and_the_requesters_reply_and_close(
    app: Flask, alice: Client, admin: Client
) -> None:
    ticket_id = alice.submit("Printer jams", "Every second page.")
    response = admin.post(f"/ticket/{ticket_id}", {"body": "Which one?", "status": "waiting"})
    assert response.status_code == 303
    row = ticket_row(app, ticket_id)
    assert (row.status, row.awaiting_staff) == ("waiting", False)
    assert queue(admin, "waiting_on_requester") == {ticket_id}
    assert queue(admin, "waiting_on_staff") == set()

    response = alice.post(f"/ticket/{ticket_id}", {"body": "Works now.", "status": "closed"})
    assert response.status_code == 303
    row = ticket_row(app, ticket_id)
    assert (row.state, row.awaiting_staff) == ("closed", True)
    for name in ("waiting_on_staff", "waiting_on_requester", "mine", "unassigned"):
        assert queue(admin, name) == set(), name
    assert queue(admin, "recently_closed") == {ticket_id}


def test_waiting_set_without_a_reply_waits_on_the_requester_until_they_answer(
    app: Flask, alice: Client, admin: Client
) -> None:
    ticket_id = alice.submit("Printer jams", "Every second page.")
    set_status(admin, ticket_id, "waiting")
    # Nobody answered, but the status says whose turn it is.
    assert awaiting_staff(app, ticket_id) is True
    assert queue(admin, "waiting_on_staff") == set()
    assert queue(admin, "waiting_on_requester") == {ticket_id}

    assert alice.reply(ticket_id, "Floor 2.").status_code == 303
    assert ticket_row(app, ticket_id).status == "open"
    assert queue(admin, "waiting_on_staff") == {ticket_id}
    assert queue(admin, "waiting_on_requester") == set()


@pytest.mark.parametrize("app_config", [{"FLASKET_STATUSES": TWO_WAITING}], ids=["two waiting"])
def test_every_status_that_waits_on_the_requester_fills_that_queue(
    app: Flask, alice: Client, bob: Client, admin: Client
) -> None:
    pending = alice.submit("Pending one", "A.")
    need_info = alice.submit("Need info one", "B.")
    on_hold = alice.submit("On hold one", "C.")
    answered = alice.submit("Answered one", "D.")
    fresh = bob.submit("Fresh one", "E.")
    set_status(admin, pending, "pending")
    set_status(admin, need_info, "need_info")
    set_status(admin, on_hold, "on_hold")
    assert admin.reply(answered, "Try this.").status_code == 303

    assert queue(admin, "waiting_on_requester") == {pending, need_info}
    # On hold is no waiting status: the requester spoke last, so it waits on staff.
    assert queue(admin, "waiting_on_staff") == {on_hold, fresh}
    counts = overview_counts(admin)
    assert counts["waiting_on_requester"] == 2
    assert counts["waiting_on_staff"] == 2

    # The requester's answer ends either wait: back to the first open status, staff's turn.
    assert alice.reply(need_info, "Here it is.").status_code == 303
    assert ticket_row(app, need_info).status == "new"
    assert queue(admin, "waiting_on_requester") == {pending}
    assert queue(admin, "waiting_on_staff") == {on_hold, fresh, need_info}
    # Someone else's reply ends no wait.
    assert bob.reply(pending, "Me too.").status_code == 303
    assert ticket_row(app, pending).status == "pending"
    assert queue(admin, "waiting_on_requester") == {pending}


# --- the queues and their counts ---------------------------------------------------------


@pytest.fixture
def desk(app: Flask, alice: Client, bob: Client, admin: Client, dora: Client) -> dict[str, int]:
    """Tickets in every queue, named by what they are."""
    found = {
        "new": alice.submit("New and unassigned", "1"),
        "answered_mine": alice.submit("Answered, mine", "2"),
        "waiting_doras": bob.submit("Waiting, dora's", "3"),
        "closed_mine": bob.submit("Closed today, mine", "4"),
        "closed_long_ago": alice.submit("Closed long ago", "5"),
        "closed_this_week": alice.submit("Closed this week", "6"),
        "followed_up_mine": bob.submit("Followed up, mine", "7"),
        "answered_unassigned": bob.submit("Answered, unassigned", "8"),
    }
    for name in ("answered_mine", "closed_mine", "followed_up_mine"):
        assign(admin, found[name], key(app, "admin"))
    assign(admin, found["waiting_doras"], key(app, "dora"))
    for name in ("answered_mine", "followed_up_mine", "answered_unassigned"):
        assert admin.reply(found[name], "Try this.").status_code == 303
    assert bob.reply(found["followed_up_mine"], "Did not help.").status_code == 303
    set_status(dora, found["waiting_doras"], "waiting")
    for name in ("closed_mine", "closed_long_ago", "closed_this_week"):
        set_status(admin, found[name], "closed")
    closed_days_ago(app, found["closed_long_ago"], 8)
    closed_days_ago(app, found["closed_this_week"], 6.9)
    return found


def test_each_queue_lists_its_tickets_and_the_overview_counts_them(
    app: Flask, desk: dict[str, int], admin: Client, dora: Client
) -> None:
    expected = {
        "mine": {"answered_mine", "followed_up_mine"},
        "unassigned": {"new", "answered_unassigned"},
        "waiting_on_staff": {"new", "followed_up_mine"},
        "waiting_on_requester": {"waiting_doras"},
        "recently_closed": {"closed_mine", "closed_this_week"},
    }
    for name, tickets in expected.items():
        assert queue(admin, name) == {desk[t] for t in tickets}, name
    assert overview_counts(admin) == {name: len(t) for name, t in expected.items()}

    # "Mine" is the viewer's: dora's holds the ticket waiting on its requester.
    assert queue(dora, "mine") == {desk["waiting_doras"]}
    assert overview_counts(dora)["mine"] == 1
    assert queue(dora, "unassigned") == queue(admin, "unassigned")

    # The overview's "Assigned to me" lists the open ones, last updated first.
    page = admin.get("/ticket/").get_data(as_text=True)
    start = page.index('<section aria-labelledby="flasket-mine">')
    mine = page[start : page.index("</section>", start)]
    assert "Assigned to me" in mine
    assert "My recent tickets" not in page
    assert [int(a) for a, _ in LISTED.findall(mine)] == [
        desk["followed_up_mine"],
        desk["answered_mine"],
    ]
    assert 'href="/ticket/all?queue=mine"' in mine


def test_a_queue_page_names_its_queue_and_says_when_it_is_empty(
    app: Flask, alice: Client, admin: Client
) -> None:
    page = text(admin.get("/ticket/all?queue=mine"))
    assert "<h1>Assigned to me</h1>" in page
    assert "No open ticket is assigned to you." in page
    assert 'aria-current="page">Assigned to me</a>' in page
    alice.submit("Printer jams", "Every second page.")
    page = text(admin.get("/ticket/all?queue=unassigned"))
    assert "<h1>Unassigned</h1>" in page
    assert "Printer jams" in page
    page = text(admin.get("/ticket/all?queue=recently_closed&q=nothing"))
    assert "No ticket closed in the last 7 days matches these filters." in page


def test_a_queue_keeps_the_lists_other_filters(
    app: Flask, desk: dict[str, int], admin: Client
) -> None:
    by_bob = listed(admin, f"/ticket/all?queue=mine&author_id={key(app, 'bob')}")
    assert by_bob == [desk["followed_up_mine"]]
    oldest = listed(admin, "/ticket/all?queue=unassigned&sort=oldest")
    assert oldest == [desk["new"], desk["answered_unassigned"]]
    assert listed(admin, "/ticket/all?queue=unassigned&q=Answered") == [
        desk["answered_unassigned"]
    ]


@pytest.mark.parametrize("app_config", [{"FLASKET_VISIBILITY": "own"}], ids=["own"])
def test_staff_queues_hold_every_ticket_under_own_visibility(
    app: Flask, desk: dict[str, int], admin: Client
) -> None:
    assert queue(admin, "unassigned") == {desk["new"], desk["answered_unassigned"]}
    assert overview_counts(admin)["unassigned"] == 2


@pytest.mark.parametrize("name", QUEUES)
def test_only_staff_open_the_queues(
    app: Flask, alice: Client, carol: Client, admin: Client, name: str
) -> None:
    alice.submit("Printer jams", "Every second page.")
    for client in (alice, carol):
        response = client.get(f"/ticket/all?queue={name}")
        assert response.status_code == 403
        assert "Only staff can open the queues." in text(response)
    assert admin.get(f"/ticket/all?queue={name}").status_code == 200


@pytest.mark.parametrize("value", ["all", "Mine", "waiting", "mine,unassigned", "x" * 300])
def test_a_queue_that_does_not_exist_is_400(alice: Client, admin: Client, value: str) -> None:
    for client in (admin, alice):
        response = client.get("/ticket/all", query_string={"queue": value})
        assert response.status_code == 400
        assert f"“queue” must be one of: {', '.join(QUEUES)}." in text(response)


def test_people_who_are_not_staff_see_no_queues_bulk_form_or_assignee_column(
    app: Flask, alice: Client, admin: Client
) -> None:
    ticket_id = alice.submit("Printer jams", "Every second page.")
    assign(admin, ticket_id, key(app, "admin"))
    index = text(alice.get("/ticket/"))
    assert 'aria-labelledby="flasket-queues"' not in index
    assert "My recent tickets" in index
    assert "?queue=" not in index
    listing = text(alice.get("/ticket/all"))
    assert "Printer jams" in listing
    for staff_only in ("?queue=", 'id="flasket-bulk"', 'name="ticket"', "Assignee", "/bulk"):
        assert staff_only not in listing, staff_only

    staff_index = text(admin.get("/ticket/"))
    assert 'aria-labelledby="flasket-queues"' in staff_index
    staff_listing = text(admin.get("/ticket/all"))
    for shown in ("?queue=mine", 'id="flasket-bulk"', f'name="ticket" value="{ticket_id}"'):
        assert shown in staff_listing, shown
    assert '<th scope="col">Assignee</th>' in staff_listing
    assert 'name="assignee"' in staff_listing


# --- the assignee filter ---------------------------------------------------------------------


def test_the_assignee_filter_lists_one_persons_or_nobodys_tickets_for_anyone(
    app: Flask, desk: dict[str, int], alice: Client, admin: Client
) -> None:
    admins = key(app, "admin")
    for client in (admin, alice):
        assert set(listed(client, f"/ticket/all?assignee={admins}")) == {
            desk["answered_mine"],
            desk["followed_up_mine"],
        }
        assert set(listed(client, f"/ticket/all?assignee={admins}&status=all")) == {
            desk["answered_mine"],
            desk["followed_up_mine"],
            desk["closed_mine"],
        }
        assert set(listed(client, "/ticket/all?assignee=none")) == {
            desk["new"],
            desk["answered_unassigned"],
        }
        assert set(listed(client, f"/ticket/all?assignee={key(app, 'dora')}")) == {
            desk["waiting_doras"]
        }
        # Someone with no tickets: an empty list that says the filter matched nothing.
        page = text(client.get(f"/ticket/all?assignee={key(app, 'carol')}"))
        assert "No open tickets match these filters." in page
    # The staff list marks the filter chosen.
    page = text(admin.get(f"/ticket/all?assignee={admins}"))
    assert f'<option value="{admins}" selected>Me (admin)</option>' in page


@pytest.mark.parametrize("value", ["99999", "abc", "042", "9" * 30, "-1", "x" * 300])
def test_an_assignee_filter_naming_nobody_is_400(alice: Client, admin: Client, value: str) -> None:
    for client in (admin, alice):
        response = client.get("/ticket/all", query_string={"assignee": value})
        assert response.status_code == 400
        if len(value) > MAX_KEY_LENGTH:
            assert f"“assignee” may be at most {MAX_KEY_LENGTH} characters long." in text(response)
        else:
            assert "There is no such user." in text(response)


@pytest.mark.parametrize("app_config", [{"FLASKET_VISIBILITY": "own"}], ids=["own"])
def test_the_assignee_filter_shows_only_tickets_the_reader_may_read(
    app: Flask, desk: dict[str, int], alice: Client, carol: Client
) -> None:
    admins = key(app, "admin")
    assert set(listed(alice, f"/ticket/all?assignee={admins}")) == {desk["answered_mine"]}
    assert listed(carol, f"/ticket/all?assignee={admins}") == []


# --- bulk actions ---------------------------------------------------------------------------


@pytest.fixture
def three(app: Flask, alice: Client, bob: Client, inbox: Inbox) -> list[int]:
    """Three of alice's open tickets; bob follows the first; the inbox starts empty."""
    found = [alice.submit(f"Ticket {n}", f"Body {n}.") for n in (1, 2, 3)]
    assert bob.post(f"/ticket/{found[0]}/follow").status_code == 303
    inbox.clear()
    return found


@pytest.fixture
def sent() -> Iterator[list[tuple[str, int]]]:
    caught: list[tuple[str, int]] = []
    receivers = []
    for signal in (
        signals.ticket_assigned,
        signals.ticket_closed,
        signals.ticket_status_changed,
        signals.ticket_reopened,
    ):

        def receive(sender: Any, signal: Any = signal, **kwargs: Any) -> None:
            caught.append((signal.name, kwargs["ticket"].id))

        signal.connect(receive)
        receivers.append((signal, receive))
    yield caught
    for signal, receive in receivers:
        signal.disconnect(receive)


def bulk(client: Client, tickets: list[Any], csrf: bool = True, **fields: Any) -> Any:
    return post_bulk(client, tickets, fields, csrf)


def post_bulk(
    client: Client, tickets: list[Any], fields: dict[str, Any], csrf: bool = True
) -> Any:
    """Post the bulk form with ``tickets`` ticked (one ``ticket`` field each)."""
    data: dict[str, Any] = {"ticket": [str(t) for t in tickets], "back": "", **fields}
    return client.post("/ticket/bulk", data, csrf=csrf)


def snapshot(app: Flask) -> list[tuple[Any, ...]]:
    """What a bulk action could change, ticket by ticket, and the outbox."""
    models = ext_models(app)
    tickets = sorted(
        (t.id, t.assignee_id, t.status, t.state, t.resolution, t.updated_at, t.follower_count)
        for t in rows(app, models.Ticket)
    )
    return [*tickets, (len(rows(app, models.OutboxEvent)),)]


def test_bulk_assign_of_one_ticket_assigns_it_and_mails_the_assignee(
    app: Flask, three: list[int], admin: Client, dora: Client, inbox: Inbox, sent: list[Any]
) -> None:
    response = bulk(
        admin, three[1:2], action="assign", assignee=key(app, "dora"), back="queue=unassigned"
    )

    assert response.headers["Location"] == "/ticket/all?queue=unassigned"
    assert flashes(admin, response) == [("success", f"1 ticket changed: #{three[1]}.")]
    assert [ticket_row(app, t).assignee_id for t in three] == [None, user_id(app, "dora"), None]
    (mail,) = inbox.messages
    assert mail.envelope_to == ["dora@example.test"]
    assert mail.message["X-Flasket-Ticket"] == str(three[1])
    assert f"admin assigned ticket #{three[1]} to you" in mail.part("plain")
    assert sent == [("ticket-assigned", three[1])]
    assert queue(dora, "mine") == {three[1]}


def test_bulk_close_of_one_ticket_records_the_resolution_and_mails_its_followers(
    app: Flask, three: list[int], admin: Client, inbox: Inbox, sent: list[Any]
) -> None:
    response = bulk(admin, three[:1], action="status", status="closed", resolution="wont_fix")

    assert flashes(admin, response) == [("success", f"1 ticket changed: #{three[0]}.")]
    row = ticket_row(app, three[0])
    assert (row.status, row.state, row.resolution) == ("closed", "closed", "wont_fix")
    assert row.closed_by_id == user_id(app, "admin")
    assert [ticket_row(app, t).state for t in three[1:]] == ["open", "open"]
    mails = inbox.messages
    assert sorted(m.envelope_to[0] for m in mails) == ["alice@example.test", "bob@example.test"]
    assert all("Resolution: Won't fix" in m.part("plain") for m in mails)
    assert sent == [("ticket-closed", three[0])]


def test_bulk_leaves_a_ticket_that_has_the_status_or_assignee_already_and_names_it(
    app: Flask, three: list[int], admin: Client, inbox: Inbox, sent: list[Any]
) -> None:
    set_status(admin, three[0], "waiting")
    assign(admin, three[1], key(app, "admin"))
    inbox.clear()
    sent.clear()
    before = snapshot(app)

    left = [
        (three[0], {"action": "status", "status": "waiting"}),
        (three[1], {"action": "assign", "assignee": key(app, "admin")}),
        (2_000_000, {"action": "assign", "assignee": ""}),
    ]

    for number, fields in left:
        assert flashes(admin, post_bulk(admin, [number], fields)) == [
            (
                "info",
                "1 ticket was left as it was (it had that already, or you cannot change it):"
                f" #{number}.",
            )
        ]
    assert snapshot(app) == before
    assert inbox.messages == []
    assert sent == []


def test_a_bulk_form_with_two_ticked_tickets_changes_both(
    app: Flask, three: list[int], admin: Client
) -> None:
    response = bulk(admin, three[:2], action="status", status="waiting")
    assert response.status_code == 303, text(response)
    assert [ticket_row(app, t).status for t in three] == ["waiting", "waiting", "open"]


def test_bulk_assign_assigns_each_ticket_and_mails_the_assignee_once_per_ticket(
    app: Flask, three: list[int], admin: Client, dora: Client, inbox: Inbox, sent: list[Any]
) -> None:
    response = bulk(
        admin, three, action="assign", assignee=key(app, "dora"), back="queue=unassigned"
    )

    assert response.headers["Location"] == "/ticket/all?queue=unassigned"
    numbers = f"#{three[0]}, #{three[1]}, and #{three[2]}"
    assert flashes(admin, response) == [("success", f"3 tickets changed: {numbers}.")]
    assert [ticket_row(app, t).assignee_id for t in three] == [user_id(app, "dora")] * 3
    mails = inbox.messages
    assert [m.envelope_to for m in mails] == [["dora@example.test"]] * 3
    assert sorted(m.message["X-Flasket-Ticket"] for m in mails) == sorted(map(str, three))
    assert sent == [("ticket-assigned", t) for t in three]
    assert queue(admin, "unassigned") == set()
    assert queue(dora, "mine") == set(three)


def test_bulk_unassign_and_self_assign_mail_nobody(
    app: Flask, three: list[int], admin: Client, inbox: Inbox, sent: list[Any]
) -> None:
    assert bulk(admin, three, action="assign", assignee=key(app, "admin")).status_code == 303
    assert [ticket_row(app, t).assignee_id for t in three] == [user_id(app, "admin")] * 3
    assert bulk(admin, three[:2], action="assign", assignee="").status_code == 303
    assert [ticket_row(app, t).assignee_id for t in three] == [None, None, user_id(app, "admin")]
    assert inbox.messages == []
    assert len(sent) == 5


def test_bulk_status_moves_each_ticket_and_mails_each_tickets_followers(
    app: Flask, three: list[int], admin: Client, inbox: Inbox, sent: list[Any]
) -> None:
    response = bulk(admin, three, action="status", status="waiting")

    assert response.status_code == 303
    assert [ticket_row(app, t).status for t in three] == ["waiting"] * 3
    assert sorted(m.envelope_to[0] for m in inbox.messages) == [
        "alice@example.test",
        "alice@example.test",
        "alice@example.test",
        "bob@example.test",
    ]
    assert sent == [("ticket-status-changed", t) for t in three]
    assert queue(admin, "waiting_on_requester") == set(three)


def test_bulk_close_with_a_resolution_sends_each_ticket_its_closed_mail(
    app: Flask, three: list[int], admin: Client, inbox: Inbox, sent: list[Any]
) -> None:
    response = bulk(admin, three, action="status", status="closed", resolution="wont_fix")

    assert response.status_code == 303
    for number in three:
        row = ticket_row(app, number)
        assert (row.status, row.state, row.resolution) == ("closed", "closed", "wont_fix")
        assert row.closed_by_id == user_id(app, "admin")
    mails = inbox.messages
    assert len(mails) == 4
    for mail in mails:
        assert "admin closed ticket" in mail.part("plain")
        assert "Resolution: Won't fix" in mail.part("plain")
    assert sorted((m.message["X-Flasket-Ticket"], m.envelope_to[0]) for m in mails) == sorted(
        [(str(t), "alice@example.test") for t in three] + [(str(three[0]), "bob@example.test")]
    )
    assert sent == [("ticket-closed", t) for t in three]
    assert queue(admin, "recently_closed") == set(three)


def test_bulk_names_the_tickets_it_left_as_they_were(
    app: Flask, three: list[int], admin: Client, dora: Client, inbox: Inbox, sent: list[Any]
) -> None:
    assign(admin, three[0], key(app, "dora"))
    inbox.clear()
    sent.clear()
    missing = 2_000_000

    response = bulk(
        admin,
        [three[0], three[1], missing, three[1]],
        action="assign",
        assignee=key(app, "dora"),
    )

    assert flashes(admin, response) == [
        ("success", f"1 ticket changed: #{three[1]}."),
        (
            "info",
            "2 tickets were left as they were (they had that already, or you cannot change"
            f" them): #{three[0]} and #{missing}.",
        ),
    ]
    assert [ticket_row(app, t).assignee_id for t in three] == [
        user_id(app, "dora"),
        user_id(app, "dora"),
        None,
    ]
    assert [m.envelope_to for m in inbox.messages] == [["dora@example.test"]]
    assert sent == [("ticket-assigned", three[1])]

    # A status the ticket has already: left as it is, named.
    set_status(admin, three[2], "waiting")
    inbox.clear()
    response = bulk(admin, [three[2], three[0]], action="status", status="waiting")
    assert flashes(admin, response) == [
        ("success", f"1 ticket changed: #{three[0]}."),
        (
            "info",
            "1 ticket was left as it was (it had that already, or you cannot change it):"
            f" #{three[2]}.",
        ),
    ]


def test_bulk_with_nothing_ticked_says_so_and_goes_back(
    app: Flask, three: list[int], admin: Client, inbox: Inbox
) -> None:
    before = snapshot(app)
    response = bulk(admin, [], action="status", status="closed", back="queue=mine")
    assert response.headers["Location"] == "/ticket/all?queue=mine"
    assert flashes(admin, response) == [("error", "Tick the tickets to change first.")]
    assert snapshot(app) == before
    assert inbox.messages == []


def test_bulk_takes_at_most_100_tickets(
    app: Flask, three: list[int], admin: Client, inbox: Inbox
) -> None:
    before = snapshot(app)
    too_many = [*three, *range(1_000_000, 1_000_098)]
    assert len(too_many) == 101

    response = bulk(admin, too_many, action="status", status="waiting")

    assert response.status_code == 400
    assert "At most 100 tickets can be changed at once." in text(response)
    assert snapshot(app) == before
    assert inbox.messages == []

    # A hundred is fine: the three move, the missing ones are named as left.
    response = bulk(admin, too_many[:100], action="status", status="waiting")
    assert response.status_code == 303
    assert [ticket_row(app, t).status for t in three] == ["waiting"] * 3


@pytest.mark.parametrize(
    "number", ["0", "007", "abc", "-1", "1.0", "+1", " 1", "", "2147483648", "\uff11", "1e3"]
)
def test_a_bulk_ticket_that_is_no_ticket_number_is_400(
    app: Flask, three: list[int], admin: Client, inbox: Inbox, number: str
) -> None:
    before = snapshot(app)

    for ticked in ([number], [three[0], number], [number, three[1]]):
        response = bulk(admin, ticked, action="status", status="waiting")

        assert response.status_code == 400
        assert NOT_A_NUMBER in text(response)
    assert snapshot(app) == before
    assert inbox.messages == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"action": "status", "status": "deleted"}, "Choose one of the statuses in the list."),
        ({"action": "status", "status": ""}, "Choose one of the statuses in the list."),
        (
            {"action": "status", "status": "closed", "resolution": "because"},
            "Choose one of the resolutions in the list.",
        ),
        ({"action": "delete"}, "Choose what to do with the tickets."),
        ({}, "Choose what to do with the tickets."),
        ({"action": "assign", "assignee": "99999"}, "There is no such user."),
        ({"action": "assign", "assignee": "#alice"}, "alice is not staff"),
    ],
)
def test_a_bulk_form_asking_for_something_unknown_is_400_and_changes_nothing(
    app: Flask,
    three: list[int],
    admin: Client,
    inbox: Inbox,
    sent: list[Any],
    fields: dict[str, str],
    message: str,
) -> None:
    if fields.get("assignee") == "#alice":
        fields = {**fields, "assignee": key(app, "alice")}
    before = snapshot(app)

    response = post_bulk(admin, three[:1], fields)

    assert response.status_code == 400
    assert message in text(response)
    assert snapshot(app) == before
    assert inbox.messages == []
    assert sent == []


def test_a_bulk_assignee_that_is_no_users_key_is_400(
    app: Flask, three: list[int], admin: Client, inbox: Inbox
) -> None:
    before = snapshot(app)
    response = bulk(admin, three[:1], action="assign", assignee="abc")
    assert response.status_code == 400
    assert "There is no such user." in text(response)
    assert snapshot(app) == before


@pytest.mark.parametrize("field", ["action", "assignee", "status", "back", "csrf_token"])
def test_only_the_ticked_tickets_may_repeat_in_a_bulk_form(
    app: Flask, three: list[int], admin: Client, inbox: Inbox, field: str
) -> None:
    before = snapshot(app)
    fields: dict[str, Any] = {
        "ticket": [str(t) for t in three],
        "action": "assign",
        "assignee": key(app, "admin"),
        "status": "waiting",
        "back": "queue=mine",
        "csrf_token": admin.csrf(),
    }
    fields[field] = [fields[field]] * 2

    response = admin.post("/ticket/bulk", fields, csrf=False)

    assert response.status_code == 400
    assert f"The parameter “{field}” was given more than once." in text(response)
    assert snapshot(app) == before
    assert inbox.messages == []
    # Elsewhere "ticket" may not repeat either.
    repeated = admin.post(f"/ticket/{three[0]}/assign", {"assignee": "", "ticket": ["1", "1"]})
    assert repeated.status_code == 400
    assert "The parameter “ticket” was given more than once." in text(repeated)


@pytest.mark.parametrize("who", ["alice", "carol"])
def test_only_staff_may_use_the_bulk_form(
    app: Flask, three: list[int], login: Any, inbox: Inbox, sent: list[Any], who: str
) -> None:
    before = snapshot(app)
    client = login(who)
    for fields in (
        {"action": "status", "status": "closed"},
        {"action": "assign", "assignee": key(app, "admin")},
    ):
        response = post_bulk(client, three[:1], fields)
        assert response.status_code == 403
        assert "Only staff can change several tickets at once." in text(response)
    assert snapshot(app) == before
    assert inbox.messages == []
    assert sent == []


def test_a_bulk_post_without_a_fresh_token_or_login_or_by_get_changes_nothing(
    app: Flask, three: list[int], admin: Client, inbox: Inbox
) -> None:
    before = snapshot(app)
    fields = {"action": "status", "status": "closed", "back": "//evil.example/x"}

    missing = bulk(admin, three[:1], csrf=False, **fields)
    stale = bulk(admin, three[:1], csrf=False, csrf_token="IjEyMyI.stale.token", **fields)
    anonymous = app.test_client().post("/ticket/bulk", data={"ticket": three[0], **fields})

    for refused in (missing, stale):
        assert refused.status_code == 400
        assert ACTION_CSRF in text(refused)
        # The page's way back is the list, whatever "back" said.
        assert 'href="/ticket/all"' in text(refused)
        assert "evil.example" not in text(refused)
    assert anonymous.status_code == 302
    assert "/login" in anonymous.headers["Location"]
    assert admin.get("/ticket/bulk").status_code == 405
    assert snapshot(app) == before
    assert inbox.messages == []


@pytest.mark.parametrize(
    ("back", "expected"),
    [
        ("", ""),
        ("queue=mine&evil=1", "queue=mine"),
        ("status=closed&q=printer&sort=oldest&per_page=5", None),
        # Not the page: the tickets changed may have left it, and past the end is a 404.
        ("queue=mine&page=3&per_page=5", "queue=mine&per_page=5"),
        ("assignee=none&urgency=High&author=alice", None),
        ("//evil.example/x", ""),
        ("https://evil.example/", ""),
        ("http://evil.example/ticket/all?queue=mine", ""),
        ("/\\evil.example", ""),
        ("next=https://evil.example/&endpoint=x", ""),
        ("queue=mine%0D%0ALocation:%20https://evil.example/", None),
        ("q=%00&status=%0A", None),
        ("status=open&" * 500 + "queue=mine", None),
    ],
)
def test_bulk_goes_back_to_the_list_and_nowhere_else(
    app: Flask, three: list[int], admin: Client, back: str, expected: str | None
) -> None:
    response = bulk(admin, three[:1], action="status", status="waiting", back=back)

    assert response.status_code == 303
    location = response.headers["Location"]
    assert "\r" not in location
    assert "\n" not in location
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc, parts.path) in {("", "", "/ticket/all")}
    allowed = {"status", "queue", "assignee", "author", "author_id", "q", "sort", "per_page"}
    allowed |= {"urgency", "application", "topic"}
    assert {name for name, _ in parse_qsl(parts.query)} <= allowed
    if expected is not None:
        assert parts.query == expected
    elif back and len(back) < 2000:
        assert dict(parse_qsl(parts.query)) == {k: v for k, v in parse_qsl(back) if k in allowed}


def test_the_list_carries_its_query_back_through_the_bulk_form(
    app: Flask, three: list[int], admin: Client, dora: Client
) -> None:
    # Its page is not carried (the changed tickets may leave the list), nor what is not
    # one of its parameters.
    url = "/ticket/all?queue=unassigned&sort=oldest&per_page=2&page=1&utm_source=mail"
    page = admin.get(url).get_data(as_text=True)
    form = re.search(r'<form id="flasket-bulk".*?</form>', page, re.S)
    assert form is not None
    back = re.search(r'name="back" type="hidden" value="([^"]*)"', form[0])
    assert back is not None
    assert html.unescape(back[1]) == "queue=unassigned&sort=oldest&per_page=2"
    ticked = re.findall(r'name="ticket" value="(\d+)" form="flasket-bulk"', page)
    assert ticked == [str(three[0]), str(three[1])]
    options = re.search(r'<select id="flasket-bulk-assignee" name="assignee">(.*?)</select>', page)
    assert options is not None
    assert f'value="{key(app, "dora")}"' in options[1]
    statuses = re.search(r'<select id="flasket-bulk-status" name="status">(.*?)</select>', page)
    assert statuses is not None
    assert re.findall(r'value="(\w+)"', statuses[1]) == ["open", "waiting", "closed"]

    response = bulk(
        admin, ticked, action="assign", assignee=key(app, "dora"), back=html.unescape(back[1])
    )

    kept = "/ticket/all?queue=unassigned&sort=oldest&per_page=2"
    assert response.headers["Location"] == kept
    assert listed(admin, kept) == [three[2]]


def test_the_queue_constants_match_the_views(app: Flask) -> None:
    assert queries.QUEUES == QUEUES
