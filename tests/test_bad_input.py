"""Bad and hostile input: a clear 4xx with a message, nothing stored, nothing sent, never a 500."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage
from werkzeug.test import stream_encode_multipart

from flasket import unfollow
from tests.helpers import CSRF_FIELD, Client, Inbox, ext_models, rows, text
from tests.hostapp import User, create_app, db

STAFF = "staff@example.test"
NUL_MESSAGE = "Text may not contain NUL characters."
FORM_SUMMARY = "Please correct the marked fields; nothing was submitted yet."
GOOD_TICKET = {
    "title": "Printer is on fire",
    "body": "Flames everywhere.\nSmoke too.",
    "urgency": "Medium",
    "application": "Desktop app",
    "topic": "Bug report",
}


@pytest.fixture
def app_config() -> dict[str, Any]:
    # New tickets mail staff, so a ticket stored by mistake would also show in the inbox.
    return {"FLASKET_STAFF_RECIPIENTS": [STAFF]}


class FormValues(HTMLParser):
    """The values a browser would send back from the page's forms."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        name = found.get("name") or ""
        kind = found.get("type")
        if tag == "input" and (kind == "text" or (kind == "radio" and "checked" in found)):
            self.values[name] = found.get("value") or ""
        elif tag == "textarea":
            self._textarea = name
            self.values[name] = ""
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select and "selected" in found:
            self.values[self._select] = found.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.values[self._textarea] += data


def form_values(response: Any) -> dict[str, str]:
    parser = FormValues()
    parser.feed(response.get_data(as_text=True))
    values = parser.values
    for name, value in values.items():
        values[name] = value.removeprefix("\r\n").removeprefix("\n")
    return values


def ticket_rows(app: Flask) -> list[Any]:
    return rows(app, ext_models(app).Ticket)


def reply_rows(app: Flask) -> list[Any]:
    return rows(app, ext_models(app).Reply)


def test_a_good_ticket_is_stored_and_mails_staff(app: Flask, alice: Client, inbox: Inbox) -> None:
    """The control for the refusals below: the same form, valid, does store and send."""
    response = alice.post("/ticket/submit", GOOD_TICKET)

    assert response.status_code == 303
    [ticket] = ticket_rows(app)
    assert (ticket.title, ticket.body) == (GOOD_TICKET["title"], GOOD_TICKET["body"])
    assert [m.envelope_to for m in inbox.messages] == [[STAFF]]


# The new-ticket form

SUBMIT_ERRORS: dict[str, tuple[dict[str, str | None], str, str]] = {
    "empty title": ({"title": ""}, "title", "Give your ticket a title."),
    "blank title": ({"title": "   "}, "title", "Give your ticket a title."),
    "title of 201 characters": ({"title": "t" * 201}, "title", "at most 200 characters"),
    "title with a line break": (
        {"title": "Hello\r\nBcc: x@y"},
        "title",
        "The title must be a single line of text.",
    ),
    "title with a tab": ({"title": "Hello\tthere"}, "title", "must be a single line"),
    "title with a unicode line separator": (
        {"title": "Hello\u2028there"},
        "title",
        "must be a single line",
    ),
    "empty body": ({"body": ""}, "body", "Describe the problem or question."),
    "blank body": ({"body": " \r\n\t \n "}, "body", "Describe the problem or question."),
    "body of 20,001 characters": (
        {"body": "b" * 20_001},
        "body",
        "The description may be at most 20000 characters.",
    ),
    "body of 20,001 characters once line ends are normalised": (
        {"body": "b" * 10_000 + "\r\n" + "c" * 10_000},
        "body",
        "The description may be at most 20000 characters.",
    ),
    "urgency outside the choices": (
        {"urgency": "Critical"},
        "urgency",
        "Choose one of: Low, Medium, or High.",
    ),
    "application outside the choices": (
        {"application": "Mainframe"},
        "application",
        "Choose one of: Website, Mobile app, Desktop app, API, or Other.",
    ),
    "application missing": ({"application": None}, "application", "Choose the application."),
    "topic left on Choose…": ({"topic": ""}, "topic", "Choose the topic."),
}


@pytest.mark.one_database
@pytest.mark.parametrize("case", SUBMIT_ERRORS)
def test_an_invalid_ticket_form_is_refused_with_a_message_and_keeps_the_other_input(
    app: Flask, alice: Client, inbox: Inbox, case: str
) -> None:
    changes, bad_field, message = SUBMIT_ERRORS[case]
    data = {**GOOD_TICKET, **changes}
    data = {name: value for name, value in data.items() if value is not None}

    response = alice.post("/ticket/submit", data)

    assert response.status_code == 400
    page = text(response)
    assert message in page
    assert FORM_SUMMARY in page
    kept = form_values(response)
    for name, value in GOOD_TICKET.items():
        if name != bad_field:
            assert kept.get(name) == value, name
    assert ticket_rows(app) == []
    assert inbox.messages == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("title", "Hello\x00world"), ("body", "Flames\x00everywhere"), ("topic", "Bug\x00")],
)
def test_a_nul_character_in_the_ticket_form_is_refused(
    app: Flask, alice: Client, inbox: Inbox, field: str, value: str
) -> None:
    response = alice.post("/ticket/submit", {**GOOD_TICKET, field: value})

    assert response.status_code == 400
    assert NUL_MESSAGE in text(response)
    assert ticket_rows(app) == []
    assert inbox.messages == []


@pytest.mark.one_database
@pytest.mark.parametrize("field", ["title", "body", "urgency", "csrf_token"])
def test_a_repeated_parameter_in_the_ticket_form_is_refused(
    app: Flask, alice: Client, inbox: Inbox, field: str
) -> None:
    data: dict[str, Any] = dict(GOOD_TICKET)
    token = alice.csrf()
    data["csrf_token"] = token
    data[field] = [data[field], data[field]]

    response = alice.post("/ticket/submit", data, csrf=False)

    assert response.status_code == 400
    assert f"The parameter “{field}” was given more than once." in text(response)
    assert ticket_rows(app) == []
    assert inbox.messages == []


@pytest.mark.parametrize("char", ["b", "\U0001f525"], ids=["ascii", "four-byte"])
def test_the_longest_title_and_body_are_accepted_and_mailed(
    app: Flask, alice: Client, inbox: Inbox, char: str
) -> None:
    title, body = char * 200, char * 20_000

    response = alice.post("/ticket/submit", {**GOOD_TICKET, "title": title, "body": body})

    assert response.status_code == 303
    [ticket] = ticket_rows(app)
    assert (ticket.title, ticket.body) == (title, body)
    [mail] = inbox.to(STAFF)
    assert body in mail.part("plain")


def test_the_body_is_measured_after_line_ends_and_outer_space_are_normalised(
    app: Flask, alice: Client
) -> None:
    stored = "\n".join(["y" * 99] * 200) + "z"
    assert len(stored) == 20_000
    sent = "  \r\n" + stored.replace("\n", "\r\n") + "\r\n\t "
    assert len(sent) > 20_000

    response = alice.post("/ticket/submit", {**GOOD_TICKET, "body": sent})

    assert response.status_code == 303
    [ticket] = ticket_rows(app)
    assert ticket.body == stored


# The reply form


@pytest.fixture
def ticket_id(alice: Client, bob: Client, inbox: Inbox) -> int:
    """Alice's ticket, followed by bob, so any stored reply would mail him."""
    found = alice.submit()
    assert bob.reply(found, "Following along").status_code == 303
    inbox.clear()
    return found


def test_a_good_reply_is_stored_and_mails_the_followers(
    app: Flask, alice: Client, inbox: Inbox, ticket_id: int
) -> None:
    """The control for the refusals below."""
    response = alice.reply(ticket_id, "b" * 20_000)

    assert response.status_code == 303
    assert len(reply_rows(app)) == 2
    # The follower, and the staff address: the requester's follow-up on an unassigned
    # ticket (FLASKET_STAFF_FOLLOW_UPS, on by default).
    assert sorted(m.envelope_to for m in inbox.messages) == [["bob@example.test"], [STAFF]]


REPLY_ERRORS = {
    "empty": ("", "Write a reply before posting it."),
    "blank": ("  \r\n\t ", "Write a reply before posting it."),
    "20,001 characters": ("r" * 20_001, "A reply may be at most 20000 characters long."),
}


@pytest.mark.parametrize("case", REPLY_ERRORS)
def test_an_invalid_reply_is_refused_with_a_message_and_stores_nothing(
    app: Flask, alice: Client, inbox: Inbox, ticket_id: int, case: str
) -> None:
    body, message = REPLY_ERRORS[case]

    response = alice.reply(ticket_id, body)

    assert response.status_code == 400
    assert message in text(response)
    assert form_values(response)["body"] == body.strip()
    assert len(reply_rows(app)) == 1
    [ticket] = ticket_rows(app)
    assert ticket.reply_count == 1
    assert inbox.messages == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"body": "Any\x00news"}, NUL_MESSAGE),
        ({"body": ["Any news", "Any news"]}, "The parameter “body” was given more than once."),
    ],
    ids=["nul", "repeated"],
)
def test_a_hostile_reply_is_refused_and_stores_nothing(
    app: Flask, alice: Client, inbox: Inbox, ticket_id: int, data: dict[str, Any], message: str
) -> None:
    response = alice.post(f"/ticket/{ticket_id}", data)

    assert response.status_code == 400
    assert message in text(response)
    assert len(reply_rows(app)) == 1
    assert inbox.messages == []


# List pages and their query strings

PAGE_MESSAGE = "must be a whole number from 1 to 1000000."
PER_PAGE_MESSAGE = "“per_page” must be a whole number from 1 to 100."
BAD_NUMBERS = ["-1", "0", "abc", "1.5", str(10**12), "\uff11", "0x10", "1e3", "+1"]


@pytest.mark.one_database
@pytest.mark.parametrize("value", BAD_NUMBERS)
@pytest.mark.parametrize(
    ("url", "arg"),
    [
        ("/ticket/all", "page"),
        ("/ticket/user/1", "page"),
        ("/ticket/{id}", "page"),
    ],
)
def test_a_bad_page_number_is_400_with_a_message(
    alice: Client, ticket_id: int, url: str, arg: str, value: str
) -> None:
    response = alice.get(url.format(id=ticket_id), query_string={arg: value})

    assert response.status_code == 400
    assert f"“{arg}” {PAGE_MESSAGE}" in text(response)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/ticket/all?page=2", "There is no page 2 of this list."),
        ("/ticket/all?page=1000000", "There is no page 1000000 of this list."),
        ("/ticket/user/1?page=2", "There is no page 2 of alice's submitted tickets."),
        (
            "/ticket/user/1?show=following&page=2",
            "There is no page 2 of alice's followed tickets.",
        ),
        ("/ticket/user/2?show=replies&page=2", "There is no page 2 of bob's replies."),
        ("/ticket/{id}?page=2", "Ticket #{id} has no page 2 of replies."),
    ],
)
def test_a_page_beyond_the_last_is_404_with_a_message(
    alice: Client, ticket_id: int, url: str, message: str
) -> None:
    response = alice.get(url.format(id=ticket_id))

    assert response.status_code == 404
    assert message.format(id=ticket_id) in text(response)


@pytest.mark.one_database
@pytest.mark.parametrize("value", ["0", str(10**9), "101", "-5", "ten"])
@pytest.mark.parametrize("url", ["/ticket/all", "/ticket/user/1"])
def test_a_bad_per_page_is_400_with_a_message(
    alice: Client, ticket_id: int, url: str, value: str
) -> None:
    response = alice.get(url, query_string={"per_page": value})

    assert response.status_code == 400
    assert PER_PAGE_MESSAGE in text(response)


def test_the_largest_per_page_is_accepted(alice: Client, ticket_id: int) -> None:
    response = alice.get("/ticket/all", query_string={"per_page": "100"})

    assert response.status_code == 200
    assert "Printer is on fire" in text(response)


@pytest.mark.one_database
@pytest.mark.parametrize(
    ("arg", "value", "message"),
    [
        ("status", "deleted", "“status” must be one of: open, closed, all, waiting."),
        ("sort", "title", "“sort” must be one of: updated, created, oldest."),
        ("urgency", "Critical", "“urgency” must be one of: Low, Medium, High."),
        ("topic", "bug report", "“topic” must be one of: Question, Bug report,"),
        ("q", "q" * 201, "“q” may be at most 200 characters long."),
        ("author", "a" * 201, "“author” may be at most 200 characters long."),
        ("q", "print\x00er", NUL_MESSAGE),
        ("author", "ali\x00ce", NUL_MESSAGE),
        (
            "queue",
            "everything",
            "“queue” must be one of: mine, unassigned, waiting_on_staff, waiting_on_requester,"
            " recently_closed.",
        ),
        ("assignee", "nobody", "There is no such user."),
        ("assignee", "a" * 321, "“assignee” may be at most 320 characters long."),
        ("assignee", "no\x00ne", NUL_MESSAGE),
    ],
)
def test_a_bad_list_filter_is_400_with_a_message(
    alice: Client, ticket_id: int, arg: str, value: str, message: str
) -> None:
    response = alice.get("/ticket/all", query_string={arg: value})

    assert response.status_code == 400
    assert message in text(response)


@pytest.mark.parametrize("value", ["99999", "2147483647", "-1", "0"])
def test_an_assignee_filter_naming_no_user_is_400(
    alice: Client, admin: Client, ticket_id: int, value: str
) -> None:
    for client in (alice, admin):
        response = client.get("/ticket/all", query_string={"assignee": value})
        assert response.status_code == 400
        assert "There is no such user." in text(response)


@pytest.mark.one_database
@pytest.mark.parametrize("show", ["tickets", "following", "replies"])
@pytest.mark.parametrize("value", ["0", "abc", str(10**12)])
def test_a_bad_page_number_on_each_user_tab_is_400(
    alice: Client, ticket_id: int, show: str, value: str
) -> None:
    response = alice.get("/ticket/user/1", query_string={"show": show, "page": value})

    assert response.status_code == 400
    assert f"“page” {PAGE_MESSAGE}" in text(response)


SHOW_MESSAGE = "“show” must be one of: tickets, following, replies."


@pytest.mark.one_database
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("followers", SHOW_MESSAGE),
        ("Replies", SHOW_MESSAGE),
        ("x" * 300, SHOW_MESSAGE),
        ("tickets\x00", NUL_MESSAGE),
    ],
)
def test_an_unknown_user_tab_is_400_with_a_message(
    alice: Client, ticket_id: int, value: str, message: str
) -> None:
    response = alice.get("/ticket/user/1", query_string={"show": value})

    assert response.status_code == 400
    assert message in text(response)


@pytest.mark.one_database
def test_a_repeated_list_filter_is_400_with_a_message(alice: Client, ticket_id: int) -> None:
    response = alice.get("/ticket/all?status=open&status=closed")

    assert response.status_code == 400
    assert "The parameter “status” was given more than once." in text(response)


def test_a_search_of_200_characters_is_accepted(alice: Client, ticket_id: int) -> None:
    response = alice.get("/ticket/all", query_string={"q": "q" * 200})

    assert response.status_code == 200
    assert "No open tickets match these filters." in text(response)


@pytest.mark.parametrize("number", ["99999999999999999999", "2147483648", "2147483647", "0"])
def test_a_ticket_number_that_cannot_exist_is_404_not_500(alice: Client, number: str) -> None:
    response = alice.get(f"/ticket/{number}")

    assert response.status_code == 404


def test_a_missing_ticket_says_so(alice: Client) -> None:
    response = alice.get("/ticket/2147483647")

    assert response.status_code == 404
    assert "There is no ticket #2147483647." in text(response)


def test_a_user_name_with_a_nul_character_is_400(alice: Client) -> None:
    response = alice.get("/ticket/user/ali%00ce")

    assert response.status_code == 400
    assert NUL_MESSAGE in text(response)


def test_an_unknown_user_is_404_with_a_message(alice: Client) -> None:
    response = alice.get("/ticket/user/nobody")

    assert response.status_code == 404
    assert "There is no such user." in text(response)


def test_an_unknown_author_filter_says_so_and_lists_nothing(alice: Client, ticket_id: int) -> None:
    response = alice.get("/ticket/all", query_string={"author": "nobody"})

    assert response.status_code == 200
    assert "There is no user called “nobody”." in text(response)
    assert "Printer is on fire" not in text(response)


# Oversized requests

MEGABYTE = 1_000_000
ENCODINGS = ["urlencoded", "multipart"]


def post_encoded(client: Client, url: str, fields: dict[str, str], encoding: str) -> Any:
    """Post ``fields`` with a CSRF token, built in memory (the test client spools big ones)."""
    fields = {**fields, "csrf_token": client.csrf()}
    if encoding == "multipart":
        stream, _, boundary = stream_encode_multipart(fields, use_tempfile=False)
        content_type = f"multipart/form-data; boundary={boundary}"
        data = stream.getvalue()  # type: ignore[attr-defined]  # a BytesIO without a tempfile
        return client.http.post(url, data=data, content_type=content_type)
    content_type = "application/x-www-form-urlencoded"
    return client.http.post(url, data=urlencode(fields), content_type=content_type)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_one_megabyte_ticket_is_413_with_a_readable_page_and_stores_nothing(
    app: Flask, alice: Client, inbox: Inbox, encoding: str
) -> None:
    data = {**GOOD_TICKET, "body": "b" * MEGABYTE}

    response = post_encoded(alice, "/ticket/submit", data, encoding)

    assert response.status_code == 413
    assert response.mimetype == "text/html"
    assert "What you sent is too large. Shorten it and try again." in text(response)
    assert "b" * 1000 not in text(response)
    assert ticket_rows(app) == []
    assert inbox.messages == []


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_one_megabyte_reply_is_413_with_a_readable_page_and_stores_nothing(
    app: Flask, alice: Client, inbox: Inbox, ticket_id: int, encoding: str
) -> None:
    response = post_encoded(alice, f"/ticket/{ticket_id}", {"body": "r" * MEGABYTE}, encoding)

    assert response.status_code == 413
    assert "What you sent is too large. Shorten it and try again." in text(response)
    assert len(reply_rows(app)) == 1
    assert inbox.messages == []


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(
    ("url", "fields"),
    [
        ("/ticket/{id}/assign", {"assignee": "4" * MEGABYTE, "from_assignee": ""}),
        ("/ticket/bulk", {"ticket": "{id}", "action": "status", "back": "b" * MEGABYTE}),
        ("/ticket/{id}/note", {"note": "n" * MEGABYTE}),
        ("/ticket/{id}/edit", {"title": "t" * MEGABYTE, "urgency": "Low"}),
        ("/ticket/{id}/duplicate", {"original": "1" * MEGABYTE}),
    ],
    ids=["assign", "bulk", "note", "edit", "duplicate"],
)
def test_a_one_megabyte_staff_form_is_413_and_changes_nothing(
    app: Flask,
    admin: Client,
    inbox: Inbox,
    ticket_id: int,
    encoding: str,
    url: str,
    fields: dict[str, str],
) -> None:
    before = stored_state(app)
    fields = {name: value.format(id=ticket_id) for name, value in fields.items()}

    response = post_encoded(admin, url.format(id=ticket_id), fields, encoding)

    assert response.status_code == 413
    assert "What you sent is too large. Shorten it and try again." in text(response)
    assert stored_state(app) == before
    assert inbox.messages == []


# Request bodies that are not a form: refused before any form reads them

FORM_ONLY_MESSAGE = (
    "Flasket's pages take only web forms, sent as application/x-www-form-urlencoded "
    "or multipart/form-data."
)
UTF8_MESSAGE = "Form data must be sent as UTF-8."
NO_FILES_MESSAGE = "Flasket's forms take no files."

#: Every POST endpoint of the blueprint: its URL, who posts (None: the link in an e-mail,
#: without logging in), the fields of a good form, and the status when it works. Each one
#: changes a row when it works, so a refusal that stored anything shows. In the URL and the
#: fields, ``{id}`` is the ticket's number, ``{admin}`` the admin's user key, ``{reply}``
#: Bob's reply to the ticket and ``{other}`` another ticket (see :func:`target_values`).
POST_TARGETS: dict[str, tuple[str, str | None, dict[str, str], int]] = {
    "submit": ("/ticket/submit", "alice", GOOD_TICKET, 303),
    "reply": ("/ticket/{id}", "alice", {"body": "A fine reply"}, 303),
    "close": ("/ticket/{id}/close", "alice", {}, 303),
    "reopen": ("/ticket/{id}/reopen", "alice", {}, 303),
    "status": ("/ticket/{id}/status", "admin", {"status": "waiting", "resolution": "solved"}, 303),
    "assign": ("/ticket/{id}/assign", "admin", {"assignee": "{admin}", "from_assignee": ""}, 303),
    "bulk": (
        "/ticket/bulk",
        "admin",
        {"ticket": "{id}", "action": "status", "status": "waiting", "back": "queue=mine"},
        303,
    ),
    "follow": ("/ticket/{id}/follow", "carol", {}, 303),
    "unfollow": ("/ticket/{id}/unfollow", "bob", {}, 303),
    "unfollow link": ("", None, {"List-Unsubscribe": "One-Click"}, 200),
    "note": ("/ticket/{id}/note", "admin", {"note": "Called them: the tray is bent."}, 303),
    "edit": (
        "/ticket/{id}/edit",
        "admin",
        {"title": "Printer is cold", "urgency": "Low", "application": "Website", "topic": "Other"},
        303,
    ),
    "revise": ("/ticket/{id}/revise", "alice", {"body": "Flames, and smoke."}, 303),
    "revise reply": (
        "/ticket/{id}/replies/{reply}/revise",
        "bob",
        {"body": "Following along, closely."},
        303,
    ),
    "hide": ("/ticket/{id}/replies/{reply}/hide", "admin", {}, 303),
    "unhide": ("/ticket/{id}/replies/{reply}/unhide", "admin", {}, 303),
    "duplicate": ("/ticket/{id}/duplicate", "admin", {"original": "#{other}"}, 303),
}


POST_ENDPOINTS = {
    "submit": "flasket.submit",
    "reply": "flasket.ticket",
    "close": "flasket.close",
    "reopen": "flasket.reopen",
    "status": "flasket.set_status",
    "assign": "flasket.assign",
    "bulk": "flasket.bulk",
    "follow": "flasket.follow",
    "unfollow": "flasket.unfollow",
    "unfollow link": "flasket.unfollow_link",
    "note": "flasket.note",
    "edit": "flasket.edit",
    "revise": "flasket.revise",
    "revise reply": "flasket.revise",
    "hide": "flasket.hide",
    "unhide": "flasket.unhide",
    "duplicate": "flasket.duplicate",
}


def test_the_targets_below_are_every_post_endpoint_of_the_blueprint() -> None:
    url_map = create_app().url_map
    rules = {
        rule.rule: rule.endpoint
        for rule in url_map.iter_rules()
        if rule.endpoint.startswith("flasket.") and "POST" in (rule.methods or ())
    }
    assert set(rules.values()) == set(POST_ENDPOINTS.values())
    assert set(POST_ENDPOINTS) == set(POST_TARGETS)
    # And every rule has its target (revise has two: the description's and a reply's).
    adapter = url_map.bind("host.test")
    reached = {}
    for name, (route, *_) in POST_TARGETS.items():
        url = route.format(id=1, reply=2, admin=1) or "/ticket/unfollow/a-token"
        rule, _ = adapter.match(url, method="POST", return_rule=True)
        assert rule.endpoint == POST_ENDPOINTS[name], name
        reached[rule.rule] = rule.endpoint
    assert reached == rules


@dataclass
class Poster:
    """Someone about to post to one of the endpoints, with a good form (and token) for it."""

    http: FlaskClient
    url: str
    fields: dict[str, str]
    done_status: int


def unfollow_link(app: Flask, ticket_id: int, username: str) -> str:
    with app.test_request_context():
        user_id = db.session.scalar(sa.select(User.id).where(User.username == username))
        ticket = db.session.get(ext_models(app).Ticket, ticket_id)
        assert ticket is not None
        return f"/ticket/unfollow/{unfollow.make_token(ticket.mail_key, user_id)}"


def target_values(
    app: Flask, login: Any, inbox: Inbox, ticket_id: int, *templates: Any
) -> dict[str, Any]:
    """The values of the placeholders in a target's URL and fields: ``{id}`` the ticket,
    ``{admin}`` the admin's user key, ``{reply}`` Bob's reply to the ticket, and ``{other}``
    a second ticket (Carol's), made only when one of ``templates`` names it."""
    (reply,) = rows(app, ext_models(app).Reply, ticket_id=ticket_id)
    values = {"id": ticket_id, "admin": user_key(app, "admin"), "reply": reply.id}
    if "{other}" in repr(templates):
        values["other"] = login("carol").submit("Printer is cold", "It will not warm up.")
        inbox.clear()
    return values


def prepare(target: str, login: Any, inbox: Inbox, values: dict[str, Any]) -> None:
    """Bring the ticket where a good form to ``target`` changes it: closed to reopen it,
    the reply hidden to show it again."""
    ticket = f"/ticket/{values['id']}"
    if target == "reopen":
        assert login("alice").post(f"{ticket}/close").status_code == 303
    elif target == "unhide":
        assert login("admin").post(f"{ticket}/replies/{values['reply']}/hide").status_code == 303
    inbox.clear()


@pytest.fixture(params=list(POST_TARGETS))
def poster(
    request: pytest.FixtureRequest, app: Flask, login: Any, inbox: Inbox, ticket_id: int
) -> Poster:
    route, username, fields, done_status = POST_TARGETS[request.param]
    values = target_values(app, login, inbox, ticket_id, route, fields)
    prepare(request.param, login, inbox, values)
    if username is None:
        url = unfollow_link(app, ticket_id, "bob")
        return Poster(app.test_client(), url, dict(fields), done_status)
    client = login(username)
    fields = {name: value.format(**values) for name, value in fields.items()}
    fields = {**fields, "csrf_token": client.csrf()}
    return Poster(client.http, route.format(**values), fields, done_status)


def user_key(app: Flask, username: str) -> str:
    with app.app_context():
        return str(db.session.scalar(sa.select(User.id).where(User.username == username)))


def stored_state(app: Flask) -> tuple[list[Any], ...]:
    """Every ticket, reply, follow, category value and internal note, as far as a POST to
    the blueprint could change them (a note changes nothing else: no follow, no
    ``updated_at``)."""
    models = ext_models(app)
    tickets = [
        (
            t.id,
            t.status,
            t.title,
            t.body,
            t.reply_count,
            t.follower_count,
            t.updated_at,
            t.assignee_id,
            t.duplicate_of_id,
        )
        for t in rows(app, models.Ticket)
    ]
    replies = [(r.id, r.body, r.hidden_at) for r in rows(app, models.Reply)]
    follows = [(f.ticket_id, f.user_id) for f in rows(app, models.Follow)]
    categories = [(c.ticket_id, c.name, c.value) for c in rows(app, models.TicketCategory)]
    notes = [(n.id, n.body) for n in rows(app, models.Note)]
    return sorted(tickets), sorted(replies), sorted(follows), sorted(categories), sorted(notes)


def as_multipart(fields: dict[str, Any], subtype: str = "form-data") -> dict[str, Any]:
    stream, _, boundary = stream_encode_multipart(fields, use_tempfile=False)
    data = stream.getvalue()  # type: ignore[attr-defined]  # a BytesIO without a tempfile
    return {"data": data, "content_type": f"multipart/{subtype}; boundary={boundary}"}


def with_file(fields: dict[str, str]) -> dict[str, Any]:
    """``curl -F title=@/etc/hostname``: the first text field (or an extra one) sent as a file."""
    name = next((name for name in fields if name != "csrf_token"), "attachment")
    upload = FileStorage(io.BytesIO(b"helpdesk\n"), filename="hostname", name=name)
    return as_multipart({**fields, name: upload})


def as_json(value: Any) -> dict[str, Any]:
    return {"data": json.dumps(value), "content_type": "application/json"}


def texts_as(fields: dict[str, str], value: Any) -> dict[str, Any]:
    """The fields with every value but the CSRF token replaced by ``value``."""
    return {name: text if name == "csrf_token" else value for name, text in fields.items()}


#: Each kind of body: the request it makes from a good form, and the refusal it gets.
BAD_BODIES: dict[str, tuple[Callable[[dict[str, str]], dict[str, Any]], int, str]] = {
    "json of the good form": (as_json, 415, FORM_ONLY_MESSAGE),
    "json numbers": (lambda f: as_json(texts_as(f, 123)), 415, FORM_ONLY_MESSAGE),
    "json lists": (lambda f: as_json(texts_as(f, ["a", "b"])), 415, FORM_ONLY_MESSAGE),
    "json array": (lambda f: as_json([1, 2]), 415, FORM_ONLY_MESSAGE),
    "json string": (lambda f: as_json("str"), 415, FORM_ONLY_MESSAGE),
    "json that does not parse": (
        lambda f: {"data": "{", "content_type": "application/json"},
        415,
        FORM_ONLY_MESSAGE,
    ),
    "text/plain": (
        lambda f: {"data": urlencode(f), "content_type": "text/plain"},
        415,
        FORM_ONLY_MESSAGE,
    ),
    "xml": (
        lambda f: {"data": "<form><title>x</title></form>", "content_type": "application/xml"},
        415,
        FORM_ONLY_MESSAGE,
    ),
    "octet-stream": (
        lambda f: {"data": urlencode(f), "content_type": "application/octet-stream"},
        415,
        FORM_ONLY_MESSAGE,
    ),
    "a form body without a content type": (
        lambda f: {"data": urlencode(f)},
        415,
        FORM_ONLY_MESSAGE,
    ),
    "multipart/mixed": (lambda f: as_multipart(f, "mixed"), 415, FORM_ONLY_MESSAGE),
    "a latin-1 form": (
        lambda f: {
            "data": urlencode({**f, "note": "café"}, encoding="latin-1"),
            "content_type": "application/x-www-form-urlencoded; charset=ISO-8859-1",
        },
        415,
        UTF8_MESSAGE,
    ),
    "a file part": (with_file, 400, NO_FILES_MESSAGE),
}


@pytest.mark.one_database
@pytest.mark.parametrize("kind", BAD_BODIES)
def test_a_body_that_is_not_a_text_form_is_refused_on_flaskets_page_and_changes_nothing(
    app: Flask, inbox: Inbox, poster: Poster, kind: str
) -> None:
    make_request, status, message = BAD_BODIES[kind]
    before = stored_state(app)

    response = poster.http.post(poster.url, **make_request(poster.fields))

    assert response.status_code == status
    assert response.mimetype == "text/html"
    assert message in text(response)
    assert 'class="flasket-message flasket-message--error"' in text(response)
    assert len(response.get_data()) < 4_000
    assert stored_state(app) == before
    assert inbox.messages == []


@pytest.mark.one_database
def test_a_body_without_a_content_type_is_sent_without_one(poster: Poster) -> None:
    """The premise of the "without a content type" cases above and the empty one-click POST."""
    make_request, _, _ = BAD_BODIES["a form body without a content type"]
    for kwargs in (make_request(poster.fields), {}):
        response = poster.http.post(poster.url, **kwargs)
        assert "Content-Type" not in response.request.headers


@pytest.mark.one_database
@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_methods_are_405_whatever_the_body_and_change_nothing(
    app: Flask, poster: Poster, method: str
) -> None:
    before = stored_state(app)

    response = poster.http.open(poster.url, method=method, **as_json([1, 2]))

    assert response.status_code == 405
    assert "That action is not available here." in text(response)
    assert stored_state(app) == before


def with_charset(request: dict[str, Any], charset: str) -> dict[str, Any]:
    return {**request, "content_type": f"{request['content_type']}; charset={charset}"}


GOOD_BODIES: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
    "urlencoded": lambda f: {
        "data": urlencode(f),
        "content_type": "application/x-www-form-urlencoded",
    },
    "urlencoded, charset=utf-8": lambda f: {
        "data": urlencode(f),
        "content_type": "application/x-www-form-urlencoded; charset=utf-8",
    },
    "multipart": as_multipart,
    "multipart, charset=UTF-8": lambda f: with_charset(as_multipart(f), "UTF-8"),
}


@pytest.mark.parametrize("kind", GOOD_BODIES)
def test_a_urlencoded_or_multipart_form_still_works(app: Flask, poster: Poster, kind: str) -> None:
    before = stored_state(app)

    response = poster.http.post(poster.url, **GOOD_BODIES[kind](poster.fields))

    assert response.status_code == poster.done_status, text(response)
    assert stored_state(app) != before


def test_an_empty_one_click_post_without_a_content_type_unfollows(
    app: Flask, ticket_id: int
) -> None:
    before = stored_state(app)

    response = app.test_client().post(unfollow_link(app, ticket_id, "bob"))

    assert response.status_code == 200
    follows = stored_state(app)[2]
    assert len(follows) == len(before[2]) - 1


def test_a_utf8_form_with_a_charset_parameter_keeps_every_character(
    app: Flask, alice: Client
) -> None:
    title = "Café \u2615 \U0001f525"
    fields = {**GOOD_TICKET, "title": title, "csrf_token": alice.csrf()}
    content_type = "application/x-www-form-urlencoded; charset=utf-8"

    response = alice.http.post("/ticket/submit", data=urlencode(fields), content_type=content_type)

    assert response.status_code == 303
    [ticket] = ticket_rows(app)
    assert ticket.title == title


# Never a 500: every field and query argument gets every hostile value

HOSTILE = {
    "empty": "",
    "blank": quote(" \t "),
    "nul": "%00",
    "crlf": "%0D%0A",
    "invalid utf-8": "%FF%FE%C0",
    "lone surrogate bytes": "%ED%A0%80",
    "markup": quote("<script>alert(1)</script>\"'"),
    "sql": quote("'; DROP TABLE flasket_ticket; --"),
    "like wildcards": quote("%_\\"),
    "negative": "-1",
    "huge number": "9" * 40,
    "float": "1e400",
    "bidi and zero width": quote("\u202e\u200b\ufeff"),
    "emoji": quote("\U0001f525" * 50),
    "long": "x" * 30_000,
    "repeated": None,
}

#: The forms people post, as they post them: the URL, who posts, a good form (placeholders
#: as in :data:`POST_TARGETS`), and the fields that get the hostile values.
FORM_TARGETS: dict[str, tuple[str, str, dict[str, str], list[str]]] = {
    "submit": (
        "/ticket/submit",
        "alice",
        GOOD_TICKET,
        ["csrf_token", "title", "body", "urgency", "application", "topic", "extra"],
    ),
    "reply": ("/ticket/{id}", "alice", {"body": "A fine reply"}, ["csrf_token", "body", "page"]),
    "close": ("/ticket/{id}/close", "alice", {}, ["csrf_token"]),
    "reopen": ("/ticket/{id}/reopen", "alice", {}, ["csrf_token"]),
    "follow": ("/ticket/{id}/follow", "alice", {}, ["csrf_token"]),
    "unfollow": ("/ticket/{id}/unfollow", "alice", {}, ["csrf_token"]),
    "revise": (
        "/ticket/{id}/revise",
        "alice",
        {"body": "Flames, and smoke."},
        ["csrf_token", "body", "extra"],
    ),
    "revise reply": (
        "/ticket/{id}/replies/{reply}/revise",
        "bob",
        {"body": "Following along, closely."},
        ["csrf_token", "body", "extra"],
    ),
}
QUERY_TARGETS = {
    "index": ("/ticket/", ["page", "q"]),
    "submit page": ("/ticket/submit", ["title"]),
    "ticket": ("/ticket/{id}", ["page", "per_page"]),
    "all": (
        "/ticket/all",
        [
            "q",
            "status",
            "sort",
            "author",
            "page",
            "per_page",
            "urgency",
            "application",
            "topic",
            "queue",
            "assignee",
        ],
    ),
    "user": ("/ticket/user/1", ["show", "page", "per_page"]),
}
NEVER_500 = {200, 303, 400, 404, 405, 409, 413}
#: The staff's forms, as admin posts them: the URL, a good form (``{id}``: the ticket,
#: ``{admin}``: the admin's key), and the fields that get the hostile values.
STAFF_FORM_TARGETS: dict[str, tuple[str, dict[str, str], list[str]]] = {
    "assign": (
        "/ticket/{id}/assign",
        {"assignee": "{admin}", "from_assignee": ""},
        ["csrf_token", "assignee", "from_assignee", "extra"],
    ),
    "bulk": (
        "/ticket/bulk",
        {
            "ticket": "{id}",
            "action": "assign",
            "assignee": "{admin}",
            "status": "waiting",
            "resolution": "solved",
            "back": "queue=mine",
        },
        ["csrf_token", "ticket", "action", "assignee", "status", "resolution", "back", "extra"],
    ),
    "note": (
        "/ticket/{id}/note",
        {"note": "Called them: the tray is bent."},
        ["csrf_token", "note", "form_key", "extra"],
    ),
    "edit": (
        "/ticket/{id}/edit",
        {"title": "Printer is cold", "urgency": "Low", "application": "Website", "topic": "Other"},
        ["csrf_token", "title", "urgency", "application", "topic", "extra"],
    ),
    "hide": ("/ticket/{id}/replies/{reply}/hide", {}, ["csrf_token", "extra"]),
    "unhide": ("/ticket/{id}/replies/{reply}/unhide", {}, ["csrf_token", "extra"]),
    "duplicate": (
        "/ticket/{id}/duplicate",
        {"original": "#{other}"},
        ["csrf_token", "original", "extra"],
    ),
}
#: The staff's view of the pages with staff-only parameters.
STAFF_QUERY_TARGETS = {
    "index": ("/ticket/", ["page"]),
    "ticket": ("/ticket/{id}", ["page"]),
    "all": ("/ticket/all", ["queue", "assignee", "status", "q", "sort", "page", "per_page"]),
}


def encoded(fields: dict[str, str], name: str, hostile: str | None) -> str:
    """A url-encoded string of ``fields`` with field ``name`` set to a raw hostile value."""
    parts = [f"{quote(key)}={quote(value)}" for key, value in fields.items() if key != name]
    if hostile is None:
        value = quote(fields.get(name, "x"))
        parts += [f"{quote(name)}={value}", f"{quote(name)}={value}"]
    else:
        parts.append(f"{quote(name)}={hostile}")
    return "&".join(parts)


def hostile_failures(
    app: Flask, client: Client, inbox: Inbox, url: str, good: dict[str, str], field: str
) -> list[tuple[str, int | str]]:
    """Post ``good`` with each hostile value in ``field``: what answered a 5xx (or another
    status no page should), and what was refused yet changed something or sent mail."""
    good = {**good, "csrf_token": client.csrf()}
    failures: list[tuple[str, int | str]] = []
    for label, hostile in HOSTILE.items():
        before, mails = stored_state(app), len(inbox.messages)
        body = encoded(good, field, hostile)
        response = client.http.post(
            url, data=body, content_type="application/x-www-form-urlencoded"
        )
        if response.status_code not in NEVER_500:
            failures.append((label, response.status_code))
        elif response.status_code >= 400 and (
            stored_state(app) != before or len(inbox.messages) != mails
        ):
            failures.append((label, "refused, yet changed something"))
    return failures


@pytest.mark.parametrize(
    ("target", "field"),
    [(target, field) for target, (*_, fields) in FORM_TARGETS.items() for field in fields],
)
def test_no_hostile_form_value_causes_a_server_error(
    app: Flask, login: Any, inbox: Inbox, ticket_id: int, target: str, field: str
) -> None:
    route, username, good, _ = FORM_TARGETS[target]
    values = target_values(app, login, inbox, ticket_id, route, good)
    prepare(target, login, inbox, values)
    url = route.format(**values)
    good = {name: value.format(**values) for name, value in good.items()}
    assert hostile_failures(app, login(username), inbox, url, good, field) == []


@pytest.mark.parametrize(
    ("target", "arg"),
    [(target, arg) for target, (_, args) in QUERY_TARGETS.items() for arg in args],
)
def test_no_hostile_query_argument_causes_a_server_error(
    alice: Client, ticket_id: int, target: str, arg: str
) -> None:
    route, _ = QUERY_TARGETS[target]
    url = route.format(id=ticket_id)
    failures = []
    for label, hostile in HOSTILE.items():
        response = alice.get(url, query_string=encoded({}, arg, hostile))
        if response.status_code not in NEVER_500:
            failures.append((label, response.status_code))
    assert failures == []


def staff_form_cases() -> list[Any]:
    return [
        pytest.param(target, field, id=f"{target}-{field}")
        for target, (_, _, fields) in STAFF_FORM_TARGETS.items()
        for field in fields
    ]


@pytest.mark.parametrize(("target", "field"), staff_form_cases())
def test_no_hostile_staff_form_value_causes_a_server_error_or_changes_anything_when_refused(
    app: Flask, login: Any, admin: Client, ticket_id: int, inbox: Inbox, target: str, field: str
) -> None:
    route, good, _ = STAFF_FORM_TARGETS[target]
    values = target_values(app, login, inbox, ticket_id, route, good)
    prepare(target, login, inbox, values)
    url = route.format(**values)
    good = {name: value.format(**values) for name, value in good.items()}
    assert hostile_failures(app, admin, inbox, url, good, field) == []


@pytest.mark.parametrize(
    ("target", "arg"),
    [(target, arg) for target, (_, args) in STAFF_QUERY_TARGETS.items() for arg in args],
)
def test_no_hostile_staff_query_argument_causes_a_server_error(
    admin: Client, ticket_id: int, target: str, arg: str
) -> None:
    route, _ = STAFF_QUERY_TARGETS[target]
    url = route.format(id=ticket_id)
    failures = []
    for label, hostile in HOSTILE.items():
        response = admin.get(url, query_string=encoded({}, arg, hostile))
        if response.status_code not in NEVER_500:
            failures.append((label, response.status_code))
    assert failures == []


@pytest.mark.parametrize("label", list(HOSTILE))
def test_no_hostile_path_value_causes_a_server_error(
    app: Flask, alice: Client, admin: Client, ticket_id: int, label: str
) -> None:
    hostile = HOSTILE[label] or "1"
    for url in (f"/ticket/user/{hostile}", f"/ticket/{hostile}", f"/ticket/{hostile}/close"):
        response = alice.get(url)
        assert response.status_code in NEVER_500, url
    for url in (f"/ticket/{hostile}/assign", f"/ticket/bulk/{hostile}"):
        response = admin.post(url)
        assert response.status_code in NEVER_500, url
    # A reply's address: where the value is "1" it names the ticket or Bob's reply, so the
    # reply's own address redirects (302) to the ticket's page and Alice may not edit it (403).
    (reply,) = rows(app, ext_models(app).Reply, ticket_id=ticket_id)
    replies = f"/ticket/{ticket_id}/replies"
    answered = NEVER_500 | {302, 403}
    for url in (
        f"/ticket/{hostile}/revise",
        f"/ticket/{hostile}/replies/{reply.id}",
        f"{replies}/{hostile}",
        f"{replies}/{hostile}/revise",
    ):
        assert alice.get(url).status_code in answered, url
        assert alice.post(url).status_code in answered, url
    for url in (
        f"/ticket/{hostile}/versions",
        f"/ticket/{hostile}/replies/{reply.id}/versions",
        f"{replies}/{hostile}/versions",
    ):
        assert admin.get(url).status_code in NEVER_500, url
    for url in (
        f"/ticket/{hostile}/note",
        f"/ticket/{hostile}/edit",
        f"/ticket/{hostile}/duplicate",
        f"/ticket/{hostile}/replies/{reply.id}/hide",
        f"{replies}/{hostile}/hide",
        f"{replies}/{hostile}/unhide",
    ):
        assert admin.post(url).status_code in NEVER_500, url


# A stale form token: the message says what is true, and doing what it says works


def fresh_token(response: Any) -> str:
    match = CSRF_FIELD.search(response.get_data(as_text=True))
    assert match, "the form came back without a token"
    return match.group(1)


def test_a_ticket_with_an_expired_token_comes_back_and_submitting_again_stores_it(
    app: Flask, alice: Client
) -> None:
    refused = alice.post("/ticket/submit", {**GOOD_TICKET, "csrf_token": "stale"}, csrf=False)
    assert refused.status_code == 400
    assert "Everything you typed is still below: submit it again." in text(refused)
    assert "Please correct the marked fields" not in text(refused), "nothing is marked"
    assert ticket_rows(app) == []

    again = {**form_values(refused), "csrf_token": fresh_token(refused)}
    assert alice.post("/ticket/submit", again, csrf=False).status_code == 303
    (ticket,) = ticket_rows(app)
    assert (ticket.title, ticket.body) == (GOOD_TICKET["title"], GOOD_TICKET["body"])


def test_a_reply_with_an_expired_token_comes_back_and_posting_again_stores_it(
    app: Flask, alice: Client, ticket_id: int
) -> None:
    url = f"/ticket/{ticket_id}"
    refused = alice.post(url, {"body": "Still broken.", "csrf_token": "stale"}, csrf=False)
    assert refused.status_code == 400
    assert "Your text is still in the box below: post it again." in text(refused)
    before = len(reply_rows(app))

    again = {"body": form_values(refused)["body"], "csrf_token": fresh_token(refused)}
    assert alice.post(url, again, csrf=False).status_code == 303
    assert len(reply_rows(app)) == before + 1
    assert "Still broken." in {reply.body for reply in reply_rows(app)}


@pytest.mark.one_database
@pytest.mark.parametrize(
    "number", ["007", "\uff11", "\u0661", "0", "+1", " 1", "1.0", str(2**31), "1_0"]
)
@pytest.mark.parametrize("action", ["", "/close", "/reopen", "/follow", "/unfollow"])
def test_a_ticket_has_one_address_and_other_spellings_of_its_number_are_404(
    alice: Client, ticket_id: int, number: str, action: str
) -> None:
    """Only ``/ticket/<n>`` as Flasket writes n: no leading zero, no other script's digits."""
    assert ticket_id == 1
    spelled = number.replace("1", str(ticket_id)) if number != "0" else number
    url = f"/ticket/{quote(spelled)}{action}"
    response = alice.post(url) if action else alice.get(url)
    assert response.status_code == 404, url
    assert "That page does not exist." in text(response)
    canonical = f"/ticket/{ticket_id}{action}"
    assert (alice.post(canonical) if action else alice.get(canonical)).status_code in (200, 303)


@pytest.mark.one_database
@pytest.mark.parametrize("number", ["007", "\uff11", "0", "+1", "1.0", str(2**31)])
def test_the_assign_address_takes_only_the_tickets_one_spelling_of_its_number(
    app: Flask, admin: Client, ticket_id: int, number: str
) -> None:
    assert ticket_id == 1
    form = {"assignee": user_key(app, "admin"), "from_assignee": ""}
    response = admin.post(f"/ticket/{quote(number)}/assign", form)
    assert response.status_code == 404
    assert "That page does not exist." in text(response)
    assert admin.post(f"/ticket/{ticket_id}/assign", form).status_code == 303
