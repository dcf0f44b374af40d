"""Changing what was written: staff edit a ticket's title and categories, authors edit their
own texts for a while, staff hide a reply and show it again.

Staff's edit (``POST /ticket/<id>/edit``) changes the title and category values, records
each change, mails nobody and sends :data:`flasket.signals.ticket_edited`. An author edits
their own description or reply (``/revise``) within ``FLASKET_EDIT_WINDOW``; the earlier
text goes to ``flasket_revision``, everyone sees "edited", and staff alone read the earlier
versions. A hidden reply's text leaves every page, list and search (staff read it on the
versions page) and comes back when shown again. Whatever is refused changes nothing and
mails nobody.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask import Flask

from flasket import actions, policy, signals
from flasket.config import BODY_MAX_LENGTH, TITLE_MAX_LENGTH
from tests.helpers import (
    Client,
    Inbox,
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
TICKET_LINK = re.compile(r'class="flasket-ticket-link" href="/ticket/(\d+)"')
HIDDEN = "This reply was hidden by staff."
EDITED = re.compile(r'<span class="flasket-edited">edited <time ')
ACTION_CSRF = "Nothing was changed because the page with that button had expired."
REVISE_CSRF = "Your change was not saved yet because the page had expired."
NOT_YOURS = "Only its author can edit this text, for a while after writing it."
#: Words search can find on every database (long enough, no stop words), one per text.
OLD_WORD, NEW_WORD, REPLY_WORD, SECRET_WORD = "zebrafish", "axolotl", "narwhal", "quokka"
CATEGORIES = {"urgency": "High", "application": "Website", "topic": "Bug report"}


def textarea(response: Any) -> str:
    """What the form's text box holds."""
    found = re.search(r'<textarea[^>]*name="body">(.*?)</textarea>', text(response), re.S)
    assert found is not None, "no text box"
    return found.group(1).strip()


def flashes(client: Client, response: Any) -> list[tuple[str, str]]:
    """The messages the page the response redirects to shows, as (category, text); a reply's
    own address redirects on to the page of the ticket that shows it."""
    assert response.status_code == 303, text(response)
    landed = client.get(response.headers["Location"], follow_redirects=True)
    page = landed.get_data(as_text=True)
    if 'class="flasket flasket-messages"' not in page:
        return []
    shown = page.split('class="flasket flasket-messages"', 1)[1].split("</div>", 1)[0]
    return [(kind, html.unescape(message.strip())) for kind, message in FLASH.findall(shown)]


def reply_address(ticket_id: int, reply_id: int) -> str:
    """A reply's own address: it redirects to the page of the ticket that shows the reply."""
    return f"/ticket/{ticket_id}/replies/{reply_id}"


def lands_at(client: Client, response: Any, ticket_id: int, reply_id: int) -> str:
    """Check that ``response`` redirects (303) to the reply's own address and return where
    that sends the reader on (302): the ticket's page of the reply, at the reply."""
    assert response.status_code == 303, text(response)
    assert response.headers["Location"].endswith(reply_address(ticket_id, reply_id))
    onward = client.get(response.headers["Location"])
    assert onward.status_code == 302
    return str(onward.headers["Location"])


def found_by(client: Client, query: str) -> list[int]:
    """The tickets a search for ``query`` lists (every status)."""
    page = client.get(f"/ticket/all?status=all&sort=created&q={quote(query)}")
    assert page.status_code == 200
    return [int(found) for found in TICKET_LINK.findall(page.get_data(as_text=True))]


def categories_of(app: Flask, ticket_id: int) -> dict[str, str]:
    found = rows(app, ext_models(app).TicketCategory, ticket_id=ticket_id)
    return {c.name: c.value for c in found}


def reply_row(app: Flask, reply_id: int) -> Any:
    (found,) = rows(app, ext_models(app).Reply, id=reply_id)
    return found


def revisions(app: Flask, ticket_id: int) -> list[Any]:
    found = rows(app, ext_models(app).Revision, ticket_id=ticket_id)
    return sorted(found, key=lambda r: r.id)


def changes(app: Flask, ticket_id: int) -> list[Any]:
    return sorted(rows(app, ext_models(app).Change, ticket_id=ticket_id), key=lambda c: c.id)


def snapshot(app: Flask, ticket_id: int) -> tuple[Any, ...]:
    """Everything an edit, a revision or hiding could change, and the mail written."""
    models = ext_models(app)
    found = ticket_row(app, ticket_id)
    replies = sorted(
        (r.id, r.body, r.edited_at, r.hidden_at)
        for r in rows(app, models.Reply, ticket_id=ticket_id)
    )
    return (
        (found.title, found.body, found.edited_at, found.updated_at, found.status),
        categories_of(app, ticket_id),
        replies,
        [(r.reply_id, r.body, r.reason) for r in revisions(app, ticket_id)],
        [(c.field, c.old_value, c.new_value) for c in changes(app, ticket_id)],
        len(rows(app, models.OutboxEvent)),
    )


def set_created_at(app: Flask, model: Any, row_id: int, when: datetime) -> None:
    """Pretend a text was written at ``when``: the edit window counts from it."""
    with app.app_context():
        db.session.execute(sa.update(model).where(model.id == row_id).values(created_at=when))
        db.session.commit()


def edit(client: Client, ticket_id: int, title: str, csrf: bool = True, **categories: str) -> Any:
    data = {"title": title, **CATEGORIES, **categories}
    return client.post(f"/ticket/{ticket_id}/edit", data, csrf=csrf)


def revise(client: Client, ticket_id: int, body: str, reply_id: int | None = None) -> Any:
    return client.post(revise_url(ticket_id, reply_id), {"body": body})


def revise_url(ticket_id: int, reply_id: int | None = None) -> str:
    if reply_id is None:
        return f"/ticket/{ticket_id}/revise"
    return f"/ticket/{ticket_id}/replies/{reply_id}/revise"


def versions_url(ticket_id: int, reply_id: int | None = None) -> str:
    if reply_id is None:
        return f"/ticket/{ticket_id}/versions"
    return f"/ticket/{ticket_id}/replies/{reply_id}/versions"


def reply_of(app: Flask, client: Client, ticket_id: int, body: str) -> int:
    assert client.reply(ticket_id, body).status_code == 303
    return max(int(r.id) for r in rows(app, ext_models(app).Reply, ticket_id=ticket_id))


def reply_tools(page: str, reply_id: int) -> str:
    """The markup of one reply in a ticket page."""
    start = page.index(f'<li id="reply-{reply_id}"')
    return page[start : page.index("</li>", start)]


def description(page: str) -> str:
    """The markup of the ticket's description and the tools under it."""
    start = page.index('<div class="flasket-post">')
    return page[start : page.index('<section aria-labelledby="flasket-replies">', start)]


@pytest.fixture
def ticket_id(alice: Client, bob: Client, inbox: Inbox) -> int:
    """Alice's open ticket, followed by Bob; the inbox starts empty."""
    found = alice.submit(f"Printer {OLD_WORD} jams", f"Every second page {OLD_WORD}.")
    assert bob.post(f"/ticket/{found}/follow").status_code == 303
    inbox.clear()
    return found


@pytest.fixture
def edited() -> Iterator[list[tuple[int, str, list[str]]]]:
    """Every ticket_edited signal: (ticket id, user's name, changes)."""
    caught: list[tuple[int, str, list[str]]] = []

    def receive(sender: Any, **kwargs: Any) -> None:
        caught.append((kwargs["ticket"].id, kwargs["user"].username, kwargs["changes"]))

    signals.ticket_edited.connect(receive)
    yield caught
    signals.ticket_edited.disconnect(receive)


# --- staff edit the title and categories ---------------------------------------------------------


def test_staff_edit_the_title_and_categories_recorded_signalled_and_mailed_to_nobody(
    app: Flask,
    ticket_id: int,
    admin: Client,
    alice: Client,
    inbox: Inbox,
    edited: list[Any],
) -> None:
    before = ticket_row(app, ticket_id)
    response = edit(admin, ticket_id, f"Printer {NEW_WORD} jams", urgency="Low", topic="Question")
    assert flashes(admin, response) == [("success", f"Ticket #{ticket_id} is updated.")]

    after = ticket_row(app, ticket_id)
    assert after.title == f"Printer {NEW_WORD} jams"
    assert after.body == before.body
    assert after.updated_at > before.updated_at
    assert categories_of(app, ticket_id) == {
        "urgency": "Low",
        "application": "Website",
        "topic": "Question",
    }
    assert [(c.field, c.detail, c.old_value, c.new_value) for c in changes(app, ticket_id)] == [
        ("title", None, f"Printer {OLD_WORD} jams", f"Printer {NEW_WORD} jams"),
        ("category", "urgency", "High", "Low"),
        ("category", "topic", "Bug report", "Question"),
    ]
    assert edited == [(ticket_id, "admin", ["title", "urgency", "topic"])]
    assert inbox.messages == []
    assert rows(app, ext_models(app).OutboxEvent) == []

    page = text(alice.get(f"/ticket/{ticket_id}"))
    assert f"#{ticket_id}</span> Printer {NEW_WORD} jams</h1>" in page
    assert "<dt>Urgency</dt><dd>Low</dd>" in page
    assert "<dt>Topic</dt><dd>Question</dd>" in page
    # Search reads the new title; the old one is gone from it (the body keeps its word).
    assert found_by(alice, NEW_WORD) == [ticket_id]
    assert found_by(alice, f"Printer {NEW_WORD} jams") == [ticket_id]
    assert found_by(alice, "jams") == [ticket_id]
    assert ticket_id in found_by(alice, OLD_WORD)  # still in the description


def test_search_no_longer_finds_a_title_word_staff_edited_away(
    app: Flask, alice: Client, admin: Client
) -> None:
    ticket_id = alice.submit(f"Scanner {OLD_WORD}", "Nothing special.")
    assert found_by(alice, OLD_WORD) == [ticket_id]
    assert edit(admin, ticket_id, f"Scanner {NEW_WORD}").status_code == 303
    assert found_by(alice, OLD_WORD) == []
    assert found_by(alice, NEW_WORD) == [ticket_id]


def test_a_later_mail_carries_the_new_title(
    app: Flask, ticket_id: int, admin: Client, inbox: Inbox
) -> None:
    assert edit(admin, ticket_id, f"Printer {NEW_WORD} jams").status_code == 303
    assert inbox.messages == []
    assert admin.reply(ticket_id, "Looking.").status_code == 303
    subjects = {m.subject for m in inbox.messages}
    assert subjects == {f"Re: [Ticket #{ticket_id}] Printer {NEW_WORD} jams"}


def test_an_edit_that_changes_nothing_says_so_records_nothing_and_sends_nothing(
    app: Flask, ticket_id: int, admin: Client, inbox: Inbox, edited: list[Any]
) -> None:
    before = snapshot(app, ticket_id)
    response = edit(admin, ticket_id, f"  Printer {OLD_WORD} jams  ")  # stripped: the same
    assert flashes(admin, response) == [("info", "Nothing was changed.")]
    assert snapshot(app, ticket_id) == before
    assert edited == []
    assert inbox.messages == []


def test_only_staff_get_the_edit_form_filled_with_the_ticket_s_values(
    ticket_id: int, admin: Client, alice: Client, bob: Client
) -> None:
    page = admin.get(f"/ticket/{ticket_id}").get_data(as_text=True)
    assert f'action="/ticket/{ticket_id}/edit"' in page
    form = page.split(f'action="/ticket/{ticket_id}/edit"', 1)[1].split("</form>", 1)[0]
    assert f'value="Printer {OLD_WORD} jams"' in form
    assert '<option selected value="High">High</option>' in form
    assert '<option selected value="Bug report">Bug report</option>' in form
    for client in (alice, bob):
        assert "/edit" not in client.get(f"/ticket/{ticket_id}").get_data(as_text=True)


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_users_who_are_not_staff_cannot_edit_a_ticket(
    app: Flask, ticket_id: int, login: Any, who: str, inbox: Inbox, edited: list[Any]
) -> None:
    before = snapshot(app, ticket_id)
    response = edit(login(who), ticket_id, "Taken over", urgency="Low")
    assert response.status_code == 403
    assert "Only staff can edit a ticket's title and categories." in text(response)
    assert snapshot(app, ticket_id) == before
    assert edited == []
    assert inbox.messages == []


@pytest.mark.parametrize(
    ("title", "categories", "message"),
    [
        ("", {}, "Give your ticket a title."),
        ("   ", {}, "Give your ticket a title."),
        ("x" * (TITLE_MAX_LENGTH + 1), {}, f"The title may be at most {TITLE_MAX_LENGTH}"),
        ("Line one\nLine two", {}, "The title must be a single line of text."),
        ("Line one\u2028Line two", {}, "The title must be a single line of text."),
        ("Tab\there", {}, "The title must be a single line of text."),
        ("New title", {"urgency": "Extreme"}, "Choose one of: Low, Medium, or High."),
        ("New title", {"topic": "<script>x()</script>"}, "Choose one of:"),
        ("New title", {"application": ""}, "Choose the application."),
    ],
    ids=[
        "empty",
        "blank",
        "too long",
        "two lines",
        "line separator",
        "control character",
        "unknown urgency",
        "markup topic",
        "missing application",
    ],
)
def test_an_invalid_edit_is_refused_with_what_is_wrong_and_changes_nothing(
    app: Flask,
    ticket_id: int,
    admin: Client,
    inbox: Inbox,
    edited: list[Any],
    title: str,
    categories: dict[str, str],
    message: str,
) -> None:
    before = snapshot(app, ticket_id)
    sent = {"title": title, **CATEGORIES, **categories}
    response = admin.post(f"/ticket/{ticket_id}/edit", sent)
    assert response.status_code == 400
    assert message in text(response)
    assert "<script>x()" not in response.get_data(as_text=True)
    assert snapshot(app, ticket_id) == before
    assert edited == []
    assert inbox.messages == []


def test_a_title_of_the_longest_length_is_stored_whole(
    app: Flask, ticket_id: int, admin: Client
) -> None:
    longest = "é" * TITLE_MAX_LENGTH
    assert edit(admin, ticket_id, longest).status_code == 303
    assert ticket_row(app, ticket_id).title == longest
    (change,) = changes(app, ticket_id)
    assert change.new_value == longest


def test_an_edit_without_a_fresh_token_login_or_post_changes_nothing(
    app: Flask, ticket_id: int, admin: Client, inbox: Inbox
) -> None:
    before = snapshot(app, ticket_id)
    stale = edit(admin, ticket_id, "New title", csrf=False)
    assert stale.status_code == 400
    assert ACTION_CSRF in text(stale)
    anonymous = app.test_client().post(f"/ticket/{ticket_id}/edit", data={"title": "New"})
    assert anonymous.status_code == 302
    assert admin.get(f"/ticket/{ticket_id}/edit").status_code == 405
    assert admin.post("/ticket/999/edit", {"title": "New", **CATEGORIES}).status_code == 404
    assert snapshot(app, ticket_id) == before
    assert inbox.messages == []


@pytest.mark.parametrize("app_config", [{"FLASKET_VISIBILITY": "own"}])
def test_with_own_visibility_staff_edit_any_ticket_and_others_get_404(
    app: Flask, alice: Client, carol: Client, admin: Client
) -> None:
    ticket_id = alice.submit("Printer jams", "Every second page.")
    before = snapshot(app, ticket_id)
    assert edit(carol, ticket_id, "Mine").status_code == 404
    assert snapshot(app, ticket_id) == before
    assert edit(admin, ticket_id, "Printer jams on floor 2").status_code == 303
    assert ticket_row(app, ticket_id).title == "Printer jams on floor 2"


def test_an_edit_that_leaves_out_a_category_field_does_not_change_that_category(
    app: Flask, ticket_id: int, admin: Client
) -> None:
    response = admin.post(
        f"/ticket/{ticket_id}/edit",
        {"title": "Printer jams on floor 2", "application": "Website", "topic": "Bug report"},
    )
    # Either refused like a missing application, or the urgency left as it was.
    assert response.status_code in (303, 400)
    assert categories_of(app, ticket_id)["urgency"] == "High"
    assert [c.field for c in changes(app, ticket_id)] in ([], ["title"])


# --- authors edit their own texts ----------------------------------------------------------------


def test_the_author_edits_the_description_everyone_sees_edited_staff_read_the_earlier(
    app: Flask, ticket_id: int, alice: Client, bob: Client, admin: Client, inbox: Inbox
) -> None:
    form = alice.get(revise_url(ticket_id))
    assert form.status_code == 200
    assert f"Edit the description of #{ticket_id}" in text(form)
    assert textarea(form) == f"Every second page {OLD_WORD}."

    before = ticket_row(app, ticket_id)
    response = revise(alice, ticket_id, f"Every page {NEW_WORD}.")
    assert response.headers["Location"].endswith(f"/ticket/{ticket_id}#flasket-ticket-title")
    assert flashes(alice, response) == [("success", "Your text was changed.")]

    after = ticket_row(app, ticket_id)
    assert after.body == f"Every page {NEW_WORD}."
    assert after.edited_at is not None
    assert after.updated_at > before.updated_at
    assert after.title == before.title
    (kept,) = revisions(app, ticket_id)
    assert (kept.reply_id, kept.body, kept.reason, kept.editor_id) == (
        None,
        f"Every second page {OLD_WORD}.",
        "edit",
        user_id(app, "alice"),
    )
    assert inbox.messages == []
    assert rows(app, ext_models(app).OutboxEvent) == []

    for client in (alice, bob, admin):
        page = client.get(f"/ticket/{ticket_id}").get_data(as_text=True)
        shown = description(page)
        assert f"Every page {NEW_WORD}." in shown
        assert OLD_WORD not in shown
        assert EDITED.search(shown)
        assert (f'href="{versions_url(ticket_id)}"' in shown) == (client is admin)
        assert (f'href="{revise_url(ticket_id)}"' in shown) == (client is alice)

    versions = admin.get(versions_url(ticket_id))
    assert versions.status_code == 200
    page = words(versions)
    assert f"Earlier versions of the description of #{ticket_id}" in page
    assert "Only staff see this page." in page
    assert f"Now alice wrote just now: · edited just now Every page {NEW_WORD}." in page
    assert f"Before Replaced by alice just now; it said: Every second page {OLD_WORD}." in page
    for client in (alice, bob):
        refused = client.get(versions_url(ticket_id))
        assert refused.status_code == 403
        assert "Only staff can read earlier versions." in text(refused)
        assert OLD_WORD not in text(refused)

    assert found_by(bob, NEW_WORD) == [ticket_id]
    assert found_by(bob, "Every page") == [ticket_id]
    assert found_by(bob, OLD_WORD) == [ticket_id]  # still in the title
    assert found_by(bob, "second") == []


def test_the_author_edits_a_reply_and_search_reads_the_new_text(
    app: Flask, ticket_id: int, alice: Client, bob: Client, admin: Client, inbox: Inbox
) -> None:
    reply_id = reply_of(app, bob, ticket_id, f"Same here {REPLY_WORD}.")
    inbox.clear()
    assert found_by(alice, REPLY_WORD) == [ticket_id]
    form = bob.get(revise_url(ticket_id, reply_id))
    assert form.status_code == 200
    assert f"Edit your reply to #{ticket_id}" in text(form)

    response = revise(bob, ticket_id, f"Same here, {SECRET_WORD} too.", reply_id)
    landed = lands_at(bob, response, ticket_id, reply_id)
    assert landed.endswith(f"/ticket/{ticket_id}#reply-{reply_id}")
    assert flashes(bob, response) == [("success", "Your text was changed.")]
    found = reply_row(app, reply_id)
    assert found.body == f"Same here, {SECRET_WORD} too."
    assert found.edited_at is not None
    assert found.hidden_at is None
    (kept,) = revisions(app, ticket_id)
    assert (kept.reply_id, kept.body, kept.reason) == (
        reply_id,
        f"Same here {REPLY_WORD}.",
        "edit",
    )
    assert ticket_row(app, ticket_id).body == f"Every second page {OLD_WORD}."
    assert inbox.messages == []

    for client in (alice, bob, admin):
        shown = reply_tools(client.get(f"/ticket/{ticket_id}").get_data(as_text=True), reply_id)
        assert SECRET_WORD in shown
        assert REPLY_WORD not in shown
        assert EDITED.search(shown)
        assert (f'href="{versions_url(ticket_id, reply_id)}"' in shown) == (client is admin)
        assert (f'href="{revise_url(ticket_id, reply_id)}"' in shown) == (client is bob)
    page = text(admin.get(versions_url(ticket_id, reply_id)))
    assert f"Earlier versions of a reply to #{ticket_id}" in page
    assert f"Same here {REPLY_WORD}." in page
    assert bob.get(versions_url(ticket_id, reply_id)).status_code == 403

    assert found_by(alice, SECRET_WORD) == [ticket_id]
    assert found_by(alice, REPLY_WORD) == []
    # Bob's page lists the reply's new text only.
    replies_tab = text(bob.get(f"/ticket/user/{user_id(app, 'bob')}?show=replies"))
    assert SECRET_WORD in replies_tab
    assert REPLY_WORD not in replies_tab


def test_several_edits_keep_every_earlier_text_newest_first(
    app: Flask, ticket_id: int, alice: Client, admin: Client
) -> None:
    for body in ("Second version.", "Third version.", "Fourth version."):
        assert revise(alice, ticket_id, body).status_code == 303
    assert [r.body for r in revisions(app, ticket_id)] == [
        f"Every second page {OLD_WORD}.",
        "Second version.",
        "Third version.",
    ]
    page = text(admin.get(versions_url(ticket_id)))
    before = page.split('id="flasket-earlier"', 1)[1]
    places = [
        before.index(body)
        for body in ("Third version.", "Second version.", f"Every second page {OLD_WORD}.")
    ]
    assert places == sorted(places)
    assert "Fourth version." not in before
    assert [c.field for c in changes(app, ticket_id)] == ["edit"] * 3


def test_a_text_never_edited_has_no_earlier_versions(
    ticket_id: int, app: Flask, bob: Client, admin: Client
) -> None:
    reply_id = reply_of(app, bob, ticket_id, "Same here.")
    for url in (versions_url(ticket_id), versions_url(ticket_id, reply_id)):
        page = admin.get(url)
        assert page.status_code == 200
        assert "This text has not been changed." in text(page)
    shown = admin.get(f"/ticket/{ticket_id}").get_data(as_text=True)
    assert "/versions" not in shown
    assert not EDITED.search(shown)


def test_the_same_text_sent_again_changes_nothing(
    app: Flask, ticket_id: int, alice: Client
) -> None:
    before = snapshot(app, ticket_id)
    response = revise(alice, ticket_id, f"  Every second page {OLD_WORD}.\r\n")
    assert flashes(alice, response) == [("info", "Nothing was changed.")]
    assert snapshot(app, ticket_id) == before


def test_markup_in_edited_texts_is_escaped_on_every_page(
    app: Flask, ticket_id: int, alice: Client, bob: Client, admin: Client
) -> None:
    attack = "<script>alert('x')</script><img src=x onerror=y()>"
    assert revise(alice, ticket_id, attack).status_code == 303
    assert revise(alice, ticket_id, "Plain now.").status_code == 303
    reply_id = reply_of(app, bob, ticket_id, attack)
    assert revise(bob, ticket_id, "Plain reply.", reply_id).status_code == 303
    for url in (
        versions_url(ticket_id),
        versions_url(ticket_id, reply_id),
        f"/ticket/{ticket_id}",
        revise_url(ticket_id),
    ):
        page = admin.get(url) if "versions" in url or "revise" not in url else alice.get(url)
        raw = page.get_data(as_text=True)
        assert page.status_code == 200
        assert "<script>alert" not in raw
        assert "<img src=x" not in raw
    raw = admin.get(versions_url(ticket_id)).get_data(as_text=True)
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in raw


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ("", 400, "The text cannot be empty."),
        ("   \n  ", 400, "The text cannot be empty."),
        ("x" * (BODY_MAX_LENGTH + 1), 400, f"at most {BODY_MAX_LENGTH} characters"),
    ],
    ids=["empty", "blank", "too long"],
)
def test_an_empty_or_too_long_text_is_sent_back_and_changes_nothing(
    app: Flask, ticket_id: int, alice: Client, body: str, status: int, message: str
) -> None:
    before = snapshot(app, ticket_id)
    response = revise(alice, ticket_id, body)
    assert response.status_code == status
    assert message in text(response)
    assert snapshot(app, ticket_id) == before


def test_a_revision_without_a_fresh_token_keeps_the_text_in_the_box(
    app: Flask, ticket_id: int, alice: Client
) -> None:
    before = snapshot(app, ticket_id)
    response = alice.post(revise_url(ticket_id), {"body": "Changed."}, csrf=False)
    assert response.status_code == 400
    assert REVISE_CSRF in text(response)
    assert textarea(response) == "Changed."
    assert snapshot(app, ticket_id) == before
    assert app.test_client().get(revise_url(ticket_id)).status_code == 302


@pytest.mark.parametrize("who", ["bob", "carol", "admin"])
def test_nobody_but_the_author_edits_a_text_not_even_staff(
    app: Flask, ticket_id: int, bob: Client, login: Any, who: str, inbox: Inbox
) -> None:
    reply_id = reply_of(app, bob, ticket_id, "Same here.")
    inbox.clear()
    client = login(who)
    before = snapshot(app, ticket_id)
    # The description is Alice's; the reply is Bob's, and Bob may edit only that one.
    refused = [(None, "Changed.")] + ([] if who == "bob" else [(reply_id, "Changed.")])
    for target, body in refused:
        assert client.get(revise_url(ticket_id, target)).status_code == 403
        response = client.post(revise_url(ticket_id, target), {"body": body})
        assert response.status_code == 403
        assert NOT_YOURS in text(response)
    assert snapshot(app, ticket_id) == before
    assert inbox.messages == []
    page = client.get(f"/ticket/{ticket_id}").get_data(as_text=True)
    assert revise_url(ticket_id) + '"' not in page


def test_a_reply_of_another_ticket_or_no_reply_at_all_is_404(
    app: Flask, ticket_id: int, alice: Client, bob: Client, admin: Client
) -> None:
    other = alice.submit("Scanner jams", "Also.")
    reply_id = reply_of(app, bob, other, "Same here.")
    before = snapshot(app, other)
    for path in (
        revise_url(ticket_id, reply_id),
        versions_url(ticket_id, reply_id),
        revise_url(ticket_id, 999_999),
        versions_url(ticket_id, 999_999),
    ):
        client = admin if "versions" in path else bob
        assert client.get(path).status_code == 404
    assert bob.post(revise_url(ticket_id, reply_id), {"body": "Changed."}).status_code == 404
    for action in ("hide", "unhide"):
        response = admin.post(f"/ticket/{ticket_id}/replies/{reply_id}/{action}")
        assert response.status_code == 404
    assert snapshot(app, other) == before
    assert bob.get(revise_url(999, reply_id)).status_code == 404


@pytest.mark.parametrize("app_config", [{"FLASKET_VISIBILITY": "own"}])
def test_with_own_visibility_the_pages_of_a_ticket_others_may_not_read_are_404(
    app: Flask, alice: Client, carol: Client, admin: Client
) -> None:
    ticket_id = alice.submit("Printer jams", "Every second page.")
    for path in (revise_url(ticket_id), versions_url(ticket_id)):
        assert carol.get(path).status_code == 404
    assert carol.post(revise_url(ticket_id), {"body": "Mine."}).status_code == 404
    assert revise(alice, ticket_id, "Every page.").status_code == 303
    assert admin.get(versions_url(ticket_id)).status_code == 200


# --- the edit window -----------------------------------------------------------------------------


NOW = datetime.now(timezone.utc)


@pytest.mark.parametrize(
    ("app_config", "age", "allowed"),
    [
        ({}, timedelta(minutes=59), True),
        ({}, timedelta(minutes=61), False),
        ({"FLASKET_EDIT_WINDOW": 60}, timedelta(seconds=30), True),
        ({"FLASKET_EDIT_WINDOW": 60}, timedelta(seconds=90), False),
        ({"FLASKET_EDIT_WINDOW": None}, timedelta(days=3650), True),
        ({"FLASKET_EDIT_WINDOW": 0}, timedelta(0), False),
    ],
    ids=[
        "default, 59 minutes",
        "default, 61 minutes",
        "60 s, 30 s",
        "60 s, 90 s",
        "None, ten years",
        "0, just written",
    ],
    indirect=["app_config"],
)
def test_authors_edit_their_texts_only_within_the_edit_window(
    app: Flask,
    ticket_id: int,
    alice: Client,
    bob: Client,
    inbox: Inbox,
    age: timedelta,
    allowed: bool,
) -> None:
    models = ext_models(app)
    reply_id = reply_of(app, bob, ticket_id, "Same here.")
    inbox.clear()
    if age:
        written = datetime.now(timezone.utc) - age
        set_created_at(app, models.Ticket, ticket_id, written)
        set_created_at(app, models.Reply, reply_id, written)
    before = snapshot(app, ticket_id)
    for client, target in ((alice, None), (bob, reply_id)):
        page = client.get(f"/ticket/{ticket_id}").get_data(as_text=True)
        assert (f'href="{revise_url(ticket_id, target)}"' in page) == allowed
        assert client.get(revise_url(ticket_id, target)).status_code == (200 if allowed else 403)
        response = client.post(revise_url(ticket_id, target), {"body": "Changed."})
        assert response.status_code == (303 if allowed else 403)
    if allowed:
        assert ticket_row(app, ticket_id).body == "Changed."
        assert reply_row(app, reply_id).body == "Changed."
        assert len(revisions(app, ticket_id)) == 2
    else:
        assert snapshot(app, ticket_id) == before
    assert inbox.messages == []


def test_the_window_counts_from_when_each_text_was_written(
    app: Flask, ticket_id: int, alice: Client
) -> None:
    """An old ticket's requester still edits a fresh reply, and not the old description."""
    models = ext_models(app)
    set_created_at(app, models.Ticket, ticket_id, datetime.now(timezone.utc) - timedelta(days=2))
    reply_id = reply_of(app, alice, ticket_id, "More details.")
    assert revise(alice, ticket_id, "Changed.").status_code == 403
    assert revise(alice, ticket_id, "More details, fixed.", reply_id).status_code == 303
    assert reply_row(app, reply_id).body == "More details, fixed."
    # An earlier edit does not restart the window.
    set_created_at(app, models.Reply, reply_id, datetime.now(timezone.utc) - timedelta(hours=2))
    assert revise(alice, ticket_id, "Again.", reply_id).status_code == 403


# --- staff hide a reply --------------------------------------------------------------------------


def test_staff_hide_a_reply_its_text_leaves_every_page_and_search_and_comes_back(
    app: Flask, ticket_id: int, alice: Client, bob: Client, admin: Client, inbox: Inbox
) -> None:
    secret = f"Call me on 555 0100 {SECRET_WORD}."
    reply_id = reply_of(app, bob, ticket_id, secret)
    inbox.clear()
    assert found_by(alice, SECRET_WORD) == [ticket_id]
    before = ticket_row(app, ticket_id)

    response = admin.post(f"/ticket/{ticket_id}/replies/{reply_id}/hide")
    landed = lands_at(admin, response, ticket_id, reply_id)
    assert landed.endswith(f"/ticket/{ticket_id}#reply-{reply_id}")
    assert flashes(admin, response) == [("success", "The reply is hidden.")]
    found = reply_row(app, reply_id)
    assert found.body == ""
    assert found.hidden_at is not None
    (kept,) = revisions(app, ticket_id)
    assert (kept.reply_id, kept.body, kept.reason, kept.editor_id) == (
        reply_id,
        secret,
        "hide",
        user_id(app, "admin"),
    )
    assert ticket_row(app, ticket_id).reply_count == before.reply_count
    assert inbox.messages == []

    for client in (alice, bob, admin):
        page = client.get(f"/ticket/{ticket_id}").get_data(as_text=True)
        assert SECRET_WORD not in page
        shown = reply_tools(page, reply_id)
        assert HIDDEN in shown
        assert (f'href="{versions_url(ticket_id, reply_id)}"' in shown) == (client is admin)
        assert (f'action="/ticket/{ticket_id}/replies/{reply_id}/unhide"' in shown) == (
            client is admin
        )
        assert "/revise" not in shown  # not even its author may edit it now
        assert found_by(client, SECRET_WORD) == []
        for url in (
            f"/ticket/user/{user_id(app, 'bob')}?show=replies",
            "/ticket/all?status=all",
            "/ticket/",
        ):
            assert SECRET_WORD not in client.get(url).get_data(as_text=True)
    page = words(admin.get(versions_url(ticket_id, reply_id)))
    assert "Hidden by staff just now; its text is below." in page
    assert f"Hidden by admin just now; it said: {secret}" in page
    assert bob.get(versions_url(ticket_id, reply_id)).status_code == 403
    assert bob.get(revise_url(ticket_id, reply_id)).status_code == 403
    assert revise(bob, ticket_id, "Changed.", reply_id).status_code == 403
    assert reply_row(app, reply_id).body == ""

    response = admin.post(f"/ticket/{ticket_id}/replies/{reply_id}/unhide")
    landed = lands_at(admin, response, ticket_id, reply_id)
    assert landed.endswith(f"/ticket/{ticket_id}#reply-{reply_id}")
    assert flashes(admin, response) == [("success", "The reply is shown again.")]
    found = reply_row(app, reply_id)
    assert (found.body, found.hidden_at) == (secret, None)
    for client in (alice, bob):
        shown = reply_tools(client.get(f"/ticket/{ticket_id}").get_data(as_text=True), reply_id)
        assert secret in shown
        assert HIDDEN not in shown
    assert found_by(alice, SECRET_WORD) == [ticket_id]
    assert [c.field for c in changes(app, ticket_id)] == ["hide", "unhide"]
    assert inbox.messages == []


def test_hiding_twice_or_showing_a_shown_reply_changes_nothing_more(
    app: Flask, ticket_id: int, bob: Client, admin: Client
) -> None:
    reply_id = reply_of(app, bob, ticket_id, "Same here.")
    hide_url = f"/ticket/{ticket_id}/replies/{reply_id}/hide"
    unhide_url = f"/ticket/{ticket_id}/replies/{reply_id}/unhide"
    assert flashes(admin, admin.post(unhide_url)) == [("info", "The reply was shown already.")]
    assert changes(app, ticket_id) == []
    assert admin.post(hide_url).status_code == 303
    before = snapshot(app, ticket_id)
    assert flashes(admin, admin.post(hide_url)) == [("info", "The reply was hidden already.")]
    assert snapshot(app, ticket_id) == before


def test_an_edited_reply_hidden_and_shown_again_comes_back_as_edited(
    app: Flask, ticket_id: int, bob: Client, admin: Client
) -> None:
    reply_id = reply_of(app, bob, ticket_id, "First words.")
    assert revise(bob, ticket_id, "Second words.", reply_id).status_code == 303
    assert admin.post(f"/ticket/{ticket_id}/replies/{reply_id}/hide").status_code == 303
    assert admin.post(f"/ticket/{ticket_id}/replies/{reply_id}/unhide").status_code == 303
    assert admin.post(f"/ticket/{ticket_id}/replies/{reply_id}/hide").status_code == 303
    assert admin.post(f"/ticket/{ticket_id}/replies/{reply_id}/unhide").status_code == 303
    assert reply_row(app, reply_id).body == "Second words."
    assert [(r.body, r.reason) for r in revisions(app, ticket_id)] == [
        ("First words.", "edit"),
        ("Second words.", "hide"),
        ("Second words.", "hide"),
    ]
    # Shown again, the author may edit it again (within the window).
    assert revise(bob, ticket_id, "Third words.", reply_id).status_code == 303


@pytest.mark.parametrize("who", ["alice", "bob", "carol"])
def test_users_who_are_not_staff_cannot_hide_or_show_replies(
    app: Flask, ticket_id: int, bob: Client, admin: Client, login: Any, who: str
) -> None:
    shown_id = reply_of(app, bob, ticket_id, "Same here.")
    hidden_id = reply_of(app, bob, ticket_id, "Rude words.")
    assert admin.post(f"/ticket/{ticket_id}/replies/{hidden_id}/hide").status_code == 303
    before = snapshot(app, ticket_id)
    client = login(who)
    for reply_id, action in ((shown_id, "hide"), (hidden_id, "unhide")):
        response = client.post(f"/ticket/{ticket_id}/replies/{reply_id}/{action}")
        assert response.status_code == 403
        assert "Only staff can hide replies." in text(response)
    page = client.get(f"/ticket/{ticket_id}").get_data(as_text=True)
    assert "/hide" not in page
    assert "/unhide" not in page
    assert snapshot(app, ticket_id) == before


def test_hiding_without_a_fresh_token_login_or_post_changes_nothing(
    app: Flask, ticket_id: int, bob: Client, admin: Client
) -> None:
    reply_id = reply_of(app, bob, ticket_id, "Same here.")
    url = f"/ticket/{ticket_id}/replies/{reply_id}/hide"
    before = snapshot(app, ticket_id)
    stale = admin.post(url, csrf=False)
    assert stale.status_code == 400
    assert ACTION_CSRF in text(stale)
    assert app.test_client().post(url).status_code == 302
    assert admin.get(url).status_code == 405
    assert snapshot(app, ticket_id) == before


def test_a_hidden_reply_stays_hidden_from_later_mail(
    app: Flask, ticket_id: int, alice: Client, bob: Client, admin: Client, inbox: Inbox
) -> None:
    reply_id = reply_of(app, bob, ticket_id, f"Rude {SECRET_WORD} words.")
    assert admin.post(f"/ticket/{ticket_id}/replies/{reply_id}/hide").status_code == 303
    inbox.clear()
    assert alice.reply(ticket_id, "Please be nice.").status_code == 303
    assert admin.post(f"/ticket/{ticket_id}/close").status_code == 303
    assert inbox.messages
    for mail in inbox.messages:
        assert SECRET_WORD not in mail.part("plain")
        assert SECRET_WORD not in mail.part("html")


# --- requests that overlap -----------------------------------------------------------------------


def test_an_edit_allowed_just_before_staff_hid_the_reply_leaves_the_hidden_reply_empty(
    app: Flask, ticket_id: int, alice: Client, bob: Client, admin: Client
) -> None:
    models = ext_models(app)
    reply_id = reply_of(app, bob, ticket_id, "Rude words.")
    bob_id = user_id(app, "bob")
    with app.app_context():
        ticket = db.session.get(models.Ticket, ticket_id)
        reply = db.session.get(models.Reply, reply_id)
        editor = db.session.get(User, bob_id)
        assert ticket is not None
        assert reply is not None
        assert policy.may_edit_text(models, editor, ticket, reply)  # the view's check
        # Staff hide it before the edit takes the lock.
        hide = f"/ticket/{ticket_id}/replies/{reply_id}/hide"
        assert elsewhere(lambda: admin.post(hide).status_code) == 303
        changed = actions.revise_text(ticket, reply, editor, f"Still rude {NEW_WORD}.")
    assert changed is False
    found = reply_row(app, reply_id)
    assert found.hidden_at is not None
    assert found.body == ""
    assert [(r.body, r.reason) for r in revisions(app, ticket_id)] == [("Rude words.", "hide")]
    assert [c.field for c in changes(app, ticket_id)] == ["hide"]
    assert found_by(alice, NEW_WORD) == []
    replies_tab = bob.get(f"/ticket/user/{bob_id}?show=replies").get_data(as_text=True)
    assert NEW_WORD not in replies_tab


def test_a_hide_request_that_read_the_reply_before_another_hid_it_does_nothing(
    app: Flask, ticket_id: int, bob: Client, admin: Client
) -> None:
    """Two staff press "Hide" at once: the second request read the reply before the first
    committed, and takes the lock after it (a locking read: on MariaDB a plain one would
    see the transaction's older snapshot)."""
    models = ext_models(app)
    reply_id = reply_of(app, bob, ticket_id, "Rude words.")
    admin_id = user_id(app, "admin")
    with app.app_context():
        ticket = db.session.get(models.Ticket, ticket_id)
        reply = db.session.get(models.Reply, reply_id)
        actor = db.session.get(User, admin_id)
        assert ticket is not None
        assert reply is not None
        assert reply.hidden_at is None
        hide = f"/ticket/{ticket_id}/replies/{reply_id}/hide"
        assert elsewhere(lambda: admin.post(hide).status_code) == 303
        before = snapshot(app, ticket_id)
        changed = actions.hide_reply(ticket, reply, actor)
    assert changed is False
    assert snapshot(app, ticket_id) == before
    assert [r.body for r in revisions(app, ticket_id)] == ["Rude words."]


# --- a reply on a later page of replies ----------------------------------------------------------


PER_PAGE = {"FLASKET_REPLIES_PER_PAGE": 2}


def leads_to_reply(client: Client, link: str, reply_id: int) -> bool:
    """Whether following ``link``, and the redirects it leads to, shows the reply that the
    fragment names (a redirect's own fragment, else the one before it, as browsers do)."""
    address, _, fragment = html.unescape(link).partition("#")
    response = client.get(address)
    for _ in range(5):
        if response.status_code not in (301, 302, 303, 307, 308):
            break
        address, _, moved = response.headers["Location"].partition("#")
        fragment = moved or fragment
        response = client.get(address)
    if fragment != f"reply-{reply_id}" or response.status_code != 200:
        return False
    return f'<li id="reply-{reply_id}"' in response.get_data(as_text=True)


@pytest.mark.parametrize("app_config", [PER_PAGE], ids=["2 per page"])
def test_after_changing_a_reply_on_a_later_page_the_reader_lands_on_its_page(
    app: Flask, ticket_id: int, bob: Client, admin: Client
) -> None:
    reply_ids = [reply_of(app, bob, ticket_id, f"Reply {n}.") for n in range(3)]
    third = reply_ids[2]
    assert leads_to_reply(admin, f"/ticket/{ticket_id}?page=2#reply-{third}", third)
    assert not leads_to_reply(admin, f"/ticket/{ticket_id}#reply-{third}", third)
    landed = [
        revise(bob, ticket_id, "Changed.", third),
        admin.post(f"/ticket/{ticket_id}/replies/{third}/hide"),
        admin.post(f"/ticket/{ticket_id}/replies/{third}/unhide"),
    ]
    for response in landed:
        # The reply's own address, which finds the page of replies it is on.
        assert lands_at(admin, response, ticket_id, third).endswith(
            f"/ticket/{ticket_id}?page=2#reply-{third}"
        )
        assert leads_to_reply(admin, response.headers["Location"], third)


@pytest.mark.parametrize("app_config", [PER_PAGE], ids=["2 per page"])
def test_links_to_a_reply_on_a_later_page_lead_to_its_page(
    app: Flask, ticket_id: int, bob: Client, admin: Client
) -> None:
    reply_ids = [reply_of(app, bob, ticket_id, f"Reply {n}.") for n in range(3)]
    third = reply_ids[2]
    assert revise(bob, ticket_id, "Changed.", third).status_code == 303
    assert admin.post(f"/ticket/{ticket_id}/replies/{third}/hide").status_code == 303
    page = admin.get(f"/ticket/{ticket_id}?page=2").get_data(as_text=True)
    history_links = re.findall(r'<a href="([^"]*)">a reply</a>', page)
    versions = admin.get(versions_url(ticket_id, third)).get_data(as_text=True)
    back = re.findall(rf'<a href="([^"]*/replies/{third})">', versions)
    assert history_links == [reply_address(ticket_id, third)] * 2
    assert back == [reply_address(ticket_id, third)]
    for link in history_links + back:
        assert leads_to_reply(admin, link, third)
