"""Configured statuses (``FLASKET_STATUSES``): kinds, waiting for the requester, resolutions,
"reply and close", who may set what, and what each change mails and signals."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from flasket import config, signals
from flasket.config import ConfigError, parse_statuses
from tests.helpers import Client, Inbox, counting_queries, ext_models, rows, text

CUSTOM_STATUSES = [
    {"name": "new", "label": "New", "kind": "open"},
    {"name": "pending", "label": "Pending", "kind": "open", "waiting_on_requester": True},
    {"name": "on_hold", "label": "On hold", "kind": "open"},
    {"name": "solved", "label": "Solved", "kind": "closed"},
    {"name": "closed", "label": "Closed", "kind": "closed"},
]


def ticket_row(app: Flask, ticket_id: int) -> Any:
    return next(t for t in rows(app, ext_models(app).Ticket) if t.id == ticket_id)


def state_of(app: Flask, ticket_id: int) -> tuple[str, str, str | None]:
    found = ticket_row(app, ticket_id)
    return found.status, found.state, found.resolution


def set_status(client: Client, ticket_id: int, status: str, resolution: str = "solved") -> Any:
    return client.post(f"/ticket/{ticket_id}/status", {"status": status, "resolution": resolution})


@pytest.fixture
def ticket_id(alice: Client, inbox: Inbox) -> int:
    """Alice's open ticket; Bob follows it; the inbox starts empty."""
    found = alice.submit("Printer jams", "Every second page.")
    bob = Client(alice.app, "bob")
    assert bob.post(f"/ticket/{found}/follow").status_code == 303
    inbox.clear()
    return found


@pytest.fixture
def sent() -> Iterator[list[tuple[str, Any]]]:
    """Every status signal sent: (signal name, ticket status at that moment)."""
    caught: list[tuple[str, Any]] = []
    receivers = []
    for signal in (
        signals.ticket_closed,
        signals.ticket_reopened,
        signals.ticket_status_changed,
        signals.ticket_replied,
    ):

        def receive(sender: Any, signal: Any = signal, **kwargs: Any) -> None:
            caught.append((signal.name, kwargs["ticket"].status))

        signal.connect(receive)
        receivers.append((signal, receive))
    yield caught
    for signal, receive in receivers:
        signal.disconnect(receive)


# --- the configuration ---------------------------------------------------------------


def test_the_default_set_is_open_waiting_and_closed() -> None:
    statuses = parse_statuses(config.DEFAULT_STATUSES)
    assert [(s.name, s.kind, s.waiting_on_requester) for s in statuses] == [
        ("open", "open", False),
        ("waiting", "open", True),
        ("closed", "closed", False),
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("open", "must be a list of status dicts"),
        (["open"], "Each FLASKET_STATUSES entry must be a dict"),
        ([{"name": "on hold", "kind": "open"}], "must be an identifier"),
        ([{"name": "x" * 17, "kind": "open"}], "must be an identifier"),
        ([{"name": "all", "kind": "open"}], "'all' is taken"),
        ([{"name": "open", "kind": "pending"}], "kind must be one of open, closed"),
        ([{"name": "open", "kind": "open", "lable": "Open"}], "Did you mean 'label'?"),
        (
            [{"name": "open", "kind": "open"}, {"name": "open", "kind": "closed"}],
            "used by two statuses",
        ),
        (
            [
                {"name": "open", "kind": "open"},
                {"name": "done", "kind": "closed", "waiting_on_requester": True},
            ],
            "must be of kind 'open'",
        ),
        ([{"name": "open", "kind": "open"}], "at least one status of kind 'closed'"),
        ([{"name": "done", "kind": "closed"}], "at least one status of kind 'open'"),
        (
            [{"name": "closed", "kind": "open"}, {"name": "done", "kind": "closed"}],
            "'closed' must be of kind 'closed'",
        ),
        (
            [
                {"name": "open", "kind": "open", "waiting_on_requester": "False"},
                {"name": "done", "kind": "closed"},
            ],
            "must be True or False",
        ),
        (
            [
                {"name": "pending", "kind": "open", "waiting_on_requester": True},
                {"name": "open", "kind": "open"},
                {"name": "done", "kind": "closed"},
            ],
            "cannot wait on the requester",
        ),
    ],
)
def test_a_status_list_flasket_cannot_use_is_refused_at_start_up(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_statuses(raw)


# --- staff set statuses; the requester closes and reopens -----------------------------


def test_staff_set_waiting_the_requester_is_mailed_and_lists_keep_it_open(
    app: Flask, ticket_id: int, admin: Client, alice: Client, inbox: Inbox, sent: list[Any]
) -> None:
    response = set_status(admin, ticket_id, "waiting")
    assert response.status_code == 303
    assert state_of(app, ticket_id) == ("waiting", "open", None)
    assert sent == [("ticket-status-changed", "waiting")]

    mails = {m.envelope_to[0]: m for m in inbox.messages}
    assert sorted(mails) == ["alice@example.test", "bob@example.test"]
    plain = mails["alice@example.test"].part("plain")
    assert f"admin set ticket #{ticket_id} to “Waiting for requester”" in plain
    assert "a reply opens it again" in plain
    assert "Waiting for requester" in mails["alice@example.test"].part("html")

    page = text(alice.get(f"/ticket/{ticket_id}"))
    assert "flasket-status--waiting" in page
    assert "Waiting for requester" in page
    assert f"/ticket/{ticket_id}" in text(alice.get("/ticket/all"))  # still open
    listed = text(alice.get("/ticket/all?status=waiting"))
    assert "Printer jams" in listed
    assert "Printer jams" not in text(alice.get("/ticket/all?status=closed"))


def test_the_requesters_reply_ends_waiting_and_a_staff_reply_does_not(
    app: Flask, ticket_id: int, admin: Client, alice: Client, bob: Client, inbox: Inbox
) -> None:
    assert set_status(admin, ticket_id, "waiting").status_code == 303
    assert admin.reply(ticket_id, "Which printer?").status_code == 303
    assert bob.reply(ticket_id, "Same here.").status_code == 303
    assert state_of(app, ticket_id)[0] == "waiting"

    assert inbox.messages  # the deliveries so far are done
    with counting_queries(app) as waiting_reply:
        assert alice.reply(ticket_id, "The one on floor 2.").status_code == 303
        assert inbox.messages  # and this reply's, counted with it
    assert state_of(app, ticket_id) == ("open", "open", None)
    with counting_queries(app) as plain_reply:
        assert alice.reply(ticket_id, "Any news?").status_code == 303
        assert inbox.messages
    # The wait ends in the reply's own UPDATE; the one statement more records it in the
    # ticket's history.
    extra = [q for q in waiting_reply if q.startswith("INSERT INTO flasket_ticket_change")]
    assert len(extra) == 1
    assert len(waiting_reply) == len(plain_reply) + 1


def test_staff_close_with_a_resolution_shown_on_the_page_and_in_the_mail(
    app: Flask, ticket_id: int, admin: Client, alice: Client, inbox: Inbox, sent: list[Any]
) -> None:
    assert set_status(admin, ticket_id, "closed", "wont_fix").status_code == 303
    assert state_of(app, ticket_id) == ("closed", "closed", "wont_fix")
    assert sent == [("ticket-closed", "closed")]
    plain = inbox.to("alice@example.test")[0].part("plain")
    assert "admin closed ticket" in plain
    assert "Resolution: Won't fix" in plain
    page = text(alice.get(f"/ticket/{ticket_id}"))
    assert "Resolution: Won't fix" in page
    assert "Printer jams" in text(alice.get("/ticket/all?status=closed"))

    inbox.clear()
    sent.clear()
    assert set_status(admin, ticket_id, "waiting").status_code == 303
    # Reopened into another open status: the reopened mail, and no resolution left.
    assert state_of(app, ticket_id) == ("waiting", "open", None)
    assert sent == [("ticket-reopened", "waiting")]
    assert "admin reopened" in inbox.to("alice@example.test")[0].part("plain")


def test_the_requester_replies_and_closes_in_one_step_one_mail_each(
    app: Flask, ticket_id: int, alice: Client, inbox: Inbox, sent: list[Any]
) -> None:
    page = text(alice.get(f"/ticket/{ticket_id}"))
    assert '<option selected value="">Open (unchanged)</option>' in page
    assert '<option value="closed">Closed</option>' in page
    assert 'name="resolution"' not in page.split('id="flasket-reply-heading"')[1]  # staff only

    response = alice.post(
        f"/ticket/{ticket_id}", {"body": "Works now, thanks.", "status": "closed"}
    )
    assert response.status_code == 303
    assert state_of(app, ticket_id) == ("closed", "closed", "solved")
    assert [r.body for r in rows(app, ext_models(app).Reply)] == ["Works now, thanks."]
    assert sent == [("ticket-replied", "closed"), ("ticket-closed", "closed")]
    (mail,) = inbox.messages
    assert mail.envelope_to == ["bob@example.test"]
    assert "Works now, thanks." in mail.part("plain")
    assert "The ticket is closed now." in mail.part("plain")
    assert "The ticket is closed now." in mail.part("html")
    assert "Resolution: Solved" in mail.part("plain")
    assert "Resolution: Solved" in mail.part("html")


WAITS = "The ticket waits for an answer from its requester; a reply opens it again."


@pytest.mark.parametrize(
    ("form", "said", "unsaid"),
    [
        ({}, [], ["The ticket is closed now.", "Resolution:", WAITS]),
        ({"status": "waiting"}, [WAITS], ["The ticket is closed now.", "Resolution:"]),
        (
            {"status": "closed", "resolution": "wont_fix"},
            ["The ticket is closed now.", "Resolution: Won't fix"],
            [WAITS],
        ),
    ],
    ids=["reply", "reply and wait", "reply and close"],
)
def test_a_staff_reply_mail_says_what_the_reply_did_to_the_status(
    app: Flask,
    ticket_id: int,
    admin: Client,
    inbox: Inbox,
    form: dict[str, str],
    said: list[str],
    unsaid: list[str],
) -> None:
    response = admin.post(f"/ticket/{ticket_id}", {"body": "Which printer?", **form})
    assert response.status_code == 303
    (mail,) = inbox.to("alice@example.test")
    for part in ("plain", "html"):
        body = " ".join(mail.part(part).replace("&#39;", "'").split())
        assert "Which printer?" in body
        for words in said:
            assert words in body, (part, words)
        for words in unsaid:
            assert words not in body, (part, words)


def test_the_requester_closes_and_reopens_into_the_first_open_status(
    app: Flask, ticket_id: int, admin: Client, alice: Client
) -> None:
    assert set_status(admin, ticket_id, "waiting").status_code == 303
    assert alice.post(f"/ticket/{ticket_id}/close").status_code == 303
    assert state_of(app, ticket_id) == ("closed", "closed", "solved")
    assert alice.post(f"/ticket/{ticket_id}/reopen").status_code == 303
    assert state_of(app, ticket_id) == ("open", "open", None)


# --- refused: nothing changes, nothing is mailed ---------------------------------------


@pytest.mark.parametrize(
    ("who", "status", "resolution", "code", "message"),
    [
        # The requester may close and reopen, nothing else.
        ("alice", "waiting", "solved", 403, "You cannot give this ticket that status."),
        ("alice", "closed", "wont_fix", 403, "You cannot close this ticket with that resolution."),
        # Another user may set no status at all.
        ("carol", "closed", "solved", 403, "Only the ticket's author or staff can change"),
        # Not in the list: a status or a resolution no one has.
        ("admin", "deleted", "solved", 400, "Choose one of the statuses in the list."),
        ("admin", "closed", "because", 400, "Choose one of the resolutions in the list."),
        ("admin", "", "solved", 400, "Choose one of the statuses in the list."),
    ],
)
def test_a_status_the_user_may_not_set_is_refused_and_nothing_changes(
    app: Flask,
    ticket_id: int,
    inbox: Inbox,
    login: Any,
    who: str,
    status: str,
    resolution: str,
    code: int,
    message: str,
) -> None:
    response = set_status(login(who), ticket_id, status, resolution)
    assert response.status_code == code
    assert message in text(response)
    assert state_of(app, ticket_id) == ("open", "open", None)
    assert inbox.messages == []


def test_a_status_post_without_a_fresh_token_or_login_changes_nothing(
    app: Flask, ticket_id: int, admin: Client, inbox: Inbox
) -> None:
    stale = admin.post(
        f"/ticket/{ticket_id}/status", {"status": "waiting", "resolution": "solved"}, csrf=False
    )
    assert stale.status_code == 400
    anonymous = app.test_client().post(f"/ticket/{ticket_id}/status", data={"status": "waiting"})
    assert anonymous.status_code == 302
    assert admin.get(f"/ticket/{ticket_id}/status").status_code == 405
    assert state_of(app, ticket_id) == ("open", "open", None)
    assert inbox.messages == []


@pytest.mark.parametrize("app_config", [{"FLASKET_VISIBILITY": "own"}])
def test_a_ticket_the_user_may_not_read_answers_404_to_a_status_post(
    app: Flask, alice: Client, carol: Client
) -> None:
    ticket_id = alice.submit("Printer jams", "Every second page.")
    assert set_status(carol, ticket_id, "closed").status_code == 404
    assert state_of(app, ticket_id) == ("open", "open", None)


def test_a_reply_with_a_status_the_requester_may_not_set_stores_nothing(
    app: Flask, ticket_id: int, alice: Client, inbox: Inbox
) -> None:
    response = alice.post(f"/ticket/{ticket_id}", {"body": "Hello", "status": "waiting"})
    assert response.status_code == 400
    assert "You cannot give this ticket that status." in text(response)
    unknown = alice.post(f"/ticket/{ticket_id}", {"body": "Hello", "status": "deleted"})
    assert unknown.status_code == 400
    assert "Choose one of the statuses in the list." in text(unknown)
    assert "Hello" in text(response)  # the text is kept in the box
    assert rows(app, ext_models(app).Reply) == []
    assert state_of(app, ticket_id) == ("open", "open", None)
    assert inbox.messages == []


def test_only_staff_see_the_status_control(
    ticket_id: int, admin: Client, alice: Client, carol: Client
) -> None:
    staff_page = text(admin.get(f"/ticket/{ticket_id}"))
    assert f'action="/ticket/{ticket_id}/status"' in staff_page
    assert '<option value="waiting">Waiting for requester</option>' in staff_page
    assert '<option value="wont_fix">Won\'t fix</option>' in staff_page
    for client in (alice, carol):
        assert "/status" not in text(client.get(f"/ticket/{ticket_id}"))
    # A reader who may set nothing gets no status choice in the reply form either.
    assert 'name="status"' not in text(carol.get(f"/ticket/{ticket_id}"))


# --- a host's own set -------------------------------------------------------------------


@pytest.mark.parametrize("app_config", [{"FLASKET_STATUSES": CUSTOM_STATUSES}])
def test_a_hosts_own_statuses_drive_new_tickets_closing_and_the_filters(
    app: Flask, alice: Client, admin: Client
) -> None:
    ticket_id = alice.submit("Screen flickers", "Since Monday.")
    assert state_of(app, ticket_id) == ("new", "open", None)
    assert set_status(admin, ticket_id, "on_hold").status_code == 303
    listed = text(alice.get("/ticket/all?status=on_hold"))
    assert "Screen flickers" in listed
    assert "<h1>On hold</h1>" in listed
    assert '<option value="pending">Pending</option>' in listed
    assert "Screen flickers" in text(alice.get("/ticket/all"))  # open kind
    # "Close ticket" sets the first status of kind closed; reopening the first open one.
    assert alice.post(f"/ticket/{ticket_id}/close").status_code == 303
    assert state_of(app, ticket_id) == ("solved", "closed", "solved")
    assert "Screen flickers" in text(alice.get("/ticket/all?status=closed"))
    assert alice.post(f"/ticket/{ticket_id}/reopen").status_code == 303
    assert state_of(app, ticket_id) == ("new", "open", None)
    # Pending waits on the requester like the default set's waiting.
    assert set_status(admin, ticket_id, "pending").status_code == 303
    assert alice.reply(ticket_id, "Still flickers.").status_code == 303
    assert state_of(app, ticket_id)[0] == "new"


@pytest.mark.parametrize("app_config", [{"FLASKET_STATUSES": CUSTOM_STATUSES}])
def test_a_stored_status_no_longer_configured_still_shows_and_lists_by_its_kind(
    app: Flask, alice: Client
) -> None:
    ticket_id = alice.submit("Old one", "From before.")
    with app.app_context():
        from tests.hostapp import db

        found = db.session.get(ext_models(app).Ticket, ticket_id)
        assert found is not None
        found.status = "escalated"
        db.session.commit()
    page = text(alice.get(f"/ticket/{ticket_id}"))
    assert "Escalated" in page
    assert "flasket-status--open" in page
    assert "Old one" in text(alice.get("/ticket/all"))
    assert alice.get("/ticket/all?status=escalated").status_code == 400
    # One of kind closed keeps the closed style and lists as closed.
    with app.app_context():
        found = db.session.get(ext_models(app).Ticket, ticket_id)
        assert found is not None
        found.status, found.state = "archived", "closed"
        db.session.commit()
    page = text(alice.get(f"/ticket/{ticket_id}"))
    assert "Archived" in page
    assert "flasket-status--closed" in page
    assert "Old one" in text(alice.get("/ticket/all?status=closed"))


def test_a_status_form_sent_twice_or_from_an_old_page_changes_nothing_more(
    app: Flask, ticket_id: int, admin: Client, alice: Client, inbox: Inbox
) -> None:
    form = {"status": "waiting", "resolution": "solved", "from_status": "open"}
    assert admin.post(f"/ticket/{ticket_id}/status", form).status_code == 303
    assert len(inbox.messages) == 2
    inbox.clear()
    # The same form again: the ticket is where it asked, nothing more happens.
    again = admin.post(f"/ticket/{ticket_id}/status", form)
    assert again.status_code == 303
    assert "is now “Waiting for requester”" in text(admin.get(again.headers["Location"]))
    # Another staff page, shown while the ticket was open, asks to close it: refused.
    stale = {"status": "closed", "resolution": "wont_fix", "from_status": "open"}
    answer = admin.post(f"/ticket/{ticket_id}/status", stale)
    assert answer.status_code == 303
    assert "changed meanwhile; nothing was changed" in text(admin.get(answer.headers["Location"]))
    assert state_of(app, ticket_id) == ("waiting", "open", None)
    assert inbox.messages == []
    # The page's own form carries the status it shows.
    assert 'name="from_status" type="hidden" value="waiting"' in text(
        admin.get(f"/ticket/{ticket_id}")
    )


def test_a_reply_and_close_form_sent_twice_is_answered_like_the_first(
    app: Flask, ticket_id: int, alice: Client, inbox: Inbox
) -> None:
    page = alice.get(f"/ticket/{ticket_id}").get_data(as_text=True)
    form_key = re.search(r'name="form_key" type="hidden" value="([^"]+)"', page)
    assert form_key is not None
    form = {"body": "Works now.", "status": "closed", "form_key": form_key.group(1)}
    first = alice.post(f"/ticket/{ticket_id}", form)
    assert first.status_code == 303
    again = alice.post(f"/ticket/{ticket_id}", form)
    assert again.status_code == 303
    assert again.headers["Location"] == first.headers["Location"]
    assert [r.body for r in rows(app, ext_models(app).Reply)] == ["Works now."]
    assert len(inbox.messages) == 1


def test_the_requesters_reply_that_ends_a_wait_sends_the_status_signal(
    ticket_id: int, admin: Client, alice: Client, sent: list[Any]
) -> None:
    assert set_status(admin, ticket_id, "waiting").status_code == 303
    sent.clear()
    assert alice.reply(ticket_id, "Floor 2.").status_code == 303
    assert sent == [("ticket-replied", "open"), ("ticket-status-changed", "open")]
