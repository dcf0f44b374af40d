"""What users write is shown as text everywhere: pages, HTML mail, subjects, and search."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from markupsafe import escape

from tests.helpers import Client, Inbox, Received
from tests.hostapp import User, db

STAFF = "staff@example.test"
TITLE = "<script>alert(1)</script>"
BODY = 'Look: <img src=x onerror=alert(1)> "quoted" & done'
REPLY = "<script>steal(document.cookie)</script>"
ESCAPED_TITLE = "&lt;script&gt;alert(1)&lt;/script&gt;"
ESCAPED_BODY = "&lt;img src=x onerror=alert(1)&gt;"
ESCAPED_REPLY = "&lt;script&gt;steal(document.cookie)&lt;/script&gt;"
#: Flasket's pages and mails carry no script or image of their own.
RAW_TAGS = ("<script", "<img", "<svg")


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"FLASKET_STAFF_RECIPIENTS": [STAFF]}


@pytest.fixture
def ticket_id(alice: Client, bob: Client) -> int:
    found = alice.submit(title=TITLE, body=BODY)
    assert bob.reply(found, REPLY).status_code == 303
    return found


def assert_no_raw_tags(markup: str) -> None:
    found = [tag for tag in RAW_TAGS if tag in markup]
    assert found == [], f"unescaped user text in: {markup[:2000]}"


def page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return str(response.get_data(as_text=True))


PAGES = {
    "index": ("/ticket/", [ESCAPED_TITLE]),
    "all": ("/ticket/all?status=all", [ESCAPED_TITLE]),
    "ticket": ("/ticket/{id}", [ESCAPED_TITLE, ESCAPED_BODY, ESCAPED_REPLY]),
    "author's page": ("/ticket/user/1", [ESCAPED_TITLE]),
    "replier's follows": ("/ticket/user/2?show=following", [ESCAPED_TITLE]),
    "replier's replies": ("/ticket/user/2?show=replies", [ESCAPED_TITLE, ESCAPED_REPLY]),
    "search for the title": (f"/ticket/all?status=all&q={quote(TITLE)}", [ESCAPED_TITLE]),
    "search for the body": ("/ticket/all?status=all&q=onerror", [ESCAPED_TITLE]),
}


@pytest.mark.parametrize("name", PAGES)
def test_user_text_is_escaped_on_every_page(
    alice: Client, bob: Client, ticket_id: int, name: str
) -> None:
    url, escaped = PAGES[name]

    markup = page(bob, url.format(id=ticket_id))

    assert_no_raw_tags(markup)
    for text in escaped:
        assert text in markup


def test_a_search_query_is_escaped_where_it_is_shown_again(alice: Client, ticket_id: int) -> None:
    query = '"><svg onload=alert(1)>'

    markup = page(alice, f"/ticket/all?q={quote(query)}")

    assert_no_raw_tags(markup)
    assert 'value="&#34;&gt;&lt;svg onload=alert(1)&gt;"' in markup


@pytest.mark.one_database
def test_a_title_is_escaped_when_the_ticket_form_is_shown_again(alice: Client) -> None:
    title = '"><svg onload=alert(1)>'

    response = alice.post("/ticket/submit", {"title": title, "body": ""})

    assert response.status_code == 400
    markup = response.get_data(as_text=True)
    assert_no_raw_tags(markup)
    assert 'value="&#34;&gt;&lt;svg onload=alert(1)&gt;"' in markup


@pytest.mark.one_database
def test_a_reply_is_escaped_when_the_reply_form_is_shown_again(
    alice: Client, ticket_id: int
) -> None:
    assert alice.post(f"/ticket/{ticket_id}/close").status_code == 303

    response = alice.reply(ticket_id, "</textarea><svg onload=alert(1)>")

    assert response.status_code == 409
    markup = response.get_data(as_text=True)
    assert_no_raw_tags(markup)
    assert "&lt;/textarea&gt;&lt;svg onload=alert(1)&gt;</textarea>" in markup


def mail_parts_are_safe(mail: Received, *literal: str) -> None:
    """The HTML part escapes every literal; the text part shows each one as typed."""
    markup = mail.part("html")
    assert_no_raw_tags(markup)
    for text in literal:
        assert escape(text) in markup
        assert text in mail.part("plain")


@pytest.mark.one_database
def test_user_text_is_escaped_in_every_html_mail_and_literal_in_the_text_part(
    alice: Client, bob: Client, login: Any, inbox: Inbox
) -> None:
    ticket_id = alice.submit(title=TITLE, body=BODY)
    [created] = inbox.to(STAFF)
    mail_parts_are_safe(created, TITLE, BODY)
    assert created.subject == f"[Ticket #{ticket_id}] {TITLE}"

    inbox.clear()
    assert bob.reply(ticket_id, REPLY).status_code == 303
    [replied] = inbox.to("alice@example.test")
    mail_parts_are_safe(replied, TITLE, REPLY)
    assert replied.subject == f"Re: [Ticket #{ticket_id}] {TITLE}"

    inbox.clear()
    assert login("admin").post(f"/ticket/{ticket_id}/close").status_code == 303
    assert len(inbox.messages) == 2
    for closed in inbox.messages:
        mail_parts_are_safe(closed, TITLE)
        assert closed.subject == f"Re: [Ticket #{ticket_id}] {TITLE}"

    inbox.clear()
    assert alice.post(f"/ticket/{ticket_id}/reopen").status_code == 303
    [reopened] = inbox.to("bob@example.test")
    mail_parts_are_safe(reopened, TITLE)


@pytest.mark.one_database
def test_a_long_title_stays_whole_and_on_one_line_in_the_subject(
    alice: Client, inbox: Inbox
) -> None:
    title = ("<b>Überlong & 'quoted'</b> " * 7).strip()
    assert len(title) <= 200

    ticket_id = alice.submit(title=title, body="Body")

    [created] = inbox.to(STAFF)
    assert created.subject == f"[Ticket #{ticket_id}] {title}"
    assert "\n" not in created.subject
    assert escape(title) in created.part("html")


def test_a_hostile_user_name_is_escaped_on_pages_and_in_mail(
    app: Flask, login: Any, bob: Client, inbox: Inbox
) -> None:
    name = "eve\"'><svg onload=alert(1)>"
    with app.app_context():
        db.session.add(User(username=name, email="eve@example.test"))
        db.session.commit()
    eve = login(name)

    ticket_id = eve.submit(title="Hello", body="Hi")
    [created] = inbox.to(STAFF)
    assert_no_raw_tags(created.part("html"))
    assert escape(name) in created.part("html")
    assert name in created.part("plain")

    inbox.clear()
    assert eve.reply(ticket_id, "Me again").status_code == 303
    assert bob.reply(ticket_id, "Hello eve").status_code == 303
    assert eve.reply(ticket_id, "Thanks").status_code == 303
    [told] = inbox.to("bob@example.test")
    assert_no_raw_tags(told.part("html"))
    assert escape(name) in told.part("html")

    for url in (
        "/ticket/",
        "/ticket/all",
        f"/ticket/{ticket_id}",
        "/ticket/user/2?show=following",
    ):
        markup = page(bob, url)
        assert_no_raw_tags(markup)
        assert escape(name) in markup
    # Eve's links lead to her page by her key: her name is not in them.
    markup = page(bob, f"/ticket/{ticket_id}")
    links = re.findall(r'<a href="(/ticket/user/[^"]+)">([^<]*)</a>', markup)
    [eves_page] = {link for link, text in links if html.unescape(text) == name}
    assert "svg" not in eves_page
    assert escape(name) in page(bob, html.unescape(eves_page))


# Search matches %, _ and \ literally

SEARCH_TITLES = [
    "100% done",
    "Order 50 widgets",
    "a_b",
    "axb",
    "C:\\temp\\new",
    "either/or",
    "plain words",
]


TICKET_LINK = re.compile(r'class="flasket-ticket-link"[^>]*><span[^>]*>#\d+</span> (.*?)</a>')


def found_titles(client: Client, query: str) -> list[str]:
    markup = page(client, f"/ticket/all?status=all&sort=oldest&q={quote(query)}")
    titles = TICKET_LINK.findall(markup)
    return [html.unescape(title) for title in titles]


# A query with letters or digits is a word-prefix search (see flasket/search.py), where
# punctuation separates words; MariaDB's index leaves out words under three characters, so
# short ones are literal substrings there. The third column lists where the full-text answer
# differs from the literal one. Either way %, _ and \ never match other characters.
@pytest.mark.parametrize(
    ("query", "expected", "full_text"),
    [
        ("%", ["100% done"], {}),
        ("0%", ["100% done"], {"postgresql": [], "sqlite": []}),
        ("50%", [], {"postgresql": ["Order 50 widgets"], "sqlite": ["Order 50 widgets"]}),
        ("%%", [], {}),
        ("_", ["a_b"], {}),
        ("a_b", ["a_b"], {}),
        ("\\", ["C:\\temp\\new"], {}),
        ("\\t", ["C:\\temp\\new"], {}),
        ("/", ["either/or"], {}),
        ("r/o", ["either/or"], {"postgresql": [], "sqlite": []}),
        ("50", ["Order 50 widgets"], {}),
        ("A_B", ["a_b"], {}),
        ("wid_ets", [], {}),
        ("widg%ts", [], {}),
        (
            "widget%",
            [],
            {key: ["Order 50 widgets"] for key in ("postgresql", "mariadb", "sqlite")},
        ),
    ],
)
def test_search_matches_wildcard_characters_literally(
    alice: Client,
    backend: str,
    query: str,
    expected: list[str],
    full_text: dict[str, list[str]],
) -> None:
    for title in SEARCH_TITLES:
        alice.submit(title=title, body="Nothing special here.")

    assert found_titles(alice, query) == full_text.get(backend, expected)
