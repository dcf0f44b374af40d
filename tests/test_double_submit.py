"""The same ticket or reply form sent twice (a double click, a reload) stores one row.

Each form carries a one-time ``form_key``; a second sending is answered like the first.
The parallel sendings run against a file database on SQLite, so that each thread has a
connection of its own, as they do on PostgreSQL and MariaDB.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.helpers import Client, Inbox, ext_models, rows, text
from tests.test_concurrency import race

RACERS = 12
KEY_FIELD = re.compile(r'name="form_key" type="hidden" value="([^"]+)"')
CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
CATEGORIES = {"urgency": "High", "application": "Website", "topic": "Bug report"}

handed: list[list[int]] = []


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """SQLite in a file (one connection per thread); the servers as conftest makes them."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'flasket.db'}"
        return
    from tests.databases import fresh_database

    with fresh_database(backend) as url:
        yield url


@pytest.fixture
def app_config(backend: str) -> dict[str, Any]:
    """Every racing request has a connection; the hook notes what was handed to delivery."""
    handed.clear()
    engine: dict[str, Any] = {"pool_size": RACERS + 5, "max_overflow": 0}
    if backend == "sqlite":
        engine["connect_args"] = {"timeout": 30}
    return {
        "SQLALCHEMY_ENGINE_OPTIONS": engine,
        "FLASKET_DELIVERY": "hook",
        "FLASKET_DELIVERY_HOOK": handed.append,
        "FLASKET_STAFF_RECIPIENTS": ["desk@example.test"],
    }


def form_of(client: Client, url: str) -> dict[str, str]:
    """The hidden fields of the form on ``url``: its CSRF token and its one-time key."""
    page = client.get(url).get_data(as_text=True)
    key, token = KEY_FIELD.search(page), CSRF_FIELD.search(page)
    assert key, f"no form key on {url}"
    assert token
    return {"csrf_token": token.group(1), "form_key": key.group(1)}


def ticket_form(client: Client) -> dict[str, str]:
    return {**form_of(client, "/ticket/submit"), "title": "Printer", "body": "Fire.", **CATEGORIES}


def events(app: Flask) -> list[Any]:
    return rows(app, ext_models(app).OutboxEvent)


def test_the_same_ticket_form_sent_twice_stores_one_ticket_and_answers_alike(
    app: Flask, alice: Client
) -> None:
    form = ticket_form(alice)

    first = alice.http.post("/ticket/submit", data=form)
    second = alice.http.post("/ticket/submit", data=form)

    [ticket] = rows(app, ext_models(app).Ticket)
    assert ticket.form_key == form["form_key"]
    for response in (first, second):
        assert response.status_code == 303
        assert response.headers["Location"] == f"/ticket/{ticket.id}"
    assert f"Ticket #{ticket.id} submitted." in text(alice.get(f"/ticket/{ticket.id}"))
    assert len(events(app)) == 1
    assert len(handed) == 1


def test_the_same_reply_form_sent_twice_posts_once_and_mails_each_follower_once(
    app: Flask, alice: Client, bob: Client, login: Any, inbox: Inbox
) -> None:
    app.config["FLASKET_DELIVERY"] = "after_request"
    ticket_id = alice.submit()
    assert login("carol").post(f"/ticket/{ticket_id}/follow").status_code == 303
    form = {**form_of(bob, f"/ticket/{ticket_id}"), "body": "Any news?"}
    inbox.messages.clear()

    first = bob.http.post(f"/ticket/{ticket_id}", data=form)
    second = bob.http.post(f"/ticket/{ticket_id}", data=form)

    [reply] = rows(app, ext_models(app).Reply)
    for response in (first, second):
        assert response.status_code == 303
        assert response.headers["Location"] == f"/ticket/{ticket_id}#reply-{reply.id}"
    assert "Your reply was posted." in text(bob.get(f"/ticket/{ticket_id}"))
    assert [t.reply_count for t in rows(app, ext_models(app).Ticket)] == [1]
    assert sorted(m.envelope_to[0] for m in inbox.messages) == [
        "alice@example.test",
        "carol@example.test",
    ]


@pytest.mark.one_database
def test_a_form_sent_twice_shows_its_message_once(app: Flask, alice: Client) -> None:
    """The message is the session's (flashed), so the database cannot change it."""
    form = ticket_form(alice)
    alice.http.post("/ticket/submit", data=form)
    alice.http.post("/ticket/submit", data=form)
    [ticket] = rows(app, ext_models(app).Ticket)
    page = text(alice.get(f"/ticket/{ticket.id}"))
    assert page.count(f"Ticket #{ticket.id} submitted.") == 1

    reply = {**form_of(alice, f"/ticket/{ticket.id}"), "body": "More detail."}
    alice.http.post(f"/ticket/{ticket.id}", data=reply)
    alice.http.post(f"/ticket/{ticket.id}", data=reply)
    assert text(alice.get(f"/ticket/{ticket.id}")).count("Your reply was posted.") == 1


def test_a_reply_sent_again_after_the_ticket_was_closed_is_answered_as_posted(
    app: Flask, alice: Client, bob: Client
) -> None:
    ticket_id = alice.submit()
    form = {**form_of(bob, f"/ticket/{ticket_id}"), "body": "Thanks!"}
    first = bob.http.post(f"/ticket/{ticket_id}", data=form)
    assert alice.post(f"/ticket/{ticket_id}/close").status_code == 303

    again = bob.http.post(f"/ticket/{ticket_id}", data=form)

    assert again.status_code == 303
    assert again.headers["Location"] == first.headers["Location"]
    assert len(rows(app, ext_models(app).Reply)) == 1


def test_a_reply_on_a_later_page_is_answered_with_its_own_page_when_sent_again(
    app: Flask, alice: Client, bob: Client
) -> None:
    app.config["FLASKET_REPLIES_PER_PAGE"] = 2
    ticket_id = alice.submit()
    for n in range(2):
        assert bob.reply(ticket_id, f"Earlier {n}").status_code == 303
    form = {**form_of(bob, f"/ticket/{ticket_id}"), "body": "Third."}
    first = bob.http.post(f"/ticket/{ticket_id}", data=form)
    assert bob.reply(ticket_id, "Fourth.").status_code == 303

    again = bob.http.post(f"/ticket/{ticket_id}", data=form)

    assert first.headers["Location"].startswith(f"/ticket/{ticket_id}?page=2#reply-")
    assert again.headers["Location"] == first.headers["Location"]


def test_a_form_key_someone_else_used_is_a_400_and_stores_nothing(
    app: Flask, alice: Client, bob: Client
) -> None:
    form = ticket_form(alice)
    assert alice.http.post("/ticket/submit", data=form).status_code == 303
    bobs = {**form, "csrf_token": form_of(bob, "/ticket/submit")["csrf_token"], "title": "Bob's"}

    response = bob.http.post("/ticket/submit", data=bobs)

    assert response.status_code == 400
    page = text(response)
    assert "Nothing was stored because this form could not be used." in page
    assert "Bob's" in page  # what was typed comes back
    new_key = KEY_FIELD.search(page)
    assert new_key
    assert new_key.group(1) != form["form_key"]
    assert len(rows(app, ext_models(app).Ticket)) == 1
    assert (
        bob.http.post("/ticket/submit", data={**bobs, "form_key": new_key[1]}).status_code == 303
    )


def test_a_reply_key_used_on_another_ticket_or_by_someone_else_is_a_400(
    app: Flask, alice: Client, bob: Client
) -> None:
    first, second = alice.submit(), alice.submit()
    form = {**form_of(bob, f"/ticket/{first}"), "body": "Mine."}
    assert bob.http.post(f"/ticket/{first}", data=form).status_code == 303
    alices = {**form, "csrf_token": form_of(alice, f"/ticket/{first}")["csrf_token"]}

    assert bob.http.post(f"/ticket/{second}", data=form).status_code == 400
    assert alice.http.post(f"/ticket/{first}", data=alices).status_code == 400
    assert len(rows(app, ext_models(app).Reply)) == 1


def test_the_same_form_sent_again_with_other_text_is_a_409_that_keeps_the_text(
    app: Flask, alice: Client
) -> None:
    form = ticket_form(alice)
    first = alice.http.post("/ticket/submit", data=form)
    ticket_id = first.headers["Location"].rsplit("/", 1)[1]

    response = alice.http.post("/ticket/submit", data={**form, "body": "Fire, and smoke."})

    assert response.status_code == 409
    page = text(response)
    assert f"You had sent this form before, for ticket #{ticket_id}, with other text." in page
    assert "Fire, and smoke." in page
    assert len(rows(app, ext_models(app).Ticket)) == 1


def test_forms_sent_without_a_key_are_each_stored(app: Flask, alice: Client) -> None:
    alice.submit()
    alice.submit()
    ticket_id = alice.submit()
    alice.reply(ticket_id, "Same.")
    alice.reply(ticket_id, "Same.")

    assert len(rows(app, ext_models(app).Ticket)) == 3
    assert [r.form_key for r in rows(app, ext_models(app).Reply)] == [None, None]


@pytest.mark.parametrize(
    "key",
    [
        "short",
        "x" * 44,
        "<script>alert(1)</script>",
        "a b c d e f g h i j k",
        "é" * 20,
        "abcdefghijklmnop'--",
        ["abcdefghijklmnopqrstuv", "abcdefghijklmnopqrstuw"],
    ],
)
def test_a_malformed_form_key_is_a_400_that_stores_nothing(
    app: Flask, alice: Client, key: Any
) -> None:
    ticket_id = alice.submit()
    sent = {**ticket_form(alice), "form_key": key}
    reply = {**form_of(alice, f"/ticket/{ticket_id}"), "body": "Hi", "form_key": key}

    submitted = alice.http.post("/ticket/submit", data=sent)
    replied = alice.http.post(f"/ticket/{ticket_id}", data=reply)

    # A key sent twice is refused before the form is read, as any repeated field is.
    refusal = "more than once" if isinstance(key, list) else "this form could not be used."
    for response in (submitted, replied):
        assert response.status_code == 400
        assert refusal in text(response)
    assert len(rows(app, ext_models(app).Ticket)) == 1
    assert rows(app, ext_models(app).Reply) == []


@pytest.mark.parametrize(
    ("action", "done", "again"),
    [
        ("close", "is closed.", "was already closed."),
        ("follow", "You follow ticket", "You already follow ticket"),
        ("unfollow", "You no longer follow ticket", "You were not following ticket"),
    ],
)
def test_buttons_pressed_twice_change_once(
    app: Flask, alice: Client, bob: Client, action: str, done: str, again: str
) -> None:
    ticket_id = alice.submit()
    clicker = alice if action == "close" else bob
    if action == "unfollow":
        assert bob.post(f"/ticket/{ticket_id}/follow").status_code == 303
    handed.clear()
    token = form_of(clicker, f"/ticket/{ticket_id}")["csrf_token"]

    pages = []
    for _ in range(2):
        response = clicker.http.post(f"/ticket/{ticket_id}/{action}", data={"csrf_token": token})
        assert response.status_code == 303
        pages.append(text(clicker.get(response.headers["Location"])))

    assert done in pages[0]
    assert again in pages[1]
    [ticket] = rows(app, ext_models(app).Ticket)
    assert ticket.follower_count == len(rows(app, ext_models(app).Follow))
    assert len(handed) == (1 if action == "close" else 0)


def sending(client: Client, url: str, form: dict[str, str]) -> Callable[[], Any]:
    """The POST of ``form`` from ``client`` (its own CSRF token), ready to fire."""
    data = {**form, "csrf_token": client.csrf()}
    return lambda: client.http.post(url, data=data)


def test_parallel_sendings_of_one_ticket_form_store_one_ticket(
    app: Flask, alice: Client, login: Any
) -> None:
    form = ticket_form(alice)
    tabs = [login("alice") for _ in range(RACERS)]

    responses = race([sending(tab, "/ticket/submit", form) for tab in tabs])

    [ticket] = rows(app, ext_models(app).Ticket)
    assert [r.status_code for r in responses] == [303] * RACERS
    assert {r.headers["Location"] for r in responses} == {f"/ticket/{ticket.id}"}
    assert len(events(app)) == 1
    assert len(handed) == 1
    assert len(rows(app, ext_models(app).Follow)) == 1


def test_parallel_sendings_of_one_reply_form_post_one_reply(
    app: Flask, alice: Client, bob: Client, login: Any
) -> None:
    ticket_id = alice.submit()
    handed.clear()
    form = {**form_of(bob, f"/ticket/{ticket_id}"), "body": "Once."}
    tabs = [login("bob") for _ in range(RACERS)]

    responses = race([sending(tab, f"/ticket/{ticket_id}", form) for tab in tabs])

    [reply] = rows(app, ext_models(app).Reply)
    assert [r.status_code for r in responses] == [303] * RACERS
    assert {r.headers["Location"] for r in responses} == {f"/ticket/{ticket_id}#reply-{reply.id}"}
    assert [t.reply_count for t in rows(app, ext_models(app).Ticket)] == [1]
    assert len([e for e in events(app) if e.event == "replied"]) == 1
    assert len(handed) == 1
