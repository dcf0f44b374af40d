"""Who may read, reply to, follow, close and reopen a ticket, tested from both sides.

Every refusal is checked for its status, the message a person sees, the rows
(nothing changed) and the inbox (nothing sent).
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask

from tests.helpers import Client, Inbox, ext_models, rows, text
from tests.hostapp import User, db

#: What a stale form token is answered with: the ticket and reply forms come back with the
#: typed text (sending again works); the buttons' error page links back to the ticket.
SUBMIT_CSRF_MESSAGE = (
    "Your ticket was not submitted yet because the form had expired. "
    "Everything you typed is still below: submit it again."
)
REPLY_CSRF_MESSAGE = (
    "Your reply was not posted yet because the page had expired. "
    "Your text is still in the box below: post it again."
)
ACTION_CSRF_MESSAGE = (
    "Nothing was changed because the page with that button had expired. "
    "Open the ticket again and press the button once more."
)
CLOSED_MESSAGE = "This ticket is closed, so your reply was not posted."
ACTIONS = ("close", "reopen", "follow", "unfollow")


def textarea(response: Any, name: str = "body") -> str:
    match = re.search(
        rf'<textarea[^>]*name="{name}"[^>]*>\r?\n?(.*?)</textarea>',
        response.get_data(as_text=True),
        re.DOTALL,
    )
    assert match, f"no {name} textarea on the page"
    return html.unescape(match.group(1))


def user_id(app: Flask, username: str) -> int:
    [user] = rows(app, User, username=username)
    return int(user.id)


def snapshot(app: Flask) -> dict[str, list[Any]]:
    """Every Flasket row, to compare before and after a refused request."""
    models = ext_models(app)
    return {
        "tickets": sorted(
            (
                t.id,
                t.title,
                t.body,
                t.status,
                t.reply_count,
                t.follower_count,
                t.updated_at,
                t.closed_at,
                t.closed_by_id,
            )
            for t in rows(app, models.Ticket)
        ),
        "replies": sorted(
            (r.id, r.ticket_id, r.author_id, r.body) for r in rows(app, models.Reply)
        ),
        "follows": sorted((f.ticket_id, f.user_id) for f in rows(app, models.Follow)),
        "categories": sorted(
            (c.ticket_id, c.name, c.value) for c in rows(app, models.TicketCategory)
        ),
    }


def ticket_row(app: Flask, ticket_id: int) -> Any:
    [found] = rows(app, ext_models(app).Ticket, id=ticket_id)
    return found


def follows(app: Flask, ticket_id: int, username: str) -> bool:
    models = ext_models(app)
    return bool(rows(app, models.Follow, ticket_id=ticket_id, user_id=user_id(app, username)))


def add_follow(app: Flask, ticket_id: int, username: str) -> None:
    """A follow row made behind the UI's back (the user could not follow through it)."""
    models = ext_models(app)
    with app.app_context():
        db.session.add(models.Follow(ticket_id=ticket_id, user_id=user_id(app, username)))
        db.session.commit()


def redirected_page(client: Client, response: Any) -> str:
    """Follow a post/redirect/get by hand and return the page text, flash included."""
    assert response.status_code == 303, response.get_data(as_text=True)
    return text(client.get(response.headers["Location"]))


def without_number(page: str, ticket_id: int) -> str:
    return page.replace(f"#{ticket_id}", "#N")


def visibility(value: str, **extra: Any) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("app_config", [{"FLASKET_VISIBILITY": value, **extra}])


# Logged out


LOGGED_OUT_ROUTES = [
    ("GET", "/ticket/"),
    ("GET", "/ticket/index"),
    ("GET", "/ticket/submit"),
    ("GET", "/ticket/{id}"),
    ("GET", "/ticket/all"),
    ("GET", "/ticket/user/1"),
    ("POST", "/ticket/submit"),
    ("POST", "/ticket/{id}"),
    ("POST", "/ticket/{id}/close"),
    ("POST", "/ticket/{id}/reopen"),
    ("POST", "/ticket/{id}/follow"),
    ("POST", "/ticket/{id}/unfollow"),
]
FORM_DATA = {
    "title": "Sneaky",
    "body": "Sneaky text",
    "urgency": "High",
    "application": "Website",
    "topic": "Bug report",
}


@pytest.mark.one_database
@pytest.mark.parametrize(("method", "route"), LOGGED_OUT_ROUTES)
def test_logged_out_visitor_is_sent_to_the_login_page_and_changes_nothing(
    app: Flask, alice: Client, login: Any, inbox: Inbox, method: str, route: str
) -> None:
    ticket_id = alice.submit()
    before = snapshot(app)
    inbox.clear()
    url = route.format(id=ticket_id)
    visitor = login(None)

    response = visitor.http.open(url, method=method, data=FORM_DATA if method == "POST" else None)

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query) == {"next": [url]}
    assert snapshot(app) == before
    assert inbox.messages == []


@pytest.mark.one_database
@pytest.mark.parametrize(("method", "route"), LOGGED_OUT_ROUTES)
def test_logged_out_json_client_gets_401_and_changes_nothing(
    app: Flask, alice: Client, login: Any, inbox: Inbox, method: str, route: str
) -> None:
    ticket_id = alice.submit()
    before = snapshot(app)
    inbox.clear()
    visitor = login(None)

    response = visitor.http.open(
        route.format(id=ticket_id),
        method=method,
        data=FORM_DATA if method == "POST" else None,
        headers={"Accept": "application/json"},
    )

    assert response.status_code == 401
    assert response.is_json
    assert response.get_json() == {"error": "Log in to use the ticket system."}
    assert snapshot(app) == before
    assert inbox.messages == []


# Visibility "own": a ticket bob may not read is a missing ticket to him


HIDDEN_REQUESTS = {
    "read": ("GET", "/ticket/{id}", None),
    "reply": ("POST", "/ticket/{id}", {"body": "Let me in"}),
    "follow": ("POST", "/ticket/{id}/follow", {}),
    "unfollow": ("POST", "/ticket/{id}/unfollow", {}),
    "close": ("POST", "/ticket/{id}/close", {}),
    "reopen": ("POST", "/ticket/{id}/reopen", {}),
}


@visibility("own")
@pytest.mark.parametrize("action", HIDDEN_REQUESTS)
def test_under_own_visibility_another_users_ticket_answers_exactly_like_a_missing_one(
    app: Flask, alice: Client, bob: Client, inbox: Inbox, action: str
) -> None:
    hidden_id = alice.submit()
    missing_id = hidden_id + 1
    method, route, data = HIDDEN_REQUESTS[action]
    if action == "reopen":
        assert alice.post(f"/ticket/{hidden_id}/close").status_code == 303
    if action == "unfollow":
        add_follow(app, hidden_id, "bob")
    before = snapshot(app)
    inbox.clear()

    def attempt(ticket_id: int) -> Any:
        url = route.format(id=ticket_id)
        return bob.get(url) if method == "GET" else bob.post(url, data)

    hidden = attempt(hidden_id)
    missing = attempt(missing_id)

    assert hidden.status_code == missing.status_code == 404
    assert f"There is no ticket #{hidden_id}." in text(hidden)
    assert "Printer is on fire" not in text(hidden)
    assert without_number(text(hidden), hidden_id) == without_number(text(missing), missing_id)
    assert sorted(hidden.headers.keys()) == sorted(missing.headers.keys())
    assert snapshot(app) == before
    assert inbox.messages == []


@visibility("own")
def test_under_own_visibility_another_users_ticket_is_left_out_of_every_list(
    app: Flask, alice: Client, bob: Client
) -> None:
    alice.submit(title="Alice secret payroll question")
    alice.submit(title="Alice second secret")
    hidden_id = alice.submit(title="Alice third secret")
    assert alice.reply(hidden_id, "Alice adds a secret note").status_code == 303
    bob.submit(title="Bob visible question")

    pages = {
        "index": bob.get("/ticket/"),
        "all": bob.get("/ticket/all?status=all"),
        "all by alice": bob.get("/ticket/all?status=all&author=alice"),
        "search": bob.get("/ticket/all?status=all&q=secret"),
        "alice's page": bob.get("/ticket/user/1"),
        "alice's follows": bob.get("/ticket/user/1?show=following"),
        "alice's replies": bob.get("/ticket/user/1?show=replies"),
    }

    secrets = ("Alice secret payroll", "Alice second secret", "Alice third", "secret note")
    for name, page in pages.items():
        assert page.status_code == 200, name
        assert not [s for s in secrets if s in text(page)], name
    assert "Bob visible question" in text(pages["all"])
    assert re.search(r"<strong>1</strong> open", pages["index"].get_data(as_text=True))
    assert "No tickets match these filters." in text(pages["search"])
    assert "No tickets submitted." in text(pages["alice's page"])
    assert "Not following any ticket." in text(pages["alice's follows"])
    assert "No replies." in text(pages["alice's replies"])
    # The tabs count only what bob may read, too.
    assert '<span class="flasket-tab-count">0</span>' in text(pages["alice's page"])
    assert 'flasket-tab-count">1' not in text(pages["alice's page"])


@visibility("own")
def test_under_own_visibility_staff_read_list_and_act_on_every_ticket(
    app: Flask, alice: Client, bob: Client, admin: Client, inbox: Inbox
) -> None:
    ticket_id = alice.submit(title="Alice secret payroll question")
    bob.submit(title="Bob visible question")
    inbox.clear()

    page = admin.get(f"/ticket/{ticket_id}")
    assert page.status_code == 200
    assert "Alice secret payroll question" in text(page)
    assert "Alice secret payroll question" in text(admin.get("/ticket/all?q=payroll"))
    assert "Alice secret payroll question" in text(admin.get("/ticket/user/1"))
    assert re.search(r"<strong>2</strong> open", admin.get("/ticket/").get_data(as_text=True))

    assert "Your reply was posted." in redirected_page(admin, admin.reply(ticket_id, "On it."))
    assert [r.body for r in rows(app, ext_models(app).Reply, ticket_id=ticket_id)] == ["On it."]
    assert follows(app, ticket_id, "admin")
    assert [m.envelope_to for m in inbox.messages] == [["alice@example.test"]]

    inbox.clear()
    closed = admin.post(f"/ticket/{ticket_id}/close")
    assert f"Ticket #{ticket_id} is closed." in redirected_page(admin, closed)
    assert ticket_row(app, ticket_id).status == "closed"
    assert [m.envelope_to for m in inbox.messages] == [["alice@example.test"]]


# Visibility "all": everyone reads, replies and follows; only author and staff close


@visibility("all")
def test_under_all_visibility_any_user_reads_replies_to_and_follows_a_ticket(
    app: Flask, alice: Client, bob: Client, login: Any, inbox: Inbox
) -> None:
    ticket_id = alice.submit()
    carol = login("carol")
    inbox.clear()

    page = bob.get(f"/ticket/{ticket_id}")
    assert page.status_code == 200
    assert "Printer is on fire" in text(page)
    assert "Close ticket" not in text(page)

    replied = bob.reply(ticket_id, "Have you tried water?")
    assert "Your reply was posted." in redirected_page(bob, replied)
    assert [r.body for r in rows(app, ext_models(app).Reply, ticket_id=ticket_id)] == [
        "Have you tried water?"
    ]
    assert follows(app, ticket_id, "bob"), "replying follows the ticket"
    assert [m.envelope_to for m in inbox.messages] == [["alice@example.test"]]

    followed = carol.post(f"/ticket/{ticket_id}/follow")
    assert f"You follow ticket #{ticket_id}" in redirected_page(carol, followed)
    assert follows(app, ticket_id, "carol")
    unfollowed = carol.post(f"/ticket/{ticket_id}/unfollow")
    assert f"You no longer follow ticket #{ticket_id}." in redirected_page(carol, unfollowed)
    assert not follows(app, ticket_id, "carol")


@visibility("all")
@pytest.mark.parametrize("action", ["close", "reopen"])
def test_a_reader_who_is_neither_author_nor_staff_cannot_close_or_reopen(
    app: Flask, alice: Client, bob: Client, inbox: Inbox, action: str
) -> None:
    ticket_id = alice.submit()
    assert bob.reply(ticket_id, "Following along").status_code == 303
    if action == "reopen":
        assert alice.post(f"/ticket/{ticket_id}/close").status_code == 303
    status_before = ticket_row(app, ticket_id).status
    before = snapshot(app)
    inbox.clear()

    response = bob.post(f"/ticket/{ticket_id}/{action}")

    assert response.status_code == 403
    assert f"Only the ticket's author or staff can {action} this ticket" in text(response)
    assert ticket_row(app, ticket_id).status == status_before
    assert snapshot(app) == before
    assert inbox.messages == []


@visibility("all")
@pytest.mark.parametrize("actor", ["alice", "admin"])
def test_the_author_and_staff_close_and_reopen_a_ticket(
    app: Flask, alice: Client, bob: Client, login: Any, inbox: Inbox, actor: str
) -> None:
    ticket_id = alice.submit()
    assert bob.reply(ticket_id, "Me too").status_code == 303
    person = alice if actor == "alice" else login(actor)
    inbox.clear()

    closed = person.post(f"/ticket/{ticket_id}/close")
    assert f"Ticket #{ticket_id} is closed." in redirected_page(person, closed)
    row = ticket_row(app, ticket_id)
    assert (row.status, row.closed_by_id) == ("closed", user_id(app, actor))
    told = {"alice@example.test", "bob@example.test"} - {f"{actor}@example.test"}
    assert {m.envelope_to[0] for m in inbox.messages} == told
    assert len(inbox.messages) == len(told)

    inbox.clear()
    reopened = person.post(f"/ticket/{ticket_id}/reopen")
    assert f"Ticket #{ticket_id} is open again." in redirected_page(person, reopened)
    row = ticket_row(app, ticket_id)
    assert (row.status, row.closed_at, row.closed_by_id) == ("open", None, None)
    assert {m.envelope_to[0] for m in inbox.messages} == told


@pytest.mark.parametrize(
    ("action", "message"),
    [("close", "was already closed."), ("reopen", "was already open.")],
)
def test_closing_a_closed_ticket_or_reopening_an_open_one_changes_nothing_and_sends_nothing(
    app: Flask, alice: Client, bob: Client, inbox: Inbox, action: str, message: str
) -> None:
    ticket_id = alice.submit()
    assert bob.reply(ticket_id, "Following along").status_code == 303
    if action == "close":
        assert alice.post(f"/ticket/{ticket_id}/close").status_code == 303
    before = snapshot(app)
    inbox.clear()

    response = alice.post(f"/ticket/{ticket_id}/{action}")

    assert f"Ticket #{ticket_id} {message}" in redirected_page(alice, response)
    assert snapshot(app) == before
    assert inbox.messages == []


@pytest.mark.parametrize("replier", ["bob", "alice", "admin"])
def test_a_reply_to_a_closed_ticket_is_refused_and_the_text_stays_in_the_form(
    app: Flask, alice: Client, bob: Client, login: Any, inbox: Inbox, replier: str
) -> None:
    ticket_id = alice.submit()
    assert bob.reply(ticket_id, "Following along").status_code == 303
    assert alice.post(f"/ticket/{ticket_id}/close").status_code == 303
    person = {"alice": alice, "bob": bob}.get(replier) or login(replier)
    before = snapshot(app)
    inbox.clear()
    typed = "A long answer\nI spent <an hour> on & would hate to lose."

    response = person.reply(ticket_id, typed)

    assert response.status_code == 409
    assert CLOSED_MESSAGE in text(response)
    assert "Your text is still in the box below." in text(response)
    assert textarea(response) == typed
    assert snapshot(app) == before
    assert inbox.messages == []


# A custom FLASKET_IS_STAFF replaces the default is_admin rule


def carol_is_staff(user: Any) -> bool:
    return bool(user.username == "carol")


@visibility("own", FLASKET_IS_STAFF=carol_is_staff)
def test_custom_is_staff_makes_carol_staff_and_admin_an_ordinary_user_under_own(
    app: Flask, alice: Client, login: Any, inbox: Inbox
) -> None:
    ticket_id = alice.submit()
    carol, admin = login("carol"), login("admin")
    inbox.clear()

    assert admin.get(f"/ticket/{ticket_id}").status_code == 404
    assert "Printer is on fire" not in text(admin.get("/ticket/all"))
    before = snapshot(app)
    assert admin.post(f"/ticket/{ticket_id}/close").status_code == 404
    assert snapshot(app) == before
    assert inbox.messages == []

    page = carol.get(f"/ticket/{ticket_id}")
    assert page.status_code == 200
    assert "Close ticket" in text(page)
    assert "Printer is on fire" in text(carol.get("/ticket/all"))
    closed = carol.post(f"/ticket/{ticket_id}/close")
    assert f"Ticket #{ticket_id} is closed." in redirected_page(carol, closed)
    assert ticket_row(app, ticket_id).status == "closed"
    assert [m.envelope_to for m in inbox.messages] == [["alice@example.test"]]


@visibility("all", FLASKET_IS_STAFF=carol_is_staff)
def test_custom_is_staff_lets_carol_close_and_refuses_admin(
    app: Flask, alice: Client, login: Any, inbox: Inbox
) -> None:
    ticket_id = alice.submit()
    carol, admin = login("carol"), login("admin")
    before = snapshot(app)
    inbox.clear()

    refused = admin.post(f"/ticket/{ticket_id}/close")
    assert refused.status_code == 403
    assert "Only the ticket's author or staff can close this ticket." in text(refused)
    assert snapshot(app) == before
    assert inbox.messages == []

    closed = carol.post(f"/ticket/{ticket_id}/close")
    assert f"Ticket #{ticket_id} is closed." in redirected_page(carol, closed)
    assert ticket_row(app, ticket_id).status == "closed"


# State changes are POST-only and CSRF-protected


@pytest.mark.one_database
@pytest.mark.parametrize("action", ACTIONS)
def test_get_on_a_post_only_route_is_405_and_changes_nothing(
    app: Flask, alice: Client, bob: Client, inbox: Inbox, action: str
) -> None:
    ticket_id = alice.submit()
    if action == "reopen":
        assert alice.post(f"/ticket/{ticket_id}/close").status_code == 303
    if action == "unfollow":
        assert bob.post(f"/ticket/{ticket_id}/follow").status_code == 303
    person = bob if action in ("follow", "unfollow") else alice
    before = snapshot(app)
    inbox.clear()

    response = person.get(f"/ticket/{ticket_id}/{action}")

    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert "GET" not in response.headers["Allow"]
    assert snapshot(app) == before
    assert inbox.messages == []


CSRF_TARGETS = {
    "submit": ("/ticket/submit", FORM_DATA, "alice"),
    "reply": ("/ticket/{id}", {"body": "A reply"}, "alice"),
    "close": ("/ticket/{id}/close", {}, "alice"),
    "reopen": ("/ticket/{id}/reopen", {}, "alice"),
    "follow": ("/ticket/{id}/follow", {}, "bob"),
    "unfollow": ("/ticket/{id}/unfollow", {}, "bob"),
}


@pytest.mark.one_database
@pytest.mark.parametrize("token", [None, "wrong", ""], ids=["missing", "wrong", "empty"])
@pytest.mark.parametrize("target", CSRF_TARGETS)
def test_a_post_without_a_valid_csrf_token_is_400_with_a_message_and_stores_nothing(
    app: Flask,
    alice: Client,
    bob: Client,
    inbox: Inbox,
    target: str,
    token: str | None,
) -> None:
    ticket_id = alice.submit()
    assert bob.reply(ticket_id, "Following along").status_code == 303
    if target == "reopen":
        assert alice.post(f"/ticket/{ticket_id}/close").status_code == 303
    if target == "follow":
        assert bob.post(f"/ticket/{ticket_id}/unfollow").status_code == 303
    route, data, username = CSRF_TARGETS[target]
    person = alice if username == "alice" else bob
    data = dict(data)
    if token is not None:
        data["csrf_token"] = token
    before = snapshot(app)
    inbox.clear()

    response = person.post(route.format(id=ticket_id), data, csrf=False)

    assert response.status_code == 400
    page = text(response)
    if target == "submit":
        assert SUBMIT_CSRF_MESSAGE in page
        assert 'value="Sneaky"' in page  # what was typed comes back, with a fresh token
        assert 'name="csrf_token"' in page
    elif target == "reply":
        assert REPLY_CSRF_MESSAGE in page
        assert textarea(response) == "A reply"
        assert 'name="csrf_token"' in page
    else:
        assert ACTION_CSRF_MESSAGE in page
        assert f'<a href="/ticket/{ticket_id}">Back to ticket #{ticket_id}</a>' in page
    assert "Reload" not in page
    assert snapshot(app) == before
    assert inbox.messages == []


# Notifications go only to people who may still read the ticket


@pytest.mark.parametrize(
    ("app_config", "bob_is_told"),
    [({"FLASKET_VISIBILITY": "own"}, False), ({"FLASKET_VISIBILITY": "all"}, True)],
    ids=["own", "all"],
)
def test_a_follower_who_may_not_read_the_ticket_gets_no_mail(
    app: Flask, alice: Client, admin: Client, inbox: Inbox, bob_is_told: bool
) -> None:
    ticket_id = alice.submit()
    add_follow(app, ticket_id, "bob")
    inbox.clear()

    assert admin.reply(ticket_id, "Looking into it").status_code == 303
    assert admin.post(f"/ticket/{ticket_id}/close").status_code == 303

    assert len(inbox.to("alice@example.test")) == 2
    assert len(inbox.to("bob@example.test")) == (2 if bob_is_told else 0)
